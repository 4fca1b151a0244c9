#!/usr/bin/env bash
# The long nano lettering runs (docs/training-runs.md), one at a time on both cores: the decoder (the default) or
# the planner. Starts one, or resumes it exactly from its latest checkpoint, in the background. Checkpoints, logs and
# the data cache live in ~/glmimage-runs (outside the work tree, so they survive a fresh checkout); if that folder is
# gone the runs start again from the shipped weights (the cache is rebuilt first).
#   scripts/train-nano-words.sh              # start or resume the decoder
#   scripts/train-nano-words.sh planner      # start or resume the planner (stop the decoder first)
#   scripts/train-nano-words.sh stop         # stop whichever runs (each resumes exactly from its last save point)
# The planner beside the decoder on one thread at nice 19 made 43 s a step (243 steps in 2h20m, never reaching a
# save point): two runs on two cores starve one, so they take turns.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${GLMIMAGE_RUNS:-$HOME/glmimage-runs}/nano-words"
mkdir -p "$RUNS"
running() { [[ -f "$RUNS/$1.pid" ]] && kill -0 "$(cat "$RUNS/$1.pid")" 2>/dev/null; }

if [[ "${1:-}" == "stop" ]]; then
  for stage in decoder planner; do
    if running "$stage"; then kill "$(cat "$RUNS/$stage.pid")" && echo "$stage stopped"; else echo "$stage not running"; fi
  done
  exit 0
fi

start() {  # stage, nice level, extra arguments
  local stage=$1 level=$2
  shift 2
  if running "$stage"; then echo "$stage already running (pid $(cat "$RUNS/$stage.pid"))"; return; fi
  # OpenMP's default wait policy: passive waiting made a quiet decoder step 1.24x slower (0.93 s against 0.75 s,
  # benchmarks/decoder_train_throughput.py, 2 threads, bf16, binding loss). Foreground work runs under `nice`.
  nohup nice -n "$level" .venv/bin/glmimage train "$stage" --config "configs/train/$stage-nano-words.yaml" --resume \
    "$@" >>"$RUNS/$stage.out" 2>&1 &
  echo $! >"$RUNS/$stage.pid"
  echo "$stage running (pid $!); progress: tail -f $RUNS/$stage.out; scalars: $RUNS/$stage/log.csv"
}

make setup >/dev/null
stage="${1:-decoder}"
case "$stage" in
  decoder|planner) ;;
  *) echo "usage: $0 [decoder|planner|stop]" >&2; exit 2 ;;
esac
other=$([[ "$stage" == decoder ]] && echo planner || echo decoder)
if running "$other"; then echo "$other is running: stop it first ($0 stop)" >&2; exit 1; fi
start "$stage" 0
