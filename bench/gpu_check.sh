#!/usr/bin/env bash
# The GPU check, for the day a CUDA device is lent: one line per check, under 8 minutes.
#
#   bash bench/gpu_check.sh        (from the repository root, after `make venv`)
#
# 1. the CUDA test subset (pytest -m cuda);
# 2. the trainer's step on diffusion_policy's U-Net: eager, fast fp32, fast bf16 (bench/gpu_check.py);
# 3. DoPr over AdamW against AdamW at diffusion_policy's widths;
# 4. one study cell (the quick preset) with --device cuda;
# 5. an NCCL two-process training step, where there are two GPUs.
# Without CUDA it says so in one sentence and exits 2. Exit 1 if any check failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)" 2>/dev/null)
if [[ -z "$GPUS" || "$GPUS" == 0 ]]; then
  echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing was run" >&2
  exit 2
fi
LOG=$(mktemp -d)
failed=0
check() {  # check NAME SECONDS COMMAND...: one line, the command's last line or its failure
  local name=$1 limit=$2; shift 2
  local started=$SECONDS
  if timeout "$limit" "$@" >"$LOG/$name.out" 2>"$LOG/$name.err"; then
    echo "ok    $name ($((SECONDS - started)) s): $(tail -n 1 "$LOG/$name.out")"
  else
    failed=1
    echo "FAIL  $name ($((SECONDS - started)) s): $(tail -n 1 "$LOG/$name.err" "$LOG/$name.out" | grep -v '^==>' | grep . | tail -n 1) [logs: $LOG]"
  fi
}
echo "gpu_check: $GPUS GPU(s), $("$PY" -c 'import torch; print(torch.__version__, torch.cuda.get_device_name())')"
check cuda-tests 150 "$PY" -m pytest -q -m cuda -p no:cacheprovider tests
check trainer-step 120 "$PY" bench/gpu_check.py trainer
check dopr-over-adamw 60 "$PY" bench/gpu_check.py dopr
check study-cell 180 .venv/bin/dopr-robot study --preset quick --device cuda --out "$LOG/study" --quiet
if [[ "$GPUS" -ge 2 ]]; then
  check nccl-2-process 60 .venv/bin/torchrun --standalone --nproc_per_node 2 bench/gpu_check.py nccl-step
else
  echo "skip  nccl-2-process: one GPU here (needs two)"
fi
exit $failed
