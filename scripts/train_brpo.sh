#!/usr/bin/env bash
# Writing-Zero / BRPO on verl 0.9.1: each group's reference is one of its own rollouts, drawn at random;
# a pairwise GenRM (any OpenAI-compatible server, e.g. `vllm serve` of the trained GenRM, or hosted by verl
# inside the job with JUDGE=verl GENRM_PATH=...) votes in both orders; reward +1 / -1 (reference 0) is the
# advantage; skewed groups are dropped.
#
#   bash scripts/train_brpo.sh [extra Hydra overrides ...]
#   writing-rl preflight scripts/train_brpo.sh [extra Hydra overrides ...]   # check everything first, on CPU
#
# Every setting below is an environment variable with a default; extra arguments are passed to verl.
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen3-4B}                 # policy to train (local path or HF name)
TRAIN_FILE=${TRAIN_FILE:-data/brpo/train.parquet}        # verl parquet (see README: data format)
VAL_FILE=${VAL_FILE:-data/brpo/test.parquet}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-brpo}
PROJECT_NAME=${PROJECT_NAME:-writing-rl}
RUN_DIR=${RUN_DIR:-$PWD/running_file}                    # the judge cache lives here (absolute: shared storage on clusters)

GROUP_SIZE=${GROUP_SIZE:-16}                             # rollouts per prompt (the paper's G)
SKEW_THRESHOLD=${SKEW_THRESHOLD:-0.6}                    # drop groups with |sum r| / G above this; >= 1 disables
BRPO_ORDERS=${BRPO_ORDERS:-both}                         # both | candidate_first | candidate_second
BRPO_VOTES=${BRPO_VOTES:-1}                              # judge samples per order
BRPO_SEED=${BRPO_SEED:-0}                                # reference draw, reproducible per (seed, uid)
GROUP_TIMEOUT_S=${GROUP_TIMEOUT_S:-900}                  # judge an incomplete group after this long
GENRM_TEMPLATE=${GENRM_TEMPLATE:-genrm}                  # prompt file or built-in name

JUDGE_BASE_URL=${JUDGE_BASE_URL:-http://127.0.0.1:8001/v1}   # the GenRM server
JUDGE_MODEL=${JUDGE_MODEL:-genrm}
JUDGE_API_KEY_ENV=${JUDGE_API_KEY_ENV:-JUDGE_API_KEY}    # NAME of the variable holding the key
API_PARALLEL_ENDPOINT_DEFAULT=64                         # in-flight judge requests, whole job (API_PARALLEL overrides; JUDGE=verl: 64/replica)
JUDGE_RPM=${JUDGE_RPM:-0}                                # requests per minute (0 = no limit)
JUDGE_TPM=${JUDGE_TPM:-0}                                # tokens per minute (0 = no limit)
JUDGE_TEMPERATURE=${JUDGE_TEMPERATURE:-0.6}
JUDGE_MAX_TOKENS=${JUDGE_MAX_TOKENS:-4096}               # the critique is long
JUDGE_TIMEOUT=${JUDGE_TIMEOUT:-600}
JUDGE_RETRIES=${JUDGE_RETRIES:-6}
JUDGE_CACHE=${JUDGE_CACHE:-$RUN_DIR/judge_cache_${EXPERIMENT_NAME}.sqlite}   # none disables

N_GPUS=${N_GPUS:-8}
NNODES=${NNODES:-1}
TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-64}                 # prompts per step
PPO_MINI_BATCH_SIZE=${PPO_MINI_BATCH_SIZE:-16}
PPO_MAX_TOKEN_LEN_PER_GPU=${PPO_MAX_TOKEN_LEN_PER_GPU:-16384}  # token budget per GPU micro-batch (dynamic batching)
MAX_PROMPT_LENGTH=${MAX_PROMPT_LENGTH:-2048}
MAX_RESPONSE_LENGTH=${MAX_RESPONSE_LENGTH:-4096}
ACTOR_LR=${ACTOR_LR:-1e-6}
ROLLOUT_TP=${ROLLOUT_TP:-2}
GPU_MEMORY_UTILIZATION=${GPU_MEMORY_UTILIZATION:-0.6}
TOTAL_STEPS=${TOTAL_STEPS:-200}
SAVE_FREQ=${SAVE_FREQ:-50}
TEST_FREQ=${TEST_FREQ:-50}
LOGGER=${LOGGER:-'["console","wandb"]'}

# JUDGE=endpoint (default) or JUDGE=verl (verl hosts the judge model on GENRM_GPUS): see judge_backend.sh
source "$(dirname "${BASH_SOURCE[0]}")/judge_backend.sh"

ARGS=(
  algorithm.adv_estimator=brpo
  +algorithm.brpo.skew_threshold="$SKEW_THRESHOLD"
  algorithm.use_kl_in_reward=False
  trainer.v1.trainer_mode=writing_rl
  data.train_files="$TRAIN_FILE"
  data.val_files="$VAL_FILE"
  data.train_batch_size="$TRAIN_BATCH_SIZE"
  data.max_prompt_length="$MAX_PROMPT_LENGTH"
  data.max_response_length="$MAX_RESPONSE_LENGTH"
  actor_rollout_ref.model.path="$MODEL_PATH"
  actor_rollout_ref.actor.optim.lr="$ACTOR_LR"
  actor_rollout_ref.actor.ppo_mini_batch_size="$PPO_MINI_BATCH_SIZE"
  actor_rollout_ref.actor.use_dynamic_bsz=True
  actor_rollout_ref.actor.ppo_max_token_len_per_gpu="$PPO_MAX_TOKEN_LEN_PER_GPU"
  actor_rollout_ref.actor.policy_loss.loss_mode=vanilla
  actor_rollout_ref.actor.clip_ratio=0.2
  actor_rollout_ref.actor.use_kl_loss=False
  actor_rollout_ref.actor.entropy_coeff=0
  actor_rollout_ref.rollout.name=vllm
  actor_rollout_ref.rollout.n="$GROUP_SIZE"
  actor_rollout_ref.rollout.tensor_model_parallel_size="$ROLLOUT_TP"
  actor_rollout_ref.rollout.gpu_memory_utilization="$GPU_MEMORY_UTILIZATION"
  reward.reward_manager.name=brpo
  +reward.reward_kwargs.experiment="$EXPERIMENT_NAME"
  +reward.reward_kwargs.run_dir="$RUN_DIR"
  +reward.reward_kwargs.brpo.orders="$BRPO_ORDERS"
  +reward.reward_kwargs.brpo.votes="$BRPO_VOTES"
  +reward.reward_kwargs.brpo.seed="$BRPO_SEED"
  +reward.reward_kwargs.brpo.group_timeout_s="$GROUP_TIMEOUT_S"
  +reward.reward_kwargs.brpo.template="$GENRM_TEMPLATE"
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
)

# `writing-rl preflight` reads the exact overrides this script would pass, without running verl.
if [[ "${WRITING_RL_PRINT_ARGS:-0}" == "1" ]]; then
  printf '%s\n' "${ARGS[@]}" "$@"
  exit 0
fi

# verl prints its whole config at start-up: refuse a key given where the key's variable NAME belongs, unseen
JUDGE_API_KEY_ENV="$JUDGE_API_KEY_ENV" python3 -m writing_rl.judge.key_env_check || exit 2
mkdir -p "$RUN_DIR" logs
python3 -m verl.trainer.main_ppo "${ARGS[@]}" "$@" 2>&1 | tee "logs/${EXPERIMENT_NAME}.log"
