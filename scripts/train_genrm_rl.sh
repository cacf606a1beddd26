#!/usr/bin/env bash
# GRPO of the pairwise GenRM on verl 0.9.1 with a verifiable reward (no judge): each row is the critique prompt
# over a preference pair in one order (both orders are in the data, `writing-rl data genrm-rl`); the reward,
# writing_rl.genrm.reward, is +1 for the higher score on the human-preferred text, -1 for the other, 0 for equal
# scores, MALFORMED_REWARD without a well-formed \boxed{a, b} in [0, 10]. verl's own naive reward manager calls it.
#
#   bash scripts/train_genrm_rl.sh [extra Hydra overrides ...]
#   writing-rl preflight scripts/train_genrm_rl.sh [extra Hydra overrides ...]   # check everything first, on CPU
#
# Trainer mode genrm_rl (verl's synchronous trainer plus our per-step metrics) logs every step, next to verl's
# critic/score/* (the mean reward): genrm/acc, genrm/wrong_rate, genrm/tie_rate, genrm/malformed_rate (over the
# step's rollouts) and genrm/both_order_consistency, genrm/both_order_accuracy, genrm/pairs_with_both_orders (over
# the step's pairs: the same text preferred in both orders, every rollout of one order against every rollout of
# the other). For that both orders of a pair must be in the same step: the rows come shuffled by pair with the two
# orders adjacent (`writing-rl data genrm-rl --seed`), data.shuffle=False keeps that order, and TRAIN_BATCH_SIZE
# must be even. At every validation (TEST_FREQ): val-core/genrm_pairwise/acc/mean@1 and the tie / wrong /
# malformed rates, with the generations dumped to VAL_DUMP_DIR, from which
# `python -m writing_rl.genrm.consistency VAL_DUMP_DIR` gives validation consistency.
#
# Every setting below is an environment variable with a default; extra arguments are passed to verl.
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen3-4B}                  # the SFT GenRM: <SAVE_DIR of train_genrm_sft.sh>/global_step_<N>/huggingface
TRAIN_FILE=${TRAIN_FILE:-data/genrm_rl/train.parquet}     # `writing-rl data genrm-rl` rows
VAL_FILE=${VAL_FILE:-data/genrm_rl/test.parquet}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-genrm_rl}
PROJECT_NAME=${PROJECT_NAME:-writing-rl}
VAL_DUMP_DIR=${VAL_DUMP_DIR:-$PWD/running_file/${EXPERIMENT_NAME}_validation}   # per-validation JSONL (consistency)
MALFORMED_REWARD=${MALFORMED_REWARD:--1.5}                # reward for output without a well-formed \boxed{a, b}

ROLLOUT_N=${ROLLOUT_N:-8}                                 # rollouts per prompt (GRPO group)
N_GPUS=${N_GPUS:-8}
NNODES=${NNODES:-1}
TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-64}                  # prompts per step; even (both orders of a pair)
PPO_MINI_BATCH_SIZE=${PPO_MINI_BATCH_SIZE:-16}
PPO_MAX_TOKEN_LEN_PER_GPU=${PPO_MAX_TOKEN_LEN_PER_GPU:-24576}  # token budget per GPU micro-batch (dynamic batching)
MAX_PROMPT_LENGTH=${MAX_PROMPT_LENGTH:-4096}              # critique prompt + two texts
MAX_RESPONSE_LENGTH=${MAX_RESPONSE_LENGTH:-4096}          # the critique is long; a cut one has no box (penalty)
ACTOR_LR=${ACTOR_LR:-1e-6}
KL_LOSS_COEF=${KL_LOSS_COEF:-0.001}
TEMPERATURE=${TEMPERATURE:-1.0}
ROLLOUT_TP=${ROLLOUT_TP:-2}
GPU_MEMORY_UTILIZATION=${GPU_MEMORY_UTILIZATION:-0.6}
TOTAL_STEPS=${TOTAL_STEPS:-200}
SAVE_FREQ=${SAVE_FREQ:-50}
TEST_FREQ=${TEST_FREQ:-10}
LOGGER=${LOGGER:-'["console","wandb"]'}

ARGS=(
  algorithm.adv_estimator=grpo
  algorithm.use_kl_in_reward=False
  data.train_files="$TRAIN_FILE"
  data.val_files="$VAL_FILE"
  data.train_batch_size="$TRAIN_BATCH_SIZE"
  data.max_prompt_length="$MAX_PROMPT_LENGTH"
  data.max_response_length="$MAX_RESPONSE_LENGTH"
  data.filter_overlong_prompts=True
  data.shuffle=False                                      # rows are shuffled by pair, orders adjacent, at build time
  actor_rollout_ref.model.path="$MODEL_PATH"
  actor_rollout_ref.actor.optim.lr="$ACTOR_LR"
  actor_rollout_ref.actor.ppo_mini_batch_size="$PPO_MINI_BATCH_SIZE"
  actor_rollout_ref.actor.use_dynamic_bsz=True
  actor_rollout_ref.actor.ppo_max_token_len_per_gpu="$PPO_MAX_TOKEN_LEN_PER_GPU"
  actor_rollout_ref.actor.use_kl_loss=True
  actor_rollout_ref.actor.kl_loss_coef="$KL_LOSS_COEF"
  actor_rollout_ref.actor.kl_loss_type=low_var_kl
  actor_rollout_ref.actor.entropy_coeff=0
  actor_rollout_ref.rollout.name=vllm
  actor_rollout_ref.rollout.n="$ROLLOUT_N"
  actor_rollout_ref.rollout.temperature="$TEMPERATURE"
  actor_rollout_ref.rollout.val_kwargs.n=1
  actor_rollout_ref.rollout.tensor_model_parallel_size="$ROLLOUT_TP"
  actor_rollout_ref.rollout.gpu_memory_utilization="$GPU_MEMORY_UTILIZATION"
  reward.reward_manager.name=naive
  reward.custom_reward_function.path=pkg://writing_rl.genrm.reward
  reward.custom_reward_function.name=compute_score
  +reward.custom_reward_function.reward_kwargs.malformed_reward="$MALFORMED_REWARD"
  trainer.v1.trainer_mode=genrm_rl
  trainer.project_name="$PROJECT_NAME"
  trainer.experiment_name="$EXPERIMENT_NAME"
  trainer.logger="$LOGGER"
  trainer.n_gpus_per_node="$N_GPUS"
  trainer.nnodes="$NNODES"
  trainer.total_training_steps="$TOTAL_STEPS"
  trainer.save_freq="$SAVE_FREQ"
  trainer.test_freq="$TEST_FREQ"
  trainer.val_before_train=True
  trainer.validation_data_dir="$VAL_DUMP_DIR"
)

# `writing-rl preflight` reads the exact overrides this script would pass (the first line names the check set).
if [[ "${WRITING_RL_PRINT_ARGS:-0}" == "1" ]]; then
  printf '%s\n' "#preflight=genrm-rl" "${ARGS[@]}" "$@"
  exit 0
fi

mkdir -p logs
python3 -m verl.trainer.main_ppo "${ARGS[@]}" "$@" 2>&1 | tee "logs/${EXPERIMENT_NAME}.log"
