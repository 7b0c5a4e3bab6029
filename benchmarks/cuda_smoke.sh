#!/usr/bin/env bash
# CUDA check on one GPU, CUDA correctness first, in under 17 minutes on an H100 (each step has its
# own time limit, so a slow step cannot eat the others' time):
#   1. the CUDA attack test and the training-engine tests (CPU paths and the CUDA-guarded ones);
#   2. gpu_check.py: real CUDA OOM released, batch sizes from free memory, robust validation in bf16,
#      compile reuse, then fast path vs fp32 samples/s on synthetic CIFAR-shaped data;
#   3. throughput.py --device cuda: engine vs plain fp32 loop per space (target >= 1.5x), and complete
#      trials per hour with 1, 2 and 4 workers on the GPU;
#   4. attack_suite.py --device cuda on the two 3x32x32 models, L-inf and L2: `standard` and `autoattack`
#      against the full AutoAttack run on the GPU (no cache: references for CUDA are timed on CUDA),
#      with samples/s per suite; the models are trained on the CPU, so the curves compare with a CPU run.
# Logs go to $OUT when it is set.   bash benchmarks/cuda_smoke.sh
set -uo pipefail
OUT=${OUT:-$(mktemp -d)}
PY=${PYTHON:-python3}
export GIT_PYTHON_REFRESH=quiet PYTHONUNBUFFERED=1 ROBUSTARCH_SKIP_BROWSER=1
status=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
timeout 120 $PY -m pytest -q -p no:cacheprovider tests/test_attack.py::test_cuda_matches_cpu \
    tests/test_train.py tests/test_layout.py 2>&1 | tee "$OUT/pytest.txt" || status=1
timeout 140 $PY benchmarks/gpu_check.py --samples 20000 --epochs 3 --compile 2>&1 | tee "$OUT/gpu_check.txt" || status=1
timeout 320 $PY benchmarks/throughput.py --device cuda 2>&1 | tee "$OUT/throughput.txt" || status=1
timeout 420 $PY benchmarks/attack_suite.py --device cuda --samples 200 --models synth32,digits32 \
    --cache "$OUT/attack_cache" 2>&1 | tee "$OUT/attack_suite.txt" || status=1
echo "cuda_smoke: exit $status" | tee -a "$OUT/gpu.txt"
exit $status
