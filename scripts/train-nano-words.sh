#!/usr/bin/env bash
# The long nano lettering run (docs/training-runs.md): starts it, or resumes it exactly from its latest checkpoint,
# in the background. Checkpoints, logs and the data cache live in ~/glmimage-runs (outside the work tree, so they
# survive a fresh checkout); if that folder is gone the run starts again from the shipped weights.
#   scripts/train-nano-words.sh            # start or resume
#   scripts/train-nano-words.sh stop       # stop it (it resumes exactly from the last save point, every 250 steps)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${GLMIMAGE_RUNS:-$HOME/glmimage-runs}/nano-words"
PIDFILE="$RUNS/decoder.pid"
mkdir -p "$RUNS"
running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
if [[ "${1:-}" == "stop" ]]; then
  running && kill "$(cat "$PIDFILE")" && echo "stopped" || echo "not running"
  exit 0
fi
if running; then echo "already running (pid $(cat "$PIDFILE")); log: $RUNS/decoder/log.csv"; exit 0; fi
make setup >/dev/null
# The run shares the machine with foreground work: waiting OpenMP threads sleep instead of spinning, so a busy
# neighbour slows it down in proportion instead of many times over.
OMP_WAIT_POLICY=PASSIVE nohup .venv/bin/glmimage train decoder --config configs/train/decoder-nano-words.yaml --resume \
  >>"$RUNS/decoder.out" 2>&1 &
echo $! >"$PIDFILE"
echo "running (pid $!); progress: tail -f $RUNS/decoder.out; scalars: $RUNS/decoder/log.csv"
