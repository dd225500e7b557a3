mkdir -p /tmp/icd && echo /usr/local/nvidia/lib64/libnvidia-opencl.so.1 > /tmp/icd/nvidia.icd && export OCL_ICD_VENDORS=/tmp/icd
export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$PWD/.whl/lib PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --find-links .whl --no-build-isolation array-api-compat psutil tqdm tifffile hypothesis pytest-benchmark pyopencl reikna pyvkfft RedLionfish 2>&1 | tail -2
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import pyvkfft.opencl, rlcore; print([b.devices for b in rlcore.available_backends()])"
timeout 420 python3 -m bench.opencl_gpu --rounds 3 --out $OUT/opencl-gpu 2>&1 | grep -v Warning | tee $OUT/bench.log
timeout 150 python3 -m pytest -q -x tests/test_opencl.py -p no:cacheprovider 2>&1 | tail -3
