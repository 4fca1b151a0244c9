#!/usr/bin/env bash
# The long nano lettering runs (docs/training-runs.md): the decoder (both cores) and, beside it at the lowest CPU
# priority on one thread, the planner. Starts them, or resumes each exactly from its latest checkpoint, in the
# background. Checkpoints, logs and the data cache live in ~/glmimage-runs (outside the work tree, so they survive a
# fresh checkout); if that folder is gone the runs start again from the shipped weights (the cache is rebuilt first).
#   scripts/train-nano-words.sh              # start or resume both
#   scripts/train-nano-words.sh decoder      # only the decoder (e.g. for a quiet benchmark of it)
#   scripts/train-nano-words.sh stop         # stop both (each resumes exactly from its last save point, every 250 steps)
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
start decoder 0
if [[ "${1:-}" != "decoder" ]]; then
  # Both runs read the same cache: the planner starts once the decoder has built it and begun training.
  if grep -q "decoder:" "$RUNS/decoder.out" 2>/dev/null; then
    start planner 19 --set cpu_threads=1
  else
    echo "planner starts when the decoder's data cache is built"
    (until grep -q "decoder:" "$RUNS/decoder.out" 2>/dev/null; do sleep 10; done
     start planner 19 --set cpu_threads=1 >/dev/null) &
  fi
fi
