#!/usr/bin/env bash
# Cold-start SFT of the pairwise GenRM with verl 0.9.1's own SFT trainer (verl.trainer.sft_trainer, config
# sft_trainer_engine.yaml, multi-turn `messages` parquet; format in docs/genrm-training.md), launched by torchrun.
#
#   bash scripts/train_genrm_sft.sh [extra Hydra overrides for sft_trainer_engine ...]
#   writing-rl preflight scripts/train_genrm_sft.sh [overrides ...]   # config, model folder, every row, on CPU
#
# Every setting below is an environment variable with a default; extra arguments are passed to verl.
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen3-4B}                 # base model of the GenRM (local path or HF name)
TRAIN_FILE=${TRAIN_FILE:-data/genrm_sft/train.parquet}   # rows with a `messages` column (system, user, assistant)
VAL_FILE=${VAL_FILE:-data/genrm_sft/test.parquet}        # null for no validation
EXPERIMENT_NAME=${EXPERIMENT_NAME:-genrm_sft}
PROJECT_NAME=${PROJECT_NAME:-writing-rl}
SAVE_DIR=${SAVE_DIR:-checkpoints/$PROJECT_NAME/$EXPERIMENT_NAME}   # checkpoints: $SAVE_DIR/global_step_<N>/
SAVE_CONTENTS=${SAVE_CONTENTS:-'["model","optimizer","extra","hf_model"]'}   # hf_model: .../huggingface, for RL and vLLM

N_GPUS=${N_GPUS:-8}                                      # GPUs of this node (one torchrun process each);
                                                         # for several nodes run torchrun yourself with these overrides
MAX_LENGTH=${MAX_LENGTH:-8192}                           # tokens per example: critique prompt + two texts + trace
TRUNCATION=${TRUNCATION:-error}                          # error | left | right (error: preflight names long rows)
TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-32}                 # examples per optimizer step (all GPUs)
MICRO_BATCH_SIZE_PER_GPU=${MICRO_BATCH_SIZE_PER_GPU:-2}
MAX_TOKEN_LEN_PER_GPU=${MAX_TOKEN_LEN_PER_GPU:-16384}    # dynamic batching budget (at least MAX_LENGTH)
LR=${LR:-1e-5}
WARMUP_RATIO=${WARMUP_RATIO:-0.05}
EPOCHS=${EPOCHS:-2}
SAVE_FREQ=${SAVE_FREQ:-after_each_epoch}
TEST_FREQ=${TEST_FREQ:-after_each_epoch}
IGNORE_INPUT_IDS_MISMATCH=${IGNORE_INPUT_IDS_MISMATCH:-False}  # True for chat templates that rewrite past turns
LOGGER=${LOGGER:-'["console","wandb"]'}

ARGS=(
  model.path="$MODEL_PATH"
  data.train_files="$TRAIN_FILE"
  data.val_files="$VAL_FILE"
  data.messages_key=messages
  data.max_length="$MAX_LENGTH"
  data.truncation="$TRUNCATION"
  data.train_batch_size="$TRAIN_BATCH_SIZE"
  data.micro_batch_size_per_gpu="$MICRO_BATCH_SIZE_PER_GPU"
  data.max_token_len_per_gpu="$MAX_TOKEN_LEN_PER_GPU"
  data.ignore_input_ids_mismatch="$IGNORE_INPUT_IDS_MISMATCH"
  optim.lr="$LR"
  optim.lr_warmup_steps_ratio="$WARMUP_RATIO"
  optim.lr_scheduler_type=cosine
  checkpoint.save_contents="$SAVE_CONTENTS"
  trainer.default_local_dir="$SAVE_DIR"
  trainer.project_name="$PROJECT_NAME"
  trainer.experiment_name="$EXPERIMENT_NAME"
  trainer.logger="$LOGGER"
  trainer.total_epochs="$EPOCHS"
  trainer.save_freq="$SAVE_FREQ"
  trainer.test_freq="$TEST_FREQ"
  trainer.n_gpus_per_node="$N_GPUS"
)

# `writing-rl preflight` reads the exact overrides this script would pass (the first line names the check set).
if [[ "${WRITING_RL_PRINT_ARGS:-0}" == "1" ]]; then
  printf '%s\n' "#preflight=genrm-sft" "${ARGS[@]}" "$@"
  exit 0
fi

mkdir -p logs
torchrun --standalone --nnodes=1 --nproc_per_node="$N_GPUS" -m verl.trainer.sft_trainer \
  "${ARGS[@]}" "$@" 2>&1 | tee "logs/${EXPERIMENT_NAME}.log"
