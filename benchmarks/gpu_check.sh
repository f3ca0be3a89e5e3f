#!/usr/bin/env bash
# One-shot GPU check (<= 8 min on one H100/H200): the paper's model (ViT-B/16, 224 px, batch 34) with random
# weights on a CASME II-shaped random flow set; img/s for one fold alone vs groups of 13 and 26 folds, eager and
# reduce-overhead (CUDA graphs), for none, memix, mixaugment and MixMeFormer; MFU, peak memory, and the paper
# protocol extrapolated. Needs only torch, timm, numpy and pandas. A row past the time budget prints "skipped";
# a group that does not fit prints "out of memory". Extra arguments go to both runs (e.g. --device cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
common=(--params params.paper.yaml --pretrained false --method none memix mixaugment mixmeformer --epochs 1)
"$PY" benchmarks/bench_gpu.py "${common[@]}" --fold-batch 1 13 26 --compile false --budget-s 160 "$@"
"$PY" benchmarks/bench_gpu.py "${common[@]}" --fold-batch 26 13 1 --compile reduce-overhead --group-major --budget-s 190 "$@"
