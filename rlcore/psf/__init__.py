"""PSF tools: generate (Gaussian, widefield, confocal), tidy (centre, crop, normalise,
background), measure (FWHM), and distil a PSF from an image of sub-resolution beads.
This is the public face; the code lives in ``rlcore/psf/_*.py``.

Conventions: arrays are ``(Z, Y, X)``; the PSF centre is voxel ``n // 2`` on each axis;
voxel sizes and wavelengths are in microns.
"""

from __future__ import annotations

from rlcore._psfmath import (  # noqa: F401 (public here)
    CENTER_WARNING,
    SUPPORT_ENERGY,
    Background,
    background_subtract,
    border_background,
    center_of,
    centroid_offset,
    foreground,
    fwhm,
    support,
)
from rlcore.psf._beads import (  # noqa: F401 (the tolerances: public here)
    BEAD_SIGNIFICANCE,
    bead_threshold,
    detect_beads,
    distill,
)
from rlcore.psf._centring import (  # noqa: F401
    CENTER_TOLERANCE,
    REFINE_TOLERANCE,
    center,
    centered,
    crop,
)
from rlcore.psf._common import normalize
from rlcore.psf._models import (
    confocal,
    confocal_depths,
    gaussian,
    widefield,
    widefield_depths,
)
from rlcore.psf._resampling import resample

__all__ = [
    "gaussian", "widefield", "confocal", "widefield_depths", "confocal_depths", "center",
    "crop", "normalize", "resample",
    "background_subtract", "fwhm", "detect_beads", "bead_threshold", "distill",
    "centroid_offset", "centered", "foreground", "support", "center_of",
    "border_background", "Background",
]
