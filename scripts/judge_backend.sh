# Sourced by train_writing_rl.sh and train_brpo.sh: where the judge runs. Sets JUDGE_ARGS (Hydra overrides),
# POLICY_GPUS (GPUs per node left to the policy) and API_PARALLEL (judge requests in flight for the whole job).
#
#   JUDGE=endpoint   any OpenAI-compatible server at JUDGE_BASE_URL: `vllm serve` on other GPUs, a hosted API
#   JUDGE=verl       verl hosts the judge model GENRM_PATH inside the job, as vLLM servers on GPUs of their own
#                    (GENRM_GPUS per node, taken from N_GPUS), behind verl's router; no URL, model name or key
#
# JUDGE=verl settings (environment variables, with defaults):
#   GENRM_PATH                      the judge model's local folder, readable on every node (required)
#   GENRM_GPUS=2                    GPUs per node for the judge; the policy keeps N_GPUS - GENRM_GPUS
#   GENRM_TP=1                      tensor parallelism of one judge replica (must divide GENRM_GPUS)
#   GENRM_MAX_LEN=prompt + 2 responses + judge output + 1024 for the template (tokens; preflight checks it)
#   GENRM_GPU_MEMORY_UTILIZATION=0.85
#   API_PARALLEL=64 per replica     (at most 256 per replica: verl's router holds no more per server)
# Colocated hosting (the judge sharing the policy's GPUs) is not offered: verl then judges only after the whole
# batch is generated and hands the reward managers no uid, so BRPO groups and the curriculum cannot work.

JUDGE=${JUDGE:-endpoint}

judge_backend_fail() {
  echo "JUDGE=$JUDGE: $*" >&2
  exit 2
}

case "$JUDGE" in
  endpoint)
    POLICY_GPUS=$N_GPUS
    API_PARALLEL=${API_PARALLEL:-$API_PARALLEL_ENDPOINT_DEFAULT}
    JUDGE_ARGS=(
      +reward.reward_kwargs.judge.base_url="$JUDGE_BASE_URL"
      +reward.reward_kwargs.judge.model="$JUDGE_MODEL"
      +reward.reward_kwargs.judge.api_key_env="$JUDGE_API_KEY_ENV"
    )
    ;;
  verl)
    GENRM_PATH=${GENRM_PATH:-}
    GENRM_GPUS=${GENRM_GPUS:-2}
    GENRM_TP=${GENRM_TP:-1}
    GENRM_MAX_LEN=${GENRM_MAX_LEN:-$((MAX_PROMPT_LENGTH + 2 * MAX_RESPONSE_LENGTH + JUDGE_MAX_TOKENS + 1024))}
    GENRM_GPU_MEMORY_UTILIZATION=${GENRM_GPU_MEMORY_UTILIZATION:-0.85}
    for setting in GENRM_GPUS GENRM_TP GENRM_MAX_LEN; do  # checked before bash arithmetic reads them
      [[ ${!setting} =~ ^[0-9]+$ ]] || judge_backend_fail "$setting=${!setting}: must be a whole number"
    done
    [[ -n "$GENRM_PATH" ]] || judge_backend_fail "set GENRM_PATH to the judge model's local folder (e.g. the GenRM \
trained with scripts/train_genrm_rl.sh)"
    (( GENRM_GPUS >= 1 )) || judge_backend_fail "GENRM_GPUS=$GENRM_GPUS: the judge needs GPUs of its own. Sharing \
the policy's GPUs (verl's colocated mode) judges only after the whole batch is generated and gives the reward \
managers no uid, so BRPO groups and the curriculum cannot work"
    (( GENRM_GPUS < N_GPUS )) || judge_backend_fail "GENRM_GPUS=$GENRM_GPUS leaves none of N_GPUS=$N_GPUS for the policy"
    (( GENRM_GPUS % GENRM_TP == 0 )) || judge_backend_fail "GENRM_TP=$GENRM_TP must divide GENRM_GPUS=$GENRM_GPUS \
(one judge replica per GENRM_TP GPUs)"
    POLICY_GPUS=$((N_GPUS - GENRM_GPUS))
    GENRM_REPLICAS=$((GENRM_GPUS * NNODES / GENRM_TP))
    API_PARALLEL=${API_PARALLEL:-$((64 * GENRM_REPLICAS))}
    if (( API_PARALLEL > 256 * GENRM_REPLICAS )); then
      echo "JUDGE=verl: API_PARALLEL=$API_PARALLEL lowered to $((256 * GENRM_REPLICAS)): verl's router sends at \
most 256 requests at a time to each of the $GENRM_REPLICAS judge replicas" >&2
      API_PARALLEL=$((256 * GENRM_REPLICAS))
    fi
    JUDGE_ARGS=(
      +reward.reward_kwargs.judge_backend=verl
      reward.reward_model.enable=True
      reward.reward_model.enable_resource_pool=True
      reward.reward_model.model_path="$GENRM_PATH"
      reward.reward_model.n_gpus_per_node="$GENRM_GPUS"
      reward.reward_model.nnodes="$NNODES"
      reward.reward_model.rollout.name=vllm
      reward.reward_model.rollout.tensor_model_parallel_size="$GENRM_TP"
      reward.reward_model.rollout.gpu_memory_utilization="$GENRM_GPU_MEMORY_UTILIZATION"
      reward.reward_model.rollout.free_cache_engine=False
      reward.reward_model.rollout.enforce_eager=False
      reward.reward_model.rollout.max_model_len="$GENRM_MAX_LEN"
      reward.reward_model.rollout.response_length="$JUDGE_MAX_TOKENS"
      reward.custom_reward_function.path=pkg://writing_rl.verl_glue.genrm_route
      reward.custom_reward_function.name=compute_score
    )
    ;;
  *)
    judge_backend_fail "must be endpoint (a judge server you run) or verl (verl hosts GENRM_PATH in the job)"
    ;;
esac
