"""
The command line on the shipped sample
======================================

The same sample through ``rlcore``'s command line: ``rlcore sample -o DIR`` writes the
image and its PSF as TIFF files with their voxel size, and ``rlcore deconvolve`` reads,
deconvolves and writes the result (atomically: see :doc:`/reliability`). The command
line centres the PSF on its centroid and uses the ``"non-circulant-half"`` boundary by
default. Here both run through ``python -m rlcore``, as they would in a shell.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import rlcore.io

folder = Path(tempfile.mkdtemp())


def run(*args):
    print("$ rlcore", " ".join(args))
    done = subprocess.run([sys.executable, "-m", "rlcore", *args], capture_output=True,
                          text=True, check=True)
    print(done.stdout + done.stderr)


run("sample", "-o", str(folder))
run("deconvolve", str(folder / "lls_image.tif"), str(folder / "lls_psf.tif"),
    "-o", str(folder / "decon.tif"), "--background", "98", "--iterations", "10",
    "--backend", "numpy")
# %%
# ``--dry-run`` prints the block plan a run would use within ``--max-memory`` (this
# sample fits in one block) and computes nothing:

run("deconvolve", str(folder / "lls_image.tif"), str(folder / "lls_psf.tif"),
    "-o", str(folder / "other.tif"), "--dry-run", "--max-memory", "100M")

# %%
# The result keeps the image's voxel size:


raw, voxel = rlcore.io.read_image(folder / "lls_image.tif")
result, voxel_out = rlcore.io.read_image(folder / "decon.tif")
print("voxel size kept:", voxel_out)

fig, axes = plt.subplots(1, 2, figsize=(8, 4), layout="constrained")
axes[0].imshow(raw.max(axis=0), cmap="magma")
axes[0].set_title("lls_image.tif (max over Z)")
axes[1].imshow(result.max(axis=0), cmap="magma")
axes[1].set_title("decon.tif (max over Z)")
for ax in axes:
    ax.set_axis_off()
plt.show()
