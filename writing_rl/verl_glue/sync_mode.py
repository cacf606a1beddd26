"""A trainer mode of our own that runs verl 0.9.1's synchronous code paths.

verl chooses between its sync and async code paths by comparing `self.trainer_mode` with the literal "sync"
(replay buffer class, gen_batch_size, TransferQueue checkpoints, prompt persistence), so a registered mode with
another name would silently get the async ones. `PPOTrainerSync.__init__` calls `_build_replay_buffer` right
after setting `trainer_mode`, so forcing it there makes every later check see "sync".
"""

from __future__ import annotations

from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

SYNC_MODE = "sync"


class SyncModeTrainer(PPOTrainerSync):
    """verl's synchronous PPO trainer under a trainer-mode name of our own."""

    def _build_replay_buffer(self) -> ReplayBuffer:
        self.trainer_mode = SYNC_MODE
        return super()._build_replay_buffer()
