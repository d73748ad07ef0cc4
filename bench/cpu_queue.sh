#!/usr/bin/env bash
# The long CPU work of the open issues as one queue (docs/sweep.md, "The CPU queue"): start it at the top of a
# session, keep working on the other core, stop it (or let its deadline stop it) before CI.
#
#   bash bench/cpu_queue.sh [WORKERS] [SECONDS]     # default 1 worker, 2 h; logs in logs/queue/
#   nohup bash bench/cpu_queue.sh 1 9000 > logs/queue.log 2>&1 &
#
# Each item is one process at one thread, taken in the order below by WORKERS workers. Every item resumes
# where it stopped (lib.sweep.direct from its last epoch; the relaxations from their cache), so the queue is simply started again next session. At the deadline every item still
# running is stopped (TERM) and the finished records, the long trainings (parked) and relaxations are archived
# into records/ (commit them). THESIS / LONG name the profiles (THESIS=smoke LONG=smoke ARCHIVE=0 for a dry run in a minute or
# two; ARCHIVE=0 leaves records/ alone).
set -u
WORKERS=${1:-1}
SECONDS_TOTAL=${2:-7200}
PY=${PY:-.venv/bin/python}
THESIS=${THESIS:-thesis}
LONG=${LONG:-long}
LOGS=${LOGS:-logs/queue}
mkdir -p "$LOGS"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
DIRECT="$PY -m lib.sweep.direct --threads 1"

# The queue first restores LONG's archived records and parked trainings (records/parked/: the states of runs
# stopped in an earlier session, the checkpoints of finished ones), and at the end parks them again, so a long
# training resumes in the next session even on a new checkout. A finished run with its record and checkpoint here
# is skipped (its record left as written); a THESIS run is not parked, so take it out of this list once its record
# is in records/ (as every MEGNet cell of Table 6's seed 1, the built pairs' relaxations and SevenNet's of the 864
# electrode-benchmark structures were, 2026-12-06).
# "<log name> <command>", most wanted first (issue 38; each resumes from its cache): the static energies of every
# end member of MP's 4,401 pairs (~7,600 structures) that the potentials whose weights ship in their wheels still
# lack (2026-12-07: CHGNet, SevenNet-0, SevenNet-MF-0's PBE head and CHGNet r2SCAN are complete; SevenNet-MF-0's
# R2SCAN head ~0.3 s a structure and SevenNet-l3i5 ~0.6-0.9 s at one thread are not), then both ends of the
# stratified relaxed sample with the benchmark's best potential (lib.cathodes.routes.relaxed_sample: 400 Li pairs,
# 50 of every other ion with >= 100; ~20 s a structure; any prefix is itself stratified), then the long-profile
# trainings of the shipped models still at 20 epochs: energy per atom (parked at epoch 49), then Fermi energy.
STATIC="$PY -m lib.cathodes.potentials static --threads 1"
QUEUE=(
  "static_sevennet_mf0_r2scan $STATIC sevennet_mf0_r2scan"
  "static_sevennet_l3i5 $STATIC sevennet_l3i5"
  "relax_sample_sevennet $PY -m lib.cathodes.routes relax sevennet --threads 1"
  "curves_relaxed $PY -m bench curves --relax --no-neb"
)
# Parked, not queued while the electrode work needs the cores (2026-12-07): the long-profile trainings
#  "long_energy_per_atom $DIRECT --profile $LONG --model cgcnn --property energy_per_atom --seed 0"
#  "long_efermi $DIRECT --profile $LONG --model cgcnn --property efermi --seed 0"

deadline=$(( $(date +%s) + SECONDS_TOTAL ))
[ "${ARCHIVE:-1}" = 1 ] && $PY -m lib.records restore --profile "$LONG"
run_one() {  # name command...: run it until the deadline, one line of outcome
  local name=$1; shift
  local left=$(( deadline - $(date +%s) ))
  if [ "$left" -le 60 ]; then echo "$(date +%T) $name: not started (deadline)"; return 0; fi
  echo "$(date +%T) $name: start ($left s left)"
  timeout --signal=TERM --kill-after=30 "$left" "$@" >> "$LOGS/$name.log" 2>&1
  local rc=$?
  case $rc in
    0) echo "$(date +%T) $name: done" ;;
    124) echo "$(date +%T) $name: stopped at the deadline (resumes next time)" ;;
    *) echo "$(date +%T) $name: failed (rc $rc, see $LOGS/$name.log)" ;;
  esac
}
export -f run_one
export deadline LOGS
printf '%s\n' "${QUEUE[@]}" | xargs -P "$WORKERS" -L 1 bash -c 'run_one "$@"' _

[ "${ARCHIVE:-1}" = 1 ] || exit 0
echo "$(date +%T) archiving records and relaxations"
$PY -m lib.records archive --profile "$THESIS" && $PY -m lib.records archive --profile "$LONG" \
  && $PY -m lib.records park --profile "$LONG" && $PY -m lib.cathodes.relax archive
