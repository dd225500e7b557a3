"""The shipped real sample as napari layers (image with its camera offset removed, PSF)."""

from __future__ import annotations

import numpy as np


def lls_sample() -> list[tuple]:
    """napari sample data: the lattice light-sheet crop and its measured PSF.

    Returns
    -------
    list of (data, metadata, "image") LayerData tuples, scale in microns (Z, Y, X).
    """
    from rlcore.data import BACKGROUND
    from rlcore.data import lls_sample as load

    image, psf, voxel = load()
    scale = tuple(v if v is not None else 1.0 for v in (voxel.z, voxel.y, voxel.x))
    image = np.clip(image.astype(np.float32) - np.float32(BACKGROUND), 0, None)
    return [
        (image, {"name": "LLS image", "scale": scale, "colormap": "gray"}, "image"),
        (psf.astype(np.float32), {"name": "LLS PSF", "scale": scale, "colormap": "magma",
                                  "visible": False}, "image"),
    ]
