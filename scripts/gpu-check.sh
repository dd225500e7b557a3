#!/bin/sh
# The GPU machine's check (device tool): wheels carried in .whl/ (no index there: the
# packages its image lacks, e.g. array-api-compat, array-api-strict, dask, distributed,
# partd, locket, tornado, zict, tblib, pyopencl, pytools, platformdirs, siphash24, mako,
# reikna, funcsigs, zarr, numcodecs, donfig, google-crc32c, msgspec), the suite with CuPy
# and NVIDIA's OpenCL, then auto's fixed costs. Writes into $OUT.
# Usage: OUT=/some/dir sh scripts/gpu-check.sh
set -u
mkdir -p /tmp/icd && echo /usr/local/nvidia/lib64/libnvidia-opencl.so.1 > /tmp/icd/nvidia.icd
export OCL_ICD_VENDORS=/tmp/icd PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-deps --no-build-isolation -e . || exit 1
nvidia-smi -L
timeout 300 python3 -m pytest -q -p no:cacheprovider -n 8 tests > "$OUT/pytest-gpu.log" 2>&1
tail -4 "$OUT/pytest-gpu.log"
grep -E "FAILED|ERROR" "$OUT/pytest-gpu.log" | head
for s in "96 192 192" "128 384 384"; do
  timeout 70 python3 bench/experiments/gpu_auto_host_parts.py cupy $s 100 2>&1 | tail -16
done
# an earlier install's wheel in .whl/base: A/B of the two on CuPy
if [ -d .whl/base ]; then
  python3 -m pip install -q --no-deps --target /tmp/base-site .whl/base/*.whl
  for shape in 256x256x256 64x1024x1024; do
    timeout 150 python3 -m bench.ab --base /tmp/base-site --backend cupy --shape $shape \
        --rounds 5 > "$OUT/ab-cupy-$shape.json" 2>&1
    tail -2 "$OUT/ab-cupy-$shape.json"
  done
fi
timeout 200 python3 -m bench.series --backend cupy --out "$OUT/series-gpu" | tail -28
