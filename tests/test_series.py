"""Series: frames over the axes beyond the PSF's, channels with one PSF each, and the
plan-once Deconvolver; equal to frame-by-frame deconvolve."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import face_deconvolve, gaussian_psf, rel_l2

import rlcore
from rlcore.deconvolver import Deconvolver


@pytest.fixture
def timelapse(rng):
    return (rng.random((3, 10, 24, 28)) * 100).astype(np.float32), gaussian_psf(
        (5, 7, 7), (1.5, 1.2, 1.2))


def test_frames_equal_frame_by_frame(backend, timelapse):
    image, psf = timelapse
    out = backend.deconvolve(image, psf, 6, boundary=rlcore.boundary.DEFAULT_BOUNDARY)
    assert out.shape == image.shape and out.dtype == np.float32
    for t in range(image.shape[0]):
        ref = rlcore.deconvolve(image[t], psf, 6, backend="numpy")  # the default boundary
        assert rel_l2(out[t], ref) < 1e-5


def test_tczyx_with_one_psf_per_channel(rng):
    image = (rng.random((2, 3, 8, 20, 22)) * 50).astype(np.float32)
    psfs = [gaussian_psf((5, 5, 5), s) for s in (1.0, 1.5, 2.0)]
    out, info = rlcore.deconvolve(image, psfs, 5, channel_axis=1, return_info=True)
    assert out.shape == image.shape and info.frames == 2
    for t in range(2):
        for c in range(3):
            ref = rlcore.deconvolve(image[t, c], psfs[c], 5)
            assert np.abs(out[t, c] - ref).max() <= 1e-6 * max(1.0, float(ref.max()))


def test_progress_counts_every_update_of_every_frame(timelapse):
    image, psf = timelapse
    seen = []
    rlcore.deconvolve(image, psf, 4, callback=lambda k, n: seen.append((k, n)))
    assert seen == [(k, 12) for k in range(1, 13)]


def test_frames_on_dask_one_task_per_frame(timelapse):
    da = pytest.importorskip("dask.array")
    image, psf = timelapse
    lazy = rlcore.deconvolve(da.from_array(image, chunks=(1, 5, 12, 14)), psf, 4)
    assert lazy.chunks[0] == (1, 1, 1)
    assert rel_l2(lazy.compute(), rlcore.deconvolve(image, psf, 4)) < 1e-6


def test_deconvolver_reused_equals_deconvolve(rng):
    psf = gaussian_psf((5, 7, 7), 1.3)
    images = [(rng.random((9, 20, 21)) * 80).astype(np.float32) for _ in range(3)]
    with Deconvolver(psf, (9, 20, 21), 7, boundary="non-circulant",
                     accelerate="momentum") as plan:
        for im in images:
            ref = rlcore.deconvolve(im, psf, 7, boundary="non-circulant",
                                    accelerate="momentum")
            assert rel_l2(plan.run(im), ref) < 1e-6
    with pytest.raises(ValueError, match="image: shape"):
        Deconvolver(psf, (9, 20, 21), 3).run(np.ones((9, 20, 20), np.float32))


def test_series_errors(timelapse):
    image, psf = timelapse
    with pytest.raises(ValueError, match="psf: 2 PSFs for 3 channels"):
        rlcore.deconvolve(image, [psf, psf], 2, channel_axis=0)
    with pytest.raises(ValueError, match="channel_axis: 7 is outside"):
        rlcore.deconvolve(image, psf, 2, channel_axis=7)
    with pytest.raises(ValueError, match="needs channel_axis"):
        rlcore.deconvolve(image, [psf, psf, psf], 2)


@pytest.mark.parametrize("suffix", [".ome.zarr", ".ome.tif", ".tif"])
def test_cli_tczyx_in_same_axes_and_scales_out_one_psf_per_channel(tmp_path, rng, suffix):
    if suffix == ".ome.zarr":
        pytest.importorskip("ome_zarr")
    import tifffile

    from rlcore.cli import main
    from rlcore.io import VoxelSize, read_series, write_series

    image = (rng.random((2, 2, 8, 20, 22)) * 50).astype(np.float32)
    voxel = VoxelSize(0.3, 0.1, 0.1)
    src = tmp_path / f"in{suffix}"
    write_series(src, image, "tczyx", voxel)
    psfs = [gaussian_psf((5, 5, 5), s).astype(np.float32) for s in (1.0, 2.0)]
    for c, p in enumerate(psfs):
        tifffile.imwrite(tmp_path / f"psf{c}.tif", p)
    out = tmp_path / f"out{suffix}"
    assert main(["deconvolve", str(src), str(tmp_path / "psf0.tif"), str(tmp_path / "psf1.tif"),
                 "-o", str(out), "-n", "4"]) == 0
    result, axes, out_voxel = read_series(out)
    _, in_axes, _ = read_series(src)
    assert axes == in_axes and out_voxel == voxel
    order = [axes.index(a) for a in "tczyx"]
    result = np.transpose(np.asarray(result), order)
    for t in range(2):
        for c in range(2):
            ref = face_deconvolve(image[t, c], psfs[c], 4)
            assert np.abs(result[t, c] - ref).max() <= 1e-6 * max(1.0, float(ref.max()))


def test_rgb_tiff_is_refused_with_a_message(tmp_path):
    import tifffile

    from rlcore.io import read_series

    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((20, 30, 3), np.uint8), photometric="rgb")
    with pytest.raises(ValueError, match="colour samples"):
        read_series(tmp_path / "rgb.tif")


def test_cli_batch_reuses_one_plan_and_matches_deconvolve(tmp_path, rng, capsys):
    import tifffile

    from rlcore.cli import main
    from rlcore.io import read_series, write_series

    psf = gaussian_psf((5, 5, 5), 1.2).astype(np.float32)
    tifffile.imwrite(tmp_path / "psf.tif", psf)
    images = [(rng.random((3, 8, 20, 22)) * 50).astype(np.float32) for _ in range(3)]
    (tmp_path / "in").mkdir()
    for i, im in enumerate(images):
        write_series(tmp_path / "in" / f"t{i}.ome.tif", im, "tzyx")
    code = main(["batch", str(tmp_path / "in" / "*.ome.tif"), "--psf",
                 str(tmp_path / "psf.tif"), "-o", str(tmp_path / "out"), "-n", "3"])
    assert code == 0 and "(1 plan(s))" in capsys.readouterr().out
    for i, im in enumerate(images):
        result, axes, _ = read_series(tmp_path / "out" / f"t{i}.ome.tif")
        assert axes == "tzyx"
        assert rel_l2(np.asarray(result), face_deconvolve(im, psf, 3)) < 1e-6
    # an existing output is refused before anything is computed
    assert main(["batch", str(tmp_path / "in" / "*.ome.tif"), "--psf",
                 str(tmp_path / "psf.tif"), "-o", str(tmp_path / "out")]) == 2
    assert main(["batch", str(tmp_path / "nothing*.tif"), "--psf",
                 str(tmp_path / "psf.tif"), "-o", str(tmp_path / "o2")]) == 2


def test_deconvolver_runs_a_series_with_one_plan(timelapse):
    image, psf = timelapse
    plan = Deconvolver(psf, image.shape[1:], 5)
    out = plan.run(image)
    assert rel_l2(out, rlcore.deconvolve(image, psf, 5)) < 1e-6


class _OverlappingNumpy:
    """The numpy backend with the optional frame transfers (rlcore.protocol.FrameTransfers)
    as a device backend has them, "device" arrays being NumPy copies: the pipeline's
    order and threads, checked without a GPU."""

    def __init__(self):
        from rlcore.registry import get_backend

        self._be = get_backend("numpy")
        self.events: list[tuple[str, int, str]] = []

    def __getattr__(self, name):
        return getattr(self._be, name)

    def upload_target(self, host):
        self.events.append(("target", int(host.flat[0]), "main"))
        return np.empty_like(host), len(self.events)

    def upload_into(self, host, out, after):
        import threading

        out[...] = host
        self.events.append(("up", int(host.flat[0]), threading.current_thread().name))
        return out

    def record(self):
        return None

    def to_host(self, array, after=None):  # by name: Python 3.12's Protocol checks
        return self._be.to_host(array)      # ignore __getattr__

    def contiguous(self, array):
        return np.ascontiguousarray(array)

    def result_buffer(self, shape):
        return np.empty(shape, np.float32), False

    def download_into(self, array, host, after, pinned=False):
        import threading

        host[...] = array
        self.events.append(("down", 0, threading.current_thread().name))
        return host


def test_series_pipeline_uploads_ahead_on_its_threads_and_equals_each_frame(rng):
    """Through a backend with frame transfers, a series runs each frame as alone (equal
    to one call per frame), uploads frame t + 1 before frame t's download, on threads of
    its own, and takes uint16 frames in their dtype."""
    from rlcore import pipeline

    be = _OverlappingNumpy()
    frames = (np.arange(5)[:, None, None, None] * 1000
              + rng.integers(0, 200, (5, 8, 20, 22))).astype(np.uint16)
    psf = gaussian_psf((5, 5, 5), (1.2, 1.0, 1.0))
    assert pipeline.overlaps(be, frames, 3) and not pipeline.overlaps(be, frames[:1], 3)
    plan = Deconvolver(psf, frames.shape[1:], 4, backend=be)
    out = plan.run(frames)
    assert out.shape == frames.shape and out.dtype == np.float32
    for t in range(5):
        np.testing.assert_array_equal(out[t], plan.run(frames[t]))
    ups = [e for e in be.events if e[0] == "up"][:5]
    assert [v // 1000 for _, v, _ in ups] == [0, 1, 2, 3, 4]
    assert all(name.startswith("rlcore-upload") for _, _, name in ups)
    # frame 1's upload is under way (its memory taken, the copy queued) before frame 0's
    # download is asked for
    order = [kind for kind, _, _ in be.events if kind != "up"][:10]
    targets = [i for i, kind in enumerate(order) if kind == "target"]
    downs = [i for i, kind in enumerate(order) if kind == "down"]
    assert all(targets[t + 1] < downs[t] for t in range(4))
    downs = [e for e in be.events if e[0] == "down"]
    assert len(downs) == 5 and all(n.startswith("rlcore-download") for *_, n in downs)
    offset = rlcore.deconvolve(frames, psf, 4, backend=be, offset=100.0)
    for t in (0, 4):
        ref = rlcore.deconvolve(frames[t], psf, 4, backend="numpy", offset=100.0)
        np.testing.assert_allclose(offset[t], ref, rtol=1e-6, atol=1e-6 * float(ref.max()))
