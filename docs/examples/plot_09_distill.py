"""
A PSF distilled from beads
==========================

:func:`rlcore.psf.distill` estimates a PSF from an image of sub-resolution beads by
reverse deconvolution: the beads are detected, a points image is built (one voxel per
bead), and RL runs with the roles swapped (the bead image as the image, the points as the
"PSF"). The result is centred at ``n // 2``, non-negative and sums to 1.

Here the beads are simulated with a known widefield PSF, so the distilled one can be
compared with it.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

import rlcore

rng = np.random.default_rng(9)
voxel_size = (0.25, 0.1, 0.1)
true_psf = rlcore.psf.widefield((21, 31, 31), voxel_size, na=1.3, wavelength=0.6, ni=1.515)

shape = (40, 128, 128)
points = np.zeros(shape, np.float32)
positions = [(20, 24, 24), (18, 30, 100), (21, 100, 30), (20, 96, 98), (19, 64, 64),
             (22, 60, 20)]
for p in positions:
    points[p] = 2e5
beads = rng.poisson(rlcore.convolve(points, true_psf, backend="numpy") + 20.0)
beads = beads.astype(np.float32)

with warnings.catch_warnings():
    # distill's swapped run uses the points image as its "PSF", whose centroid is not at
    # n // 2, and rlcore.deconvolve warns about that; the warning does not apply here
    warnings.filterwarnings("ignore", message="psf: its centroid")
    psf, found = rlcore.psf.distill(beads, (21, 31, 31), backend="numpy", return_beads=True)
print(f"{len(found)} beads found")
for name, p in [("true", true_psf), ("distilled", psf)]:
    print(f"{name:10s} FWHM (z, y, x) um:", np.round(rlcore.psf.fwhm(p, voxel_size), 3))

fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained",
                         width_ratios=[1.6, 1, 1])
axes[0].imshow(beads.max(axis=0), cmap="gray")
axes[0].plot([f[2] for f in found], [f[1] for f in found], "o", mfc="none", mec="tab:red",
             ms=12)
axes[0].set_title("bead image (max over Z), beads found", fontsize=9)
for ax, (name, p) in zip(axes[1:], [("true PSF", true_psf), ("distilled PSF", psf)]):
    ax.imshow(p.max(axis=1) ** 0.5, cmap="inferno", aspect=voxel_size[0] / voxel_size[2])
    ax.set_title(f"{name}, XZ (sqrt)", fontsize=9)
for ax in axes:
    ax.set_axis_off()
plt.show()

# %%
# The command line does the same: ``rlcore psf distill BEADS.tif -o PSF.tif --shape 21 31
# 31``. On the BIAN confocal beads it gives FWHM z 0.54, y 0.24, x 0.16 um
# (``bench/results/psf.md``).
