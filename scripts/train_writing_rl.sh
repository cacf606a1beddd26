#!/usr/bin/env bash
# Writing-RL on verl 0.9.1: the policy's response against its prompt's current reference (a ladder,
# weakest first); a prompt moves up one rung when the policy beats its reference (dynamic reference
# scheduling, kept in running_file/index_<EXPERIMENT_NAME>.json, editable between steps).
#
#   bash scripts/train_writing_rl.sh [extra Hydra overrides ...]
#   writing-rl preflight scripts/train_writing_rl.sh [extra Hydra overrides ...]   # check everything first
#
# Default: the paper's setting, PPO with a critic, one rollout per prompt.
# GRPO variant (group of 4, no critic):  ALGO=grpo ROLLOUT_N=4 PROMOTION=majority bash scripts/train_writing_rl.sh
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-${BASE_MODEL:-Qwen/Qwen2.5-7B-Instruct}}   # policy (and critic) initialisation
TRAIN_FILE=${TRAIN_FILE:-data/writing/train.parquet}    # from `writing-rl data build`
VAL_FILE=${VAL_FILE:-data/writing/test.parquet}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-qwen-writing-rl}       # names the index file and the wandb run
PROJECT_NAME=${PROJECT_NAME:-Writing-RL}
RUN_DIR=${RUN_DIR:-$PWD/running_file}                    # index_<EXPERIMENT_NAME>.json and the judge cache

ALGO=${ALGO:-gae}                                        # gae (PPO + critic, the paper) | grpo
ROLLOUT_N=${ROLLOUT_N:-1}                                # rollouts per prompt (> 1 for grpo)
REWARD_STRATEGY=${REWARD_STRATEGY:-position-disadvantage}  # reference first | position-advantage | both | random
PROMOTION=${PROMOTION:-any}                              # any | majority | win_rate>=X (per prompt per step)
REWARD_WIN=${REWARD_WIN:-1.0}                            # the original used 1.1 / 0.55 / 0.1
REWARD_TIE=${REWARD_TIE:-0.5}
REWARD_LOSS=${REWARD_LOSS:-0.0}
JUDGE_TEMPLATE=${JUDGE_TEMPLATE:-pairwise}               # prompt file or built-in name
JUDGE_CRITERIA_TEMPLATE=${JUDGE_CRITERIA_TEMPLATE:-pairwise_criteria}

JUDGE_BASE_URL=${JUDGE_BASE_URL:-https://dashscope.aliyuncs.com/compatible-mode/v1}
JUDGE_MODEL=${JUDGE_MODEL:-qwen-plus}
JUDGE_API_KEY_ENV=${JUDGE_API_KEY_ENV:-DASHSCOPE_API_KEY}  # NAME of the variable holding the key
API_PARALLEL_ENDPOINT_DEFAULT=12                         # in-flight judge requests, whole job (API_PARALLEL overrides; JUDGE=verl: 64/replica)
JUDGE_RPM=${JUDGE_RPM:-0}                                # requests per minute (0 = no limit)
JUDGE_TPM=${JUDGE_TPM:-0}                                # tokens per minute (0 = no limit)
JUDGE_TEMPERATURE=${JUDGE_TEMPERATURE:-0.1}
JUDGE_MAX_TOKENS=${JUDGE_MAX_TOKENS:-2048}
JUDGE_TIMEOUT=${JUDGE_TIMEOUT:-300}
JUDGE_RETRIES=${JUDGE_RETRIES:-6}
JUDGE_CACHE=${JUDGE_CACHE:-$RUN_DIR/judge_cache_${EXPERIMENT_NAME}.sqlite}   # none disables

N_GPUS=${N_GPUS:-8}
NNODES=${NNODES:-1}
TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-32}
PPO_MINI_BATCH_SIZE=${PPO_MINI_BATCH_SIZE:-16}
MAX_PROMPT_LENGTH=${MAX_PROMPT_LENGTH:-4096}
MAX_RESPONSE_LENGTH=${MAX_RESPONSE_LENGTH:-10000}
PPO_MAX_TOKEN_LEN_PER_GPU=${PPO_MAX_TOKEN_LEN_PER_GPU:-16500}
ACTOR_LR=${ACTOR_LR:-1e-6}
CRITIC_LR=${CRITIC_LR:-1e-5}
CRITIC_MAX_TOKEN_LEN_PER_GPU=${CRITIC_MAX_TOKEN_LEN_PER_GPU:-16500}  # verl 0.9.1's V1 critic reads this budget
ROLLOUT_TP=${ROLLOUT_TP:-2}
GPU_MEMORY_UTILIZATION=${GPU_MEMORY_UTILIZATION:-0.7}
TOTAL_STEPS=${TOTAL_STEPS:-405}
SAVE_FREQ=${SAVE_FREQ:-50}
TEST_FREQ=${TEST_FREQ:-50}
LOGGER=${LOGGER:-'["console","wandb"]'}

# JUDGE=endpoint (default) or JUDGE=verl (verl hosts the judge model on GENRM_GPUS): see judge_backend.sh
source "$(dirname "${BASH_SOURCE[0]}")/judge_backend.sh"

ARGS=(
  algorithm.adv_estimator="$ALGO"
  algorithm.use_kl_in_reward=False
  trainer.v1.trainer_mode=writing_rl
  data.train_files="$TRAIN_FILE"
  data.val_files="$VAL_FILE"
  data.train_batch_size="$TRAIN_BATCH_SIZE"
  data.max_prompt_length="$MAX_PROMPT_LENGTH"
  data.max_response_length="$MAX_RESPONSE_LENGTH"
  actor_rollout_ref.model.path="$MODEL_PATH"
  actor_rollout_ref.model.enable_gradient_checkpointing=True
  actor_rollout_ref.actor.optim.lr="$ACTOR_LR"
  actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=0.4
  actor_rollout_ref.actor.ppo_mini_batch_size="$PPO_MINI_BATCH_SIZE"
  actor_rollout_ref.actor.use_dynamic_bsz=True
  actor_rollout_ref.actor.ppo_max_token_len_per_gpu="$PPO_MAX_TOKEN_LEN_PER_GPU"
  actor_rollout_ref.actor.use_kl_loss=False
  actor_rollout_ref.rollout.name=vllm
  actor_rollout_ref.rollout.n="$ROLLOUT_N"
  actor_rollout_ref.rollout.temperature=1.0
  actor_rollout_ref.rollout.tensor_model_parallel_size="$ROLLOUT_TP"
  actor_rollout_ref.rollout.gpu_memory_utilization="$GPU_MEMORY_UTILIZATION"
  reward.reward_manager.name=writing_rl
  +reward.reward_kwargs.experiment="$EXPERIMENT_NAME"
  +reward.reward_kwargs.run_dir="$RUN_DIR"
  +reward.reward_kwargs.writing_rl.position="$REWARD_STRATEGY"
  +reward.reward_kwargs.writing_rl.promotion="$PROMOTION"
  +reward.reward_kwargs.writing_rl.reward_win="$REWARD_WIN"
  +reward.reward_kwargs.writing_rl.reward_tie="$REWARD_TIE"
  +reward.reward_kwargs.writing_rl.reward_loss="$REWARD_LOSS"
  +reward.reward_kwargs.writing_rl.template="$JUDGE_TEMPLATE"
  +reward.reward_kwargs.writing_rl.criteria_template="$JUDGE_CRITERIA_TEMPLATE"
  "${JUDGE_ARGS[@]}"
  +reward.reward_kwargs.judge.max_concurrency="$API_PARALLEL"
  +reward.reward_kwargs.judge.requests_per_minute="$JUDGE_RPM"
  +reward.reward_kwargs.judge.tokens_per_minute="$JUDGE_TPM"
  +reward.reward_kwargs.judge.temperature="$JUDGE_TEMPERATURE"
  +reward.reward_kwargs.judge.max_tokens="$JUDGE_MAX_TOKENS"
  +reward.reward_kwargs.judge.timeout_s="$JUDGE_TIMEOUT"
  +reward.reward_kwargs.judge.max_retries="$JUDGE_RETRIES"
  +reward.reward_kwargs.judge.cache_path="$JUDGE_CACHE"
  trainer.project_name="$PROJECT_NAME"
  trainer.experiment_name="$EXPERIMENT_NAME"
  trainer.logger="$LOGGER"
  trainer.n_gpus_per_node="$POLICY_GPUS"
  trainer.nnodes="$NNODES"
  trainer.total_training_steps="$TOTAL_STEPS"
  trainer.save_freq="$SAVE_FREQ"
  trainer.test_freq="$TEST_FREQ"
  trainer.val_before_train=False
  trainer.critic_warmup=0
)
if [[ "$ALGO" == "gae" ]]; then
  ARGS+=(
    critic.model.path="$MODEL_PATH"
    critic.optim.lr="$CRITIC_LR"
    critic.optim.lr_warmup_steps_ratio=0.05
    critic.model.enable_gradient_checkpointing=True
    +critic.ppo_infer_max_token_len_per_gpu="$CRITIC_MAX_TOKEN_LEN_PER_GPU"
  )
fi

# `writing-rl preflight` reads the exact overrides this script would pass, without running verl.
if [[ "${WRITING_RL_PRINT_ARGS:-0}" == "1" ]]; then
  printf '%s\n' "${ARGS[@]}" "$@"
  exit 0
fi

# verl prints its whole config at start-up: refuse a key given where the key's variable NAME belongs, unseen
JUDGE_API_KEY_ENV="$JUDGE_API_KEY_ENV" python3 -m writing_rl.judge.key_env_check || exit 2
mkdir -p "$RUN_DIR" logs
python3 scripts/create_index_file.py --experiment "$EXPERIMENT_NAME" --data "$TRAIN_FILE" --run-dir "$RUN_DIR"
python3 -m verl.trainer.main_ppo "${ARGS[@]}" "$@" 2>&1 | tee "logs/${EXPERIMENT_NAME}.log"
