#!/usr/bin/env bash
# One lent GPU, one prepared call (docs/sweep.md, "One lent GPU, one script"): train the runs that need a GPU side by side, relax the electrode
# benchmark's structures with SevenNet on the same GPU, stop at a deadline and bring everything back as one archive.
#
#   bash bench/gpu_session.sh [SECONDS]            # on the device machine, from the repository root
#
# It needs (carried beside the checkout, both git-ignored; `bash bench/gpu_wheels.sh` makes them): .whl/ (cp312
# wheels of pymatgen, SevenNet and what else this code imports that the machine lacks) and .mirror/ (the files of
# ../shared/data it reads). The relaxations are SevenNet's (CHGNet's are cheap on a CPU, SevenNet's ~7 h of
# a core). Every run resumes from its last epoch and every relaxation is cached, so what the deadline cuts off
# goes on here on the CPU:
# `python -m lib.sweep.direct ...` with the same arguments, `python -m lib.cathodes.benchmark relax`.
# Runs: RUNS below, one line each: "<log name> <lib.sweep.direct arguments>". LONG / THESIS name the profiles
# (LONG=smoke THESIS=smoke PY=.venv/bin/python RELAX_SHARDS=1 for a dry run on a laptop).
set -u
SECONDS_TOTAL=${1:-540}  # from the start of this script to the stop of every run
OUT=${OUT:-/tmp/gpu_session_out}
mkdir -p "$OUT"
WORK=$(mktemp -d)
LOGS=$WORK/logs
mkdir -p "$LOGS"
exec > >(tee -a "$OUT/session.log") 2>&1
t_start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t_start )) s] $*"; }

PY=${PY:-python3}
if [ -d .whl ] && ! $PY -c "import pymatgen.core" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { stamp "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site
fi
[ -d .mirror ] && export COMPENDIUM_MIRROR=$PWD/.mirror
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
LONG=${LONG:-long}
THESIS=${THESIS:-thesis}
stamp "python $($PY -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true

# SevenNet's relaxation throughput on the GPU, batched against ASE's FIRE on its calculator one structure after
# another (the #24 figure), beside the preparation below; JSON lines in the session log
( timeout 240 $PY -m bench electrodes --relax-potential sevennet --throughput-only --relax-n 16 --relax-batch 16 \
    > "$LOGS/throughput.log" 2>&1; grep '^{' "$LOGS/throughput.log" ) &
tpid=$!

# the dataset table and every run's graphs, once, on all cores
$PY -m lib.sweep.direct --prepare \
  "cgcnn:$LONG:formation_energy_per_atom,band_gap,log10_G_VRH,log10_K_VRH,poisson_ratio,efermi,energy_per_atom" \
  "megnet:$THESIS:efermi,formation_energy_per_atom,band_gap,energy_per_atom" || { stamp "prepare failed"; exit 1; }
stamp "prepared"
wait "$tpid"
stamp "throughput measured"

# in order of need; MAX_PAR at a time, the next starting as one ends (a finished run is not recognised from its
# archived record on a fresh machine: runs whose records are in records/ are left out of this list)
RUNS=$(cat <<EOF
fe_s0 --profile $LONG --model cgcnn --property formation_energy_per_atom --member 0
fe_e1 --profile $LONG --model cgcnn --property formation_energy_per_atom --member 1
fe_e2 --profile $LONG --model cgcnn --property formation_energy_per_atom --member 2
mg_ef_s1 --profile $THESIS --model megnet --property efermi --seed 1
bg_s0 --profile $LONG --model cgcnn --property band_gap --member 0
bg_e1 --profile $LONG --model cgcnn --property band_gap --member 1
bg_e2 --profile $LONG --model cgcnn --property band_gap --member 2
ef_s0 --profile $LONG --model cgcnn --property efermi
epa_s0 --profile $LONG --model cgcnn --property energy_per_atom
mg_epa_s2 --profile $THESIS --model megnet --property energy_per_atom --seed 2
mg_fe_s2 --profile $THESIS --model megnet --property formation_energy_per_atom --seed 2
mg_bg_s2 --profile $THESIS --model megnet --property band_gap --seed 2
EOF
)
MAX_PAR=${MAX_PAR:-13}
mapfile -t queue <<< "$RUNS"
pids=()
start_next() {  # the graphs stay on the GPU (TrainConfig.resident); should that fail, it resumes with host batches
  local line=${queue[0]}
  queue=("${queue[@]:1}")
  local name=${line%% *} args=${line#* }
  ( $PY -m lib.sweep.direct $args --no-compile --threads 1 \
      || { [ -e "$WORK/stop" ] || $PY -m lib.sweep.direct $args --no-compile --threads 1 --host-batches; } \
  ) > "$LOGS/$name.log" 2>&1 &
  pids+=($!)
}
while [ ${#queue[@]} -gt 0 ] && [ ${#pids[@]} -lt "$MAX_PAR" ]; do start_next; done
stamp "started ${#pids[@]} runs, ${#queue[@]} waiting"
RELAX_SHARDS=${RELAX_SHARDS:-1}  # one process, SevenNet's structures batched on the GPU (64 at a time)
rpids=()
for k in $(seq 0 $((RELAX_SHARDS - 1))); do
  $PY -m lib.cathodes.benchmark relax --potential sevennet --shard "$k/$RELAX_SHARDS" --threads 1 --batch-size 64 \
    --no-progress \
    > "$LOGS/relax_$k.log" 2>&1 &
  rpids+=($!)
done
stamp "started $RELAX_SHARDS relaxation shards"

deadline=$(( t_start + SECONDS_TOTAL ))
while :; do
  alive=0
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
  n_relaxed=$(grep -L '"kind": "static"' data/relax/*/*.json 2>/dev/null | wc -l)
  gpu=$(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null | tr -d ' ')
  stamp "runs alive $alive/${#pids[@]} (${#queue[@]} waiting), relaxations cached $n_relaxed, gpu ${gpu:-none}"
  while [ ${#queue[@]} -gt 0 ] && [ "$alive" -lt "$MAX_PAR" ]; do start_next; alive=$((alive + 1)); done
  [ "$alive" -eq 0 ] && break
  [ "$(date +%s)" -ge "$deadline" ] && { stamp "deadline: stopping (every run resumes from its last epoch)"; break; }
  sleep 15
done
touch "$WORK/stop"
for p in "${pids[@]}" "${rpids[@]}"; do pkill -TERM -P "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
sleep 5
for f in "$LOGS"/*.log; do echo "== $(basename "$f")"; grep -v -i "warn\|logm\|return f(\|^ *$\|volumes = torch" "$f" | tail -3; done
# back: finished runs (record + checkpoint), the saved state of the unfinished ones, the relaxations, the logs
finished=$(ls results/runs/*.json 2>/dev/null)
states=$(for s in results/runs/*.state.pt; do [ -e "$s" ] && [ ! -e "${s%.state.pt}.json" ] && echo "$s"; done)
tar czf "$OUT/runs.tar.gz" $finished $(ls results/runs/*.pt 2>/dev/null | grep -v '\.state\.pt$') "$LOGS" 2>/dev/null
[ -n "$states" ] && tar czf "$OUT/states.tar.gz" $states
tar czf "$OUT/relax.tar.gz" data/relax 2>/dev/null
stamp "back: $(cd "$OUT" && du -h ./*.tar.gz | tr '\n' ' ')"
