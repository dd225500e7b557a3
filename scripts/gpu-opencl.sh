# The OpenCL-on-GPU checks of issue 17 on the GPU machine (device tool), wheels in .whl/
# (pyvkfft built here with VKFFT_BACKEND=opencl; .whl/lib holds an ICD loader).
# Usage: bash scripts/gpu-opencl.sh [bench arguments...]
mkdir -p /tmp/icd && echo /usr/local/nvidia/lib64/libnvidia-opencl.so.1 > /tmp/icd/nvidia.icd && export OCL_ICD_VENDORS=/tmp/icd
export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$PWD/.whl/lib PYTHONUNBUFFERED=1
python3 -c "import pyvkfft" 2>/dev/null || python3 -m pip install -q --no-index --find-links .whl --no-build-isolation array-api-compat psutil tqdm tifffile hypothesis pytest-benchmark pyopencl reikna pyvkfft RedLionfish 2>&1 | tail -2
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
