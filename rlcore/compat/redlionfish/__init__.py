"""RedLionfish's names and meaning on rlcore: switch by changing one import.

``from rlcore.compat.redlionfish import doRLDeconvolutionFromNpArrays`` replaces
``from RedLionfishDeconv import doRLDeconvolutionFromNpArrays`` (3DCT, scripts, napari
tools); the submodules RedLionfish's scripts and tests import exist under the same names:
``RLDeconvolve``, ``RLDeconv3DScipy``, ``RLDeconv3DReiknaOCL``, ``helperfunctions``
(``import rlcore.compat.redlionfish as rl`` for ``import RedLionfishDeconv as rl``).

Differences from RedLionfish 0.10, measured (``python -m bench.redlionfish``):

* **The PSF is centred on its centroid** (after its background is removed;
  :func:`rlcore.psf.centered`; ``center_psf=False`` keeps the array, whose voxel
  ``n // 2`` is then the centre). RedLionfish uses the array as given and flips the whole
  padded PSF for the adjoint, so its result moves with the PSF's centring. A bead imaged
  at a known sub-voxel position comes back within 0.005 voxel whether the PSF array peaks
  at ``n // 2``, ``(n - 1) // 2`` or 3 voxels off.
* **The volume's faces are not periodic**: the boundary is
  :data:`rlcore.boundary.FACE_BOUNDARY` (``"non-circulant-half"``: light from beyond the
  faces is modelled, not wrapped), where RedLionfish's FFTs wrap the volume. On
  RedLionfish's own sample (``gendata_psfconv_poiss.tif`` with ``PSF_RFI_8bit.tif``, the 8
  cubes away from the faces, 10 iterations, 3DCT's call with ``resAsUint8=True``), the
  cubes move from where the data have them by a mean |offset| (z, y, x) of (0.24, 0.11,
  0.15) voxels here ((0.31, 0.12, 0.12) with a periodic boundary), (0.45, 0.24, 0.54)
  with RedLionfish 0.10 (CPU and OpenCL alike). It costs about 1.9x a periodic run's time
  on the CPU, 1.1-1.4x on OpenCL GPUs.
* Results differ from RedLionfish's by more than rounding, because of the centring, the
  boundary and the adjoint: rel. L2 after 10 iterations on 64^3 data, CPU paths: 5.8% for
  an odd 15^3 Gaussian PSF, 7.6% for an even 16^3 one, 3.4% (2.1% without centring) for
  the measured ``PSF_RFI_8bit`` cropped to (31, 32, 32).
* The output shape always equals the input shape (RedLionfish pads an odd last axis to
  an even length and returns it: (8, 10, 11) gives (8, 10, 12) there).
* Errors raise (``ValueError`` / ``TypeError`` naming the argument,
  :class:`rlcore.errors.BackendUnavailableError` without OpenCL) instead of being logged
  with ``None`` returned.
* Kept as RedLionfish has them: float32 from the array functions (uint8 with
  ``resAsUint8``), uint8 returned and written by ``doRLDeconvolutionFromFiles``, one
  ``callbkTickFunc()`` per iteration (per block and iteration in blocks), ``method="gpu"``
  falling back to the CPU, ``useBlockAlgorithm`` (rlcore's block scheduler, sized from the
  free memory), ``RL_CL_PLATFORM_PREFERENCE``, ``generateGaussPSF`` (the same values for
  even cubes; the shape asked for otherwise, where RedLionfish's is one voxel short on odd
  axes and transposed for non-cubes).
* RedLionfish 0.10's own test suite (``test/``, 4 tests) passes against this module, and
  its example scripts run (``python -m bench.redlionfish --upstream``).
"""

from __future__ import annotations

from rlcore.compat.redlionfish import (
    RLDeconv3DReiknaOCL,
    RLDeconv3DScipy,
    RLDeconvolve,
    helperfunctions,
)
from rlcore.compat.redlionfish.helperfunctions import convertToUint8AndFullRange
from rlcore.compat.redlionfish.RLDeconvolve import (
    doRLDeconvolutionFromFiles,
    doRLDeconvolutionFromNpArrays,
)

#: rlcore's earlier name for RedLionfish's ``resAsUint8`` rescale
to_uint8_full_range = convertToUint8AndFullRange

__all__ = ["doRLDeconvolutionFromNpArrays", "doRLDeconvolutionFromFiles",
           "to_uint8_full_range", "RLDeconvolve", "RLDeconv3DScipy", "RLDeconv3DReiknaOCL",
           "helperfunctions"]
