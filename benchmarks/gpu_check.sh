#!/usr/bin/env bash
# GPU checks, in one go: extraction throughput and a short bf16 training run, ViT-B/16 with random
# weights (no downloads). Prints figures; exits 0 with a note on a machine without CUDA.
#   bash benchmarks/gpu_check.sh            # from the repository root, in the project's environment
#   PYTHON=.venv/bin/python GPU_CLIPS=40 bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
CLIPS=${GPU_CLIPS:-40}          # training clips per class from data_samples/synthetic (7 classes; 40 = all)
WORKERS=${GPU_WORKERS:-4}
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA GPU visible to PyTorch here; nothing to check."; exit 0
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT

echo "== (b) extraction throughput: pipeline (decode + transform + encode, bf16 autocast) vs bare encode_image =="
"$PY" benchmarks/bench_train.py --only b --device cuda --backbone ViT-B-16-quickgelu --clips-per-class "$CLIPS" \
      --extract-batch 256 --workers "$WORKERS"

echo "== (a) one epoch from the cache vs from video (bf16 autocast), paper MAT 16x64, batch 64 =="
"$PY" benchmarks/bench_train.py --only a --device cuda --backbone ViT-B-16-quickgelu --clips-per-class "$CLIPS" \
      --batch-size 64 --epochs 3

echo "== short bf16 training run through the command line (BAP 1+1+1 epochs) =="
/usr/bin/env time -v "$PY" -m a3lign_nb.cli train --backbone ViT-B-16-quickgelu --pretrained none --device cuda --amp bf16 \
      --text-epochs 1 --image-epochs 1 --joint-epochs 1 --batch-size 64 --num-workers "$WORKERS" \
      --out-dir "$OUT/run" --no-progress 2>"$OUT/time.txt"
grep -E "Elapsed|Maximum resident" "$OUT/time.txt" || true
"$PY" - "$OUT/run" <<'PY'
import json, sys
log = [json.loads(l) for l in open(f'{sys.argv[1]}/log.jsonl')]
for r in log: print(f"epoch {r['epoch']} {r['stage']:5s} {r['epoch_s']:.2f} s  loss {r['train_loss']:.3f}")
ev = json.load(open(f'{sys.argv[1]}/eval.json')); print(f"UAR {100*ev['uar']:.2f}%  WAR {100*ev['war']:.2f}% (random weights: chance level expected)")
PY
