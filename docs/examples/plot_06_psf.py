"""
PSFs: generate, centre, measure
===============================

rlcore's convention: the PSF's centre is voxel ``n // 2`` on each axis (as
``scipy.signal.fftconvolve(mode="same")`` for odd sizes). A PSF whose centroid sits
elsewhere shifts the result by as much, so :func:`rlcore.deconvolve` warns when it is
more than half a voxel off, and :func:`rlcore.psf.centered` moves it there (the command
line, napari and the RedLionfish compat do so by default).

This example generates a theoretical widefield PSF (through psfmodels,
``pip install "rlcore[psf]"``), measures it, shifts it off centre as a badly cropped
bead stack would be, and shows what centring does to a deconvolved bead.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

import rlcore

voxel_size = (0.2, 0.1, 0.1)  # (z, y, x), microns: the image's own voxel size
wf = rlcore.psf.widefield((33, 65, 65), voxel_size, na=1.4, wavelength=0.52, ni=1.515)
gauss = rlcore.psf.gaussian((33, 65, 65), (2.6, 1.0, 1.0))
for name, p in [("widefield NA 1.4, 520 nm", wf), ("Gaussian", gauss)]:
    print(f"{name:25s} FWHM (z, y, x) um:", np.round(rlcore.psf.fwhm(p, voxel_size), 3))

# %%
# A PSF array that peaks 3 voxels away from ``n // 2`` in x (and 2 in z):

off = np.roll(wf, (2, 0, 3), axis=(0, 1, 2))
print("centroid offset (voxels):", np.round(rlcore.psf.centroid_offset(off), 2))
fixed, moved_by = rlcore.psf.centered(off)
print("centered() moved it by:", np.round(moved_by, 2), "->",
      np.round(rlcore.psf.centroid_offset(fixed), 2))

# %%
# A bead imaged with the true PSF, deconvolved with the off-centre PSF as given and
# with the centred one: only the latter puts the bead back where it was.

shape = (40, 80, 80)
bead = np.zeros(shape, np.float32)
bead[20, 40, 40] = 1000.0
image = rlcore.convolve(bead, wf, backend="numpy") + 1.0


def centroid(x):
    w = np.clip(x - np.percentile(x, 50), 0, None)
    return [float((w * g).sum() / w.sum()) for g in np.indices(x.shape)]


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the off-centre PSF's warning, expected here
    as_given = rlcore.deconvolve(image, off, 20, backend="numpy")
centred = rlcore.deconvolve(image, fixed, 20, backend="numpy")
for name, x in [("as given", as_given), ("centred", centred)]:
    print(f"bead at (20, 40, 40) comes back at {np.round(centroid(x), 2)} ({name})")

fig, axes = plt.subplots(1, 4, figsize=(10, 3.2), layout="constrained")
axes[0].imshow(wf.max(axis=1) ** 0.5, cmap="inferno", aspect=2)
axes[0].set_title("widefield PSF, XZ (sqrt)", fontsize=9)
axes[1].imshow(off.max(axis=1) ** 0.5, cmap="inferno", aspect=2)
axes[1].set_title("off-centre array", fontsize=9)
for ax, (name, x) in zip(axes[2:], [("result, PSF as given", as_given),
                                    ("result, PSF centred", centred)]):
    ax.imshow(x[:, 32:48, 32:48].max(axis=1), cmap="gray", aspect=2)
    ax.axvline(8, color="tab:cyan", lw=0.8)
    ax.axhline(20, color="tab:cyan", lw=0.8)
    ax.set_title(name, fontsize=9)
for ax in axes:
    ax.set_axis_off()
plt.show()

# %%
# The PSF must be sampled at the image's voxel size: :func:`rlcore.psf.resample`
# resamples a measured one (sum and centre voxel kept), and ``rlcore.deconvolve(...,
# psf_voxel_size=..., voxel_size=...)`` does it for you; the command line does it when
# both files state their voxel sizes.
