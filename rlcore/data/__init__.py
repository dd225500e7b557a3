"""A small real sample shipped with rlcore (no download needed).

``lls_image.tif``: (64, 128, 128) uint16 crop of a deskewed lattice light-sheet stack of a
cell, raw (camera offset ~98). ``lls_psf.tif``: (32, 64, 64) float32 measured bead PSF of
the same microscope, offset removed, resampled to the image's plane spacing, peak at
``n // 2``, sum 1. Voxel size (z, y, x) = (0.1567, 0.1019, 0.1019) um.

Source: pycudadecon test data, (c) 2019 Talley Lambert, MIT license (``LICENSE-data``);
derived by ``scripts/make_sample.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["path", "lls_sample", "BACKGROUND"]

#: Camera offset of the sample image (pycudadecon's own test uses background=98).
BACKGROUND = 98.0


def path(name: str) -> Path:
    """Path of a shipped sample file (``"lls_image.tif"`` or ``"lls_psf.tif"``).

    Raises
    ------
    FileNotFoundError
        No such sample file.
    """
    p = Path(__file__).with_name(name)
    if not p.is_file() or p.suffix != ".tif":
        raise FileNotFoundError(
            f"name: no sample file {name!r}; use 'lls_image.tif' or 'lls_psf.tif'"
        )
    return p


def lls_sample():
    """The lattice light-sheet sample: ``(image, psf, voxel_size)``.

    Returns
    -------
    image : ndarray, uint16, shape (64, 128, 128)
        Raw camera counts (subtract :data:`BACKGROUND` before deconvolving).
    psf : ndarray, float32, shape (32, 64, 64)
        Measured PSF, sum 1, centre voxel at ``n // 2``.
    voxel_size : rlcore.io.VoxelSize
        In microns.
    """
    from rlcore.io import read_image

    image, voxel = read_image(path("lls_image.tif"))
    psf, _ = read_image(path("lls_psf.tif"))
    return image, np.asarray(psf, dtype=np.float32), voxel
