#!/bin/sh
# The GPU machine's check (device tool): wheels carried in .whl/ (no index there), the
# suite with CuPy and NVIDIA's OpenCL, then the GPU benches. Writes into $OUT.
# Usage: OUT=/some/dir sh scripts/gpu-check.sh
set -u
mkdir -p /tmp/icd && echo /usr/local/nvidia/lib64/libnvidia-opencl.so.1 > /tmp/icd/nvidia.icd
export OCL_ICD_VENDORS=/tmp/icd PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --find-links .whl --no-build-isolation \
    array-api-compat psutil tqdm tifffile hypothesis pytest-benchmark pyopencl reikna
python3 -m pip install -q --no-deps --no-build-isolation -e .
[ -d .whl/base ] && python3 -m pip install -q --no-deps --target /tmp/base-site .whl/base/*.whl
nvidia-smi -L
python3 -m rlcore info
timeout 300 python3 -m pytest -q -p no:cacheprovider tests > "$OUT/pytest-gpu.log" 2>&1
tail -3 "$OUT/pytest-gpu.log"
for shape in 256x256x256 64x1024x1024; do
    timeout 150 python3 -m bench.ab --base /tmp/base-site --backend cupy --shape $shape \
        --rounds 5 > "$OUT/ab-cupy-$shape.json" 2>&1
    tail -2 "$OUT/ab-cupy-$shape.json"
done
timeout 200 python3 -m bench.series --backend cupy --out "$OUT/series-gpu" | tail -28
