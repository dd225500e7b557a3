"""
A time-lapse and two channels
=============================

An image with more axes than the PSF is a series of frames: ``(T, Z, Y, X)`` or
``(T, C, Z, Y, X)``. Each frame gives the same result as its own
:func:`rlcore.deconvolve` call, and all frames share one plan (OTF and FFT plans made
once). For a loop of your own, e.g. frames arriving from a microscope, hold the plan in
a :class:`rlcore.Deconvolver`.
"""

import matplotlib.pyplot as plt
import numpy as np

import rlcore

rng = np.random.default_rng(4)
frame_shape = (16, 48, 48)
T = 6
psf = rlcore.psf.gaussian((9, 11, 11), (2.0, 1.3, 1.3))

# two beads drifting across the field, one frame per time point
zz, yy, xx = np.indices(frame_shape)
truth = np.zeros((T,) + frame_shape, np.float32)
for t in range(T):
    for z0, y0, x0 in [(8, 12 + 4 * t, 14), (7, 34, 10 + 5 * t)]:
        truth[t] += 50 * np.exp(-((zz - z0) ** 2 + (yy - y0) ** 2 + (xx - x0) ** 2) / 2)
blurred = np.stack([rlcore.convolve(frame, psf, backend="numpy") for frame in truth])
movie = rng.poisson(blurred + 2.0).astype(np.float32)  # 2 photons of background

# %%
# One plan for the whole loop:

with rlcore.Deconvolver(psf, frame_shape, iterations=15, backend="numpy") as rl:
    results = np.stack([rl.run(frame) for frame in movie])

# %%
# The same in one call on the ``(T, Z, Y, X)`` array (a Dask array would give a lazy
# result, one task per frame):

series = rlcore.deconvolve(movie, psf, 15, backend="numpy")
print("largest difference between the two:", float(np.abs(series - results).max()))

fig, axes = plt.subplots(2, T, figsize=(10, 3.6), layout="constrained")
for t in range(T):
    axes[0, t].imshow(movie[t].max(axis=0), cmap="viridis")
    axes[1, t].imshow(results[t].max(axis=0), cmap="viridis")
    axes[0, t].set_title(f"t = {t}", fontsize=9)
for ax in axes.flat:
    ax.set_axis_off()
axes[0, 0].text(-8, 24, "data", rotation=90, va="center", fontsize=9)
axes[1, 0].text(-8, 24, "deconvolved", rotation=90, va="center", fontsize=9)
plt.show()

# %%
# Channels: ``channel_axis=`` names the C axis and ``psf=[...]`` gives each channel its
# PSF (here a wider one for a longer wavelength).

psf_red = rlcore.psf.gaussian((9, 11, 11), (2.4, 1.6, 1.6))
two_channels = np.stack([movie, movie], axis=1)  # (T, C, Z, Y, X)
both = rlcore.deconvolve(two_channels, [psf, psf_red], 15, backend="numpy", channel_axis=1)
print(two_channels.shape, "->", both.shape, both.dtype)
