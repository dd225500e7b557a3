#!/bin/sh
# System packages the full test suite uses, on Debian/Ubuntu (CI runs this as root):
#   * an OpenCL runtime for CPUs (PoCL) so the OpenCL backend really runs, and the OpenCL
#     headers/loader that pyvkfft (the optional VkFFT provider) compiles against;
#   * Xvfb, Mesa and the Qt/xcb libraries napari's viewer needs to render without a screen.
# Elsewhere it prints what it would install and exits 0: the tests that need these then
# skip, each with its reason.
set -eu
PACKAGES="pocl-opencl-icd opencl-headers ocl-icd-opencl-dev \
xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libxcb-icccm4 \
libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 \
libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: no apt-get; install an OpenCL runtime (GPU driver or PoCL) and Xvfb yourself"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "system-deps: not root and no sudo; would install: $PACKAGES"
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
echo "system-deps: installed OpenCL (PoCL) and Xvfb packages"
