# iterations="auto" on a padded grid agrees across backends (GPU machine: CuPy, OpenCL),
# on the host's split (CuPy draws its own on the device otherwise: autostop.DEVICE_SPLIT)
import sys

import numpy as np
import scipy.ndimage as ndi

import rlcore
from rlcore import autostop

sys.path.insert(0, "tests")
from conftest import gaussian_psf  # noqa: E402

rng = np.random.default_rng(3)
truth = np.zeros((24, 48, 48))
for _ in range(40):
    z, y, x = (rng.integers(2, n - 2) for n in truth.shape)
    truth[z - 1:z + 2, y - 2:y + 2, x - 1:x + 3] += rng.uniform(50, 200)
psf = gaussian_psf((9, 13, 13), (2.0, 1.6, 1.6))
image = rng.poisson(ndi.convolve(truth, psf / psf.sum(), mode="constant") + 2.0)
image = image.astype(np.float32)
autostop.DEVICE_SPLIT = False
ref, ri = rlcore.deconvolve(image, psf, "auto", offset=2.0, boundary="non-circulant-half",
                            backend="numpy", return_info=True)
for be in sys.argv[1:]:
    x, info = rlcore.deconvolve(image, psf, "auto", offset=2.0, boundary="non-circulant-half",
                                backend=be, return_info=True)
    x = np.asarray(x)
    print(be, info.iterations, "numpy", ri.iterations, "rel L2",
          float(np.linalg.norm(x - ref) / np.linalg.norm(ref)))
