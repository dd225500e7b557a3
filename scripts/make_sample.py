"""Make the small real sample shipped in ``rlcore/data/`` from ``../shared/data/``.

Source: pycudadecon's test data (Talley Lambert, MIT license; see rlcore/data/LICENSE-data):
a deskewed lattice light-sheet stack of a cell and the measured bead PSF of that microscope.

Steps (run from the repository root: ``python scripts/make_sample.py``):

* image: crop ``im_deskewed.tif`` (88, 320, 481) uint16 to (64, 128, 128) around the
  brightest part of the cell; kept as uint16, raw (camera offset ~98 included).
* PSF: ``psf.tif`` (61, 128, 128) uint16, z step 0.1 um, xy 0.1019 um, raw. Subtract its
  camera offset (the median, 142), clip at 0, resample z from 0.1 um to the image's plane
  spacing 0.3 * sin(31.5 deg) = 0.1567 um (linear), crop (32, 64, 64) with the peak at
  index n // 2, normalise to sum 1; float32.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import tifffile

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT.parent / "shared" / "data" / "lls_pycudadecon"
DST = ROOT / "rlcore" / "data"
XY_UM = 0.1019
PSF_DZ_UM = 0.1
IMAGE_DZ_UM = 0.3 * math.sin(math.radians(31.5))
IMAGE_SHAPE = (64, 128, 128)
PSF_SHAPE = (32, 64, 64)


def crop_around(array: np.ndarray, centre: tuple[int, ...], shape: tuple[int, ...]):
    starts = [min(max(c - n // 2, 0), s - n) for c, n, s in zip(centre, shape, array.shape)]
    return array[tuple(slice(a, a + n) for a, n in zip(starts, shape))]


def main() -> None:
    image = tifffile.imread(SRC / "im_deskewed.tif")
    smooth = ndi.uniform_filter(image.astype(np.float32), size=(32, 64, 64))
    centre = np.unravel_index(np.argmax(smooth), smooth.shape)
    image_crop = np.ascontiguousarray(crop_around(image, centre, IMAGE_SHAPE))

    psf = tifffile.imread(SRC / "psf.tif").astype(np.float64)
    psf = np.clip(psf - np.median(psf), 0, None)
    psf = ndi.zoom(psf, (PSF_DZ_UM / IMAGE_DZ_UM, 1, 1), order=1)
    peak = np.unravel_index(np.argmax(ndi.gaussian_filter(psf, 1)), psf.shape)
    psf = crop_around(psf, peak, PSF_SHAPE)
    psf = (psf / psf.sum()).astype(np.float32)

    DST.mkdir(exist_ok=True)
    kw = dict(imagej=True, compression="zlib", resolution=(1 / XY_UM, 1 / XY_UM))
    tifffile.imwrite(DST / "lls_image.tif", image_crop,
                     metadata={"axes": "ZYX", "unit": "um", "spacing": IMAGE_DZ_UM}, **kw)
    tifffile.imwrite(DST / "lls_psf.tif", psf,
                     metadata={"axes": "ZYX", "unit": "um", "spacing": IMAGE_DZ_UM}, **kw)
    print("image crop centre", centre, "psf peak", peak)


if __name__ == "__main__":
    main()
