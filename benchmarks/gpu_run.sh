#!/usr/bin/env bash
# One device call: install serbench from this folder, then both GPU benchmarks, both shapes each.
# Usage (from the folder holding pyproject.toml): bash benchmarks/gpu_run.sh OUTDIR
set -u
OUTDIR=${1:-/tmp/out}
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1 SERBENCH_HOME=/tmp/serbench-home TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  python3 -m pip install -q --no-index --no-deps --target /tmp/site whl/*.whl && export PYTHONPATH=/tmp/site
  python3 -m pip install -q --no-index --no-deps --no-build-isolation . 2>&1 | tail -2
  python3 -c "from serbench.demo import corpus; corpus.ensure_demo_corpus(); print('demo ready')"
  echo "=== extraction: base on the demo (360 clips), grid"
  timeout 80 python3 benchmarks/bench_extraction.py --device cuda --config base --naive
  echo "=== extraction: large-robust shape on 800 IEMOCAP-like clips"
  timeout 130 python3 benchmarks/bench_extraction.py --device cuda --config large --corpus iemocap-like --clips 800
  rm -rf /tmp/serbench-home/features
  echo "=== training"
  timeout 180 python3 benchmarks/bench_training.py --device cuda --shapes base,large12 --sets demo,iemocap-like --clips 320 --epochs 3 --deterministic-too --again
  echo "=== done"
} 2>&1 | grep --line-buffered -v "Loading weights\|Writing model shards" | tee "$OUTDIR/log.txt"
