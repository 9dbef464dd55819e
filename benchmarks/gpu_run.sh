#!/usr/bin/env bash
# The full GPU run in ONE command on any CUDA machine (no network needed there):
#   1. throughput: W32 256×192 batch 64, bf16 AMP + channels-last vs fp32 (benchmarks/bench_train.py)
#   2. data: a SynthPose set of N_TRAIN + N_VAL images generated on the machine's cores
#   3. training + AP per epoch + predictions over time: notebook 07 executed in place (FULL mode)
#   3b. appendix A1 executed on the GPU (section 4 times the batch warp + targets on the device)
#   4. evaluation of the run's best checkpoint with `hrnet-edu evaluate` (flip test, the checkpoint's decoding)
# and copies the results to $OUT: gpu_run.log, bench_train.json, train_log.jsonl, train_summary.json,
# evaluate.txt, 07_training_on_gpu.ipynb, A1_speed_and_the_gpu_path.ipynb, nvidia_smi.txt.
#
# A CUDA machine with python3.12 and torch but without pycocotools / ipykernel / nbclient or a network:
# on a machine WITH network, fetch the wheels once into .whl/:   bash benchmarks/gpu_run.sh --fetch-wheels
# (about 37 wheels, 17 MB), copy the repository with its .whl/ folder to the GPU machine, and run
#   bash benchmarks/gpu_run.sh
# there (it installs from .whl/ when present). About 1 min set-up + benchmark, 1 min data, 6 min notebook,
# 0.5 min evaluation on an H100-class GPU; shorten with env vars, e.g. "EPOCHS=12 bash benchmarks/gpu_run.sh".
set -uo pipefail
cd "$(dirname "$0")/.."
N_TRAIN=${N_TRAIN:-10000}
N_VAL=${N_VAL:-1000}
EPOCHS=${EPOCHS:-20}
OUT=${OUT:-runs/gpu_out}
WHEELS="pycocotools ipykernel nbclient nbformat"

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    # Resolve the wheels for the device's Python 3.12 / x86-64, with their dependencies.
    mkdir -p .git/info && { grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude; }
    python3 -m pip download --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl $WHEELS
    # What the device already has (torch, numpy, matplotlib, pillow, psutil, ...) must not travel twice.
    rm -f .whl/numpy-* .whl/torch-* .whl/matplotlib-* .whl/pillow-* .whl/psutil-* .whl/setuptools-*
    du -sh .whl
    exit 0
fi

mkdir -p "$OUT"
LOG="$OUT/gpu_run.log"
exec > >(tee "$LOG") 2>&1
t0=$(date +%s)
stamp() { echo "== $(( $(date +%s) - t0 )) s: $*"; }

if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
nvidia-smi > "$OUT/nvidia_smi.txt" 2>&1
python3 -c "import torch, pycocotools; print('torch', torch.__version__, torch.cuda.get_device_name(0))" || exit 1

stamp "1. throughput benchmark"
python3 benchmarks/bench_train.py --json "$OUT/bench_train.json" --steps 20

stamp "2. SynthPose: $N_TRAIN train + $N_VAL val images"
if [[ ! -f data/synthpose/annotations/person_keypoints_val.json ]]; then
    python3 -m hrnet_edu.cli synth --out data/synthpose --train "$N_TRAIN" --val "$N_VAL" --seed 0 || exit 1
fi

# execute_notebook NAME TIMEOUT_S: run notebooks/NAME.ipynb in place (from notebooks/, as in the course)
execute_notebook() {
    python3 - "$1" "$2" <<'EOF'
import sys, time, nbformat
from nbclient import NotebookClient
path, timeout = f"notebooks/{sys.argv[1]}.ipynb", int(sys.argv[2])
nb = nbformat.read(path, as_version=4)
start = time.time()
NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": "notebooks"}}).execute()
nbformat.write(nb, path)
print(f"{path} executed in {time.time() - start:.0f} s")
EOF
}

stamp "3. notebook 07 (full run, $EPOCHS epochs)"
HRNET_EDU_NB07_EPOCHS="$EPOCHS" execute_notebook 07_training_on_gpu 3600 || exit 1
cp notebooks/07_training_on_gpu.ipynb "$OUT/"
RUN_DIR=runs/nb07_synthpose_w32_256x192
cp "$RUN_DIR/log.jsonl" "$OUT/train_log.jsonl"
python3 - <<EOF > "$OUT/train_summary.json"
import json, torch
state = torch.load("$RUN_DIR/last.pt", map_location="cpu", weights_only=True)
print(json.dumps({"epoch": state["epoch"], "best_ap": state["best_ap"], "config": state["config"],
                  "metrics": state["metrics"]}, indent=1))
EOF

stamp "3b. appendix A1 (its GPU data path timed on the GPU)"
execute_notebook A1_speed_and_the_gpu_path 600 && cp notebooks/A1_speed_and_the_gpu_path.ipynb "$OUT/"

stamp "4. evaluate best.pt"
python3 -m hrnet_edu.cli evaluate --checkpoint "$RUN_DIR/best.pt" --no-progress --workers 8 | tee "$OUT/evaluate.txt"
stamp "done"
