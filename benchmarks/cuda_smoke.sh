#!/usr/bin/env bash
# CUDA smoke check on a GPU machine, CUDA correctness first: the CUDA attack test and the package
# tests that need no server, then `gpu_check.py` (fast path vs fp32 on synthetic CIFAR-shaped data),
# then a 4-trial default study on the GPU, timed. Results (logs) go to $OUT when it is set.
#   bash benchmarks/cuda_smoke.sh
set -uo pipefail
OUT=${OUT:-$(mktemp -d)}
export GIT_PYTHON_REFRESH=quiet PYTHONUNBUFFERED=1 ROBUSTARCH_SKIP_BROWSER=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_attack.py::test_cuda_matches_cpu tests/test_attack_types.py \
    tests/test_layout.py tests/test_train.py 2>&1 | tee "$OUT/pytest.txt"
python3 benchmarks/gpu_check.py --samples 20000 --epochs 3 2>&1 | tee "$OUT/gpu_check.txt"
work=$(mktemp -d)
start=$(date +%s.%N)
(cd "$work" && python3 -m robustarch search --n-trials 4 --study cuda-smoke --device cuda \
    --report-dir "$work/reports") 2>&1 | tee "$OUT/study.txt"
end=$(date +%s.%N)
python3 -c "print(f'default study, 4 trials on CUDA: {float($end) - float($start):.1f} s wall')" | tee -a "$OUT/study.txt"
