# The GPU machine's (device tool's) environment: CuPy is there; the rest comes as wheels in
# .whl/ (ignored by git: `echo /.whl/ >> .git/info/exclude`), made here for its Python 3.12:
#   P="--no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d .whl
#      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any"
#   for n in array-api-compat pyopencl mako pytools platformdirs siphash24 funcsigs redlionfish
#   do python3 -m pip download $P $n; done
#   PYENV_VERSION=3.12.1 python3.12 -m pip wheel --no-deps reikna -w .whl
#   PYENV_VERSION=3.12.1 VKFFT_BACKEND=opencl python3.12 -m pip wheel --no-deps pyvkfft -w .whl
#   mkdir -p .whl/lib && cp /usr/lib/x86_64-linux-gnu/libOpenCL.so.1 .whl/lib/
# (psfmodels has no wheel for it: save the bench's widefield PSF as .npy, see
# bench/experiments/gpu_auto_speed.py --widefield-psf.) Then, in a run with carry [".whl"]:
#   source scripts/gpu-opencl.sh && python3 -m pytest ...
# NVIDIA's OpenCL driver has no ICD file there: one is made in /tmp/icd.
mkdir -p /tmp/icd && echo /usr/local/nvidia/lib64/libnvidia-opencl.so.1 > /tmp/icd/nvidia.icd
export OCL_ICD_VENDORS=/tmp/icd
export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$PWD/.whl/lib PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
