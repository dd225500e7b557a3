"""
Before and after: the lattice light-sheet sample
================================================

rlcore ships a small real data set: a (64, 128, 128) crop of a deskewed lattice
light-sheet stack of a cell, with the measured PSF of the same microscope
(:func:`rlcore.data.lls_sample`, no download). Here it is deconvolved with 10
Richardson-Lucy iterations and shown as maximum projections along Z and along Y.
"""

import matplotlib.pyplot as plt
import numpy as np

import rlcore
from rlcore.data import BACKGROUND, lls_sample

image, psf, voxel_size = lls_sample()
print("image", image.shape, image.dtype, "psf", psf.shape, "voxel size (um)", voxel_size)

# %%
# The camera offset (about 98 counts) is subtracted first; the PSF is centred on its
# centroid so that the result is not shifted (:func:`rlcore.psf.centered`, which the
# command line and napari do by default). ``"non-circulant-half"`` models light from
# beyond the volume's faces instead of wrapping it around; it is the command line's
# default (see :doc:`/boundaries`).

psf_centred, moved_by = rlcore.psf.centered(psf)
print("PSF centroid moved by", np.round(moved_by, 2), "voxels")

data = np.clip(image.astype(np.float32) - BACKGROUND, 0, None)
result, info = rlcore.deconvolve(data, psf_centred, iterations=10, backend="numpy",
                                 boundary="non-circulant-half", return_info=True)
print(result.shape, result.dtype, info.iterations, "iterations on", info.device)

# %%
# Maximum projections: along Z (top) and along Y (bottom, Z stretched to the voxel
# aspect ratio).

aspect = voxel_size.z / voxel_size.y
fig, axes = plt.subplots(2, 2, figsize=(8, 6.2), height_ratios=[1, 0.8],
                         layout="constrained")
for col, (name, vol) in enumerate([("raw data", data), ("deconvolved, 10 iterations", result)]):
    axes[0, col].imshow(vol.max(axis=0), cmap="magma")
    axes[0, col].set_title(f"{name}: max over Z")
    axes[1, col].imshow(vol.max(axis=1), cmap="magma", aspect=aspect)
    axes[1, col].set_title("max over Y")
for ax in axes.flat:
    ax.set_axis_off()
plt.show()
