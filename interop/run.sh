#!/usr/bin/env bash
# `make interop`: what the toolkit writes, read by the real clients, and the other way round.
# Outside `make test` because it installs other Pythons' packages (once, cached in $CACHE):
#   - LeRobot 0.6.1 in a Python 3.12 venv (its releases need Python >= 3.12),
#   - diffusion_policy's pins (Python 3.9, zarr 2.12, numcodecs 0.10, numpy 1.23).
# Prints one line per direction; exits 1 when one fails. A missing Python is a "skipped" line.
# DIFFUSION_POLICY=<a diffusion_policy checkout, or its bare git dir> makes the zarr-2 check use
# diffusion_policy's own ReplayBuffer instead of opening the same layout with zarr 2 directly.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLKIT="$ROOT/.venv/bin"
CACHE="${INTEROP_CACHE:-$ROOT/.interop}"
LEROBOT="lerobot[dataset,training,diffusion]==0.6.1"
WORK="$(mktemp -d)"
LOGS="$CACHE/logs"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$LOGS"
find "$LOGS" -name '*.log' ! -name '*-install.log' -delete  # last run's step logs
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RESULTS=()
FAILED=0

find_python() {  # a python$1.x that runs (pyenv's shims exist for versions that are not active)
  for candidate in "$HOME"/.pyenv/versions/"$1".*/bin/python "python$1"; do
    if "$candidate" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$1'.split('.')))" \
        >/dev/null 2>&1; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

venv() {  # venv NAME PYTHON_VERSION PACKAGES... -> path of its bin/, built once
  local name=$1 version=$2; shift 2
  local dir="$CACHE/$name" python
  if [ ! -f "$dir/.installed" ]; then
    python="$(find_python "$version")" || return 1
    echo "building $dir (Python $version: $*) ..." >&2
    rm -rf "$dir" && "$python" -m venv "$dir" &&
      "$dir/bin/pip" install --quiet "$@" >"$LOGS/$name-install.log" 2>&1 &&
      touch "$dir/.installed" || { echo "install failed: $LOGS/$name-install.log" >&2; return 2; }
  fi
  echo "$dir/bin"
}

step() {  # step LOG COMMAND... : run, keep the log, print its last line (the verdict) or the error
  local log="$LOGS/$1.log"; shift
  if "$@" >"$log" 2>&1; then
    return 0
  fi
  echo "  failed: $* (log: $log)" >&2
  tail -n 3 "$log" >&2
  return 1
}

record() { RESULTS+=("$1"); case "$1" in *FAILS*) FAILED=1 ;; esac; }

# ---- LeRobot, both directions -------------------------------------------------------------
if LR="$(venv lerobot-0.6.1 3.12 "$LEROBOT")"; then
  versions="$("$LR/python" -c 'import lerobot, torch; print(f"lerobot {lerobot.__version__}, torch {torch.__version__}")')"
  if step make-store "$TOOLKIT/python" "$ROOT/interop/make_store.py" "$WORK" &&
     step lerobot-reads "$LR/python" "$ROOT/interop/lerobot_reads.py" "$WORK"; then
    record "$(tail -n 1 "$LOGS/lerobot-reads.log") [$versions]"
    if step lerobot-train "$LR/lerobot-train" --dataset.repo_id=local/dopr-export \
        --dataset.root="$WORK/export" --dataset.video_backend=pyav --policy.type=diffusion \
        --policy.device=cpu --policy.push_to_hub=false --policy.pretrained_backbone_weights=null \
        '--policy.normalization_mapping={"VISUAL": "MEAN_STD", "STATE": "QUANTILES", "ACTION": "QUANTILES"}' \
        --steps=2 --batch_size=2 --num_workers=0 --output_dir="$WORK/train" \
        --save_checkpoint=false --wandb.enable=false --log_freq=1; then
      record "toolkit -> lerobot-train: works (diffusion policy, state and action normalised by quantiles q01/q99, 2 steps)"
    else
      record "toolkit -> lerobot-train: FAILS (log: $LOGS/lerobot-train.log)"
    fi
  else
    record "toolkit -> LeRobot: FAILS: $(tail -n 1 "$LOGS/lerobot-reads.log" 2>/dev/null)"
  fi
  if step lerobot-writes "$LR/python" "$ROOT/interop/lerobot_writes.py" "$WORK" &&
     step toolkit-converts "$TOOLKIT/dopr-robot" data convert "$WORK/lerobot_written" "$WORK/from_lerobot.zarr" &&
     step toolkit-reads "$TOOLKIT/python" "$ROOT/interop/toolkit_reads_lerobot.py" "$WORK"; then
    record "$(tail -n 1 "$LOGS/toolkit-reads.log")"
  else
    record "LeRobot -> toolkit: FAILS (logs in $LOGS)"
  fi
elif [ $? -eq 1 ]; then
  record "LeRobot: skipped (no Python 3.12 on PATH or under pyenv; LeRobot 0.6 needs it)"
else
  record "LeRobot: FAILS: could not install $LEROBOT (log: $LOGS/lerobot-0.6.1-install.log)"
fi

# ---- diffusion_policy ---------------------------------------------------------------------
if DP="$(venv dp-zarr2.12 3.9 zarr==2.12.0 numcodecs==0.10.2 numpy==1.23.3)"; then
  source_file=()
  if [ -n "${DIFFUSION_POLICY:-}" ]; then
    relative=diffusion_policy/common/replay_buffer.py
    if [ -f "$DIFFUSION_POLICY/$relative" ]; then
      source_file=("$DIFFUSION_POLICY/$relative")
    elif git --git-dir "$DIFFUSION_POLICY" show "HEAD:$relative" >"$WORK/dp_replay_buffer.py" 2>/dev/null; then
      source_file=("$WORK/dp_replay_buffer.py")
    else
      echo "DIFFUSION_POLICY=$DIFFUSION_POLICY has no $relative; checking the layout with zarr 2" >&2
    fi
  fi
  if step collect "$TOOLKIT/dopr-robot" collect --env dopr_robot/ReachChain-v0 --task-horizon 2 \
        --episodes 3 --zarr-format 2 --out "$WORK/dp.zarr" --quiet &&
     step dump "$TOOLKIT/python" "$ROOT/interop/dump_store.py" "$WORK/dp.zarr" "$WORK/dp.npz" &&
     step dp-reads "$DP/python" "$ROOT/interop/dp_reads.py" "$WORK/dp.zarr" "$WORK/dp.npz" "${source_file[@]}"; then
    record "$(tail -n 1 "$LOGS/dp-reads.log") [collect --zarr-format 2]"
  else
    record "$(tail -n 1 "$LOGS/dp-reads.log" 2>/dev/null || echo "toolkit -> diffusion_policy: FAILS")"
  fi
elif [ $? -eq 1 ]; then
  record "diffusion_policy: skipped (no Python 3.9 on PATH or under pyenv for its zarr 2.12 pins)"
else
  record "diffusion_policy: FAILS: could not install its pins (log: $LOGS/dp-zarr2.12-install.log)"
fi

echo
printf '%s\n' "${RESULTS[@]}"
exit "$FAILED"
