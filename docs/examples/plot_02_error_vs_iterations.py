"""
Error against iterations on a phantom
=====================================

Plain Richardson-Lucy first sharpens, then amplifies noise: its error against the truth
has a minimum whose position depends on the object, the PSF and the photon count. On a
generated phantom (so the truth is known) this example draws the error after each
number of updates for plain RL and for the ways rlcore offers to get there in fewer
updates: Biggs-Andrews acceleration (``accelerate=True``), momentum
(``accelerate="momentum"``) and the Wiener-Butterworth back projector
(``back_projector="wiener-butterworth"``).

The error is the NRMSE after flux scaling, ``||s x - t|| / ||t||`` with
``s = sum(t) / sum(x)``, as in ``bench/``.
"""

import matplotlib.pyplot as plt
import numpy as np

import rlcore

rng = np.random.default_rng(1)
shape = (32, 64, 64)

# a phantom: random blobs and a few bright points, on a dim background
zz, yy, xx = np.indices(shape)
truth = np.full(shape, 0.5, np.float32)
for _ in range(25):
    c = rng.uniform((4, 8, 8), (28, 56, 56))
    r = rng.uniform(1.5, 4.0)
    truth[(zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 < r**2] += rng.uniform(2, 6)
for _ in range(20):
    truth[tuple(rng.integers((2, 4, 4), (30, 60, 60)))] += 30.0

psf = rlcore.psf.gaussian((15, 15, 15), (2.5, 1.5, 1.5))
blurred = rlcore.convolve(truth, psf, backend="numpy")
photons = 100.0  # at the brightest blurred voxel
image = rng.poisson(blurred * photons / blurred.max()).astype(np.float32)
truth_scaled = truth * photons / blurred.max()


def nrmse(x, t=truth_scaled):
    return float(np.linalg.norm(x * (t.sum() / x.sum()) - t) / np.linalg.norm(t))


# %%
# Each count is a separate run from the image (a run is deterministic, so the curve is
# what ``iterations=k`` gives).

counts = [1, 2, 3, 4, 6, 8, 10, 14, 20, 30, 45, 70, 100]
variants = {
    "plain RL": {},
    "Biggs-Andrews (accelerate=True)": {"accelerate": True},
    'momentum (accelerate="momentum")': {"accelerate": "momentum"},
    "Wiener-Butterworth back projector": {"back_projector": "wiener-butterworth"},
}
curves = {}
for name, options in variants.items():
    curves[name] = [nrmse(rlcore.deconvolve(image, psf, k, backend="numpy", **options))
                    for k in counts]
    best = int(np.argmin(curves[name]))
    print(f"{name:36s} best NRMSE {curves[name][best]:.3f} at {counts[best]} updates")

# %%
# ``iterations="auto"`` chooses the count from the data alone (no truth): see
# :ref:`sphx_glr_auto_examples_plot_08_auto_iterations.py`.

auto, info = rlcore.deconvolve(image, psf, "auto", backend="numpy", return_info=True)
print(f"auto: {info.iterations} updates, NRMSE {nrmse(auto):.3f} ({info.stop_rule})")

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
for name, curve in curves.items():
    ax.plot(counts, curve, marker="o", ms=3, label=name)
ax.plot(info.iterations, nrmse(auto), "k*", ms=14, label='iterations="auto"')
ax.axhline(nrmse(image), color="0.6", ls=":", label="the data themselves")
ax.set_xscale("log")
ax.set_xlabel("updates")
ax.set_ylabel("NRMSE to the truth")
ax.set_title(f"(32, 64, 64) phantom, Gaussian PSF, {photons:.0f} photons at the peak")
ax.legend(fontsize=8)
plt.show()
