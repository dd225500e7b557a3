"""Fault paths: corrupt inputs named in one line, outputs that are the old one or the
complete new one, stopped runs that look unfinished, and nothing silent."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tifffile
from conftest import gaussian_psf, rel_l2

import rlcore
from rlcore import _atomic
from rlcore.cli import main
from rlcore.io import read_image, read_series, write_image


def _stack(rng, shape=(12, 32, 32)) -> np.ndarray:
    return rng.poisson(40, shape).astype(np.float32)


def _truncated(tmp_path, rng, kind: str):
    data = _stack(rng)
    path = tmp_path / f"{kind}.{'ome.tif' if kind == 'ome' else 'tif'}"
    kw = {"imagej": dict(imagej=True, metadata={"axes": "ZYX"}),
          "ome": dict(ome=True, metadata={"axes": "ZYX"}), "plain": {}}[kind]
    tifffile.imwrite(path, data, **kw)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("kind", ["imagej", "ome", "plain"])
def test_truncated_tiff_is_an_error_naming_the_file(tmp_path, rng, capsys, kind):
    path = _truncated(tmp_path, rng, kind)
    for read in (read_image, read_series):
        with pytest.raises(ValueError, match=str(path)):
            read(path)
    tifffile.imwrite(tmp_path / "psf.tif", gaussian_psf((3, 5, 5), 1.0))
    out = tmp_path / "out.tif"
    assert main(["deconvolve", str(path), str(tmp_path / "psf.tif"), "-o", str(out)]) == 2
    assert str(path) in _one_error_line(capsys) and not out.exists()


def test_pageless_and_colour_tiffs_are_errors_naming_the_file(tmp_path, rng):
    empty = tmp_path / "empty.tif"
    tifffile.imwrite(empty, _stack(rng))
    empty.write_bytes(empty.read_bytes()[:8])  # header only: no page
    with pytest.raises(ValueError, match=f"{empty}: has no image pages"):
        read_image(empty)
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
                     photometric="rgb")
    with pytest.raises(ValueError, match=f"{rgb}: has colour samples"):
        read_image(rgb)


@pytest.fixture
def ome_zarr(tmp_path, rng):
    pytest.importorskip("ome_zarr", reason="ome-zarr not installed (rlcore[dask])")
    path = tmp_path / "in.ome.zarr"
    write_image(path, _stack(rng, (16, 64, 64)))
    return path


def _chunk_files(path):
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name != "zarr.json"
                  and not p.name.startswith(".z"))


def test_corrupt_ome_zarr_metadata_and_chunks_name_the_file(ome_zarr, tmp_path, capsys):
    tifffile.imwrite(tmp_path / "psf.tif", gaussian_psf((3, 5, 5), 1.0))
    chunk = _chunk_files(ome_zarr)[0]
    chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    with pytest.raises(ValueError, match=f"{ome_zarr}: the chunk at .* is unreadable"):
        read_image(ome_zarr)
    lazy, _ = read_image(ome_zarr, lazy=True)  # a lazy read fails when computed
    with pytest.raises(ValueError, match=f"{ome_zarr}: the chunk at \\[0:"):
        lazy.compute()
    out = tmp_path / "out.ome.zarr"
    assert main(["deconvolve", str(ome_zarr), str(tmp_path / "psf.tif"), "-o", str(out),
                 "-n", "2"]) == 2
    assert "is unreadable" in _one_error_line(capsys) and not out.exists()
    meta = ome_zarr / "zarr.json"
    meta.write_text(meta.read_text()[:40])
    with pytest.raises(ValueError, match=f"{ome_zarr}: not a readable OME-Zarr"):
        read_image(ome_zarr)


def test_an_output_that_appears_during_the_run_is_never_replaced(tmp_path, rng,
                                                                 monkeypatch, capsys):
    """Without --overwrite, a file written by someone else meanwhile stays; the result is
    kept beside it under a free name that the one-line error gives."""
    tifffile.imwrite(tmp_path / "img.tif", _stack(rng))
    tifffile.imwrite(tmp_path / "psf.tif", gaussian_psf((3, 5, 5), 1.0))
    out = tmp_path / "out.tif"
    real = rlcore.deconvolve

    def meanwhile(*args, **kwargs):
        result = real(*args, **kwargs)
        out.write_bytes(b"someone else's file")
        return result

    monkeypatch.setattr(rlcore, "deconvolve", meanwhile)
    assert main(["deconvolve", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "-o",
                 str(out), "-n", "2"]) == 2
    line = _one_error_line(capsys)
    assert "left untouched" in line and "out-1.tif" in line
    assert out.read_bytes() == b"someone else's file"
    assert read_image(tmp_path / "out-1.tif")[0].shape == (12, 32, 32)


def test_zarr_overwrite_swaps_whole_folders_and_an_interrupted_swap_is_named(ome_zarr,
                                                                            rng):
    out = ome_zarr.parent / "out.ome.zarr"
    first, second = _stack(rng, (8, 16, 16)), _stack(rng, (8, 16, 16))
    write_image(out, first)
    write_image(out, second, overwrite=True)
    np.testing.assert_array_equal(read_image(out)[0], second)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out.ome.zarr")]
    # a hard kill between the renames of a swap: the old output is .old, the new .new
    os.rename(out, out.parent / ".out.ome.zarr.abcd1234.old")
    with pytest.raises(FileNotFoundError, match="replacement of it was interrupted"):
        read_image(out)


def test_publish_keeps_the_old_output_when_the_new_one_is_not_complete(tmp_path):
    """The temporary file carries the work; only publish touches the destination."""
    out = tmp_path / "out.tif"
    out.write_bytes(b"old")
    tmp = _atomic.temp_file(out)
    assert tmp.name.startswith(".out.tif.") and tmp.name.endswith(".tmp")
    tmp.write_bytes(b"new")
    assert out.read_bytes() == b"old"
    _atomic.publish(tmp, out, overwrite=True)
    assert out.read_bytes() == b"new" and not tmp.exists()


def test_blocked_out_array_is_marked_incomplete_until_every_block_is_written(rng):
    zarr = pytest.importorskip("zarr", reason="zarr not installed (rlcore[dask])")
    image = _stack(rng, (36, 48, 48))
    psf = gaussian_psf((3, 5, 5), 1.0)
    out = zarr.zeros(shape=image.shape, chunks=(18, 24, 24), dtype="f4")

    def stop(k, total):
        if k > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rlcore.deconvolve(image, psf, 3, block_shape=(18, 24, 24), out=out, callback=stop)
    assert out.attrs["rlcore_complete"] is False
    rlcore.deconvolve(image, psf, 3, block_shape=(18, 24, 24), out=out)
    assert out.attrs["rlcore_complete"] is True and "blocks" in out.attrs["rlcore_plan"]


@pytest.mark.parametrize("path", ["blocks", "dask"])
def test_rltv_with_all_zero_blocks(rng, path):
    """An empty background block has a zero gradient: RLTV must not divide 0 by 0."""
    image = np.zeros((36, 48, 48), np.float32)
    image[20:30, 30:40, 30:40] = _stack(rng, (10, 10, 10))
    psf = gaussian_psf((3, 5, 5), 1.0)
    ref = rlcore.deconvolve(image, psf, 4, tv=0.002)
    if path == "blocks":
        out = rlcore.deconvolve(image, psf, 4, tv=0.002, block_shape=(18, 24, 24))
    else:
        da = pytest.importorskip("dask.array", reason="dask not installed (rlcore[dask])")
        out = rlcore.deconvolve(da.from_array(image, chunks=(18, 24, 24)), psf, 4,
                                tv=0.002).compute()
    assert np.isfinite(out).all() and out[:10, :10, :10].max() == 0
    assert rel_l2(out, ref) < 1e-3
    assert rlcore.deconvolve(np.zeros((8, 8, 8), np.float32), psf, 3, tv=0.01).max() == 0


def test_overlap_never_grows_past_the_volume():
    from rlcore import blocks

    for mode in ("periodic", "non-circulant", "reflect"):
        p = blocks.plan((64, 512, 512), (9, 9, 9), block_shape=(64, 256, 256),
                        iterations=10**9, boundary=mode)
        assert p.n_blocks == 1 and max(p.grid_shape) <= 540  # the volume, not 368 PiB
    assert blocks.auto_overlap((9, 9, 9), 10**9, (64, 512, 512)) == (64, 512, 512)


def test_dask_runs_call_back_and_can_be_cancelled(rng):
    da = pytest.importorskip("dask.array", reason="dask not installed (rlcore[dask])")
    image = da.from_array(_stack(rng, (36, 48, 48)), chunks=(18, 24, 24))
    psf = gaussian_psf((3, 5, 5), 1.0)
    seen = []
    rlcore.deconvolve(image, psf, 3, callback=lambda k, n: seen.append((k, n))).compute(
        scheduler="synchronous")
    assert seen == [(k, 24) for k in range(1, 25)]  # 3 updates x 8 blocks

    def cancel(k, n):
        if k == 5:
            raise InterruptedError("cancelled")

    with pytest.raises(InterruptedError, match="cancelled"):
        rlcore.deconvolve(image, psf, 3, callback=cancel).compute(scheduler="synchronous")


def test_missing_optional_packages_are_one_line_before_computing(tmp_path, rng, capsys,
                                                                monkeypatch):
    tifffile.imwrite(tmp_path / "img.tif", _stack(rng))
    tifffile.imwrite(tmp_path / "psf.tif", gaussian_psf((3, 5, 5), 1.0))
    monkeypatch.setitem(sys.modules, "ome_zarr.writer", None)  # as if not installed
    ran = []
    monkeypatch.setattr(rlcore, "deconvolve", lambda *a, **k: ran.append(1))
    assert main(["deconvolve", str(tmp_path / "img.tif"), str(tmp_path / "psf.tif"), "-o",
                 str(tmp_path / "out.ome.zarr")]) == 2
    line = _one_error_line(capsys)
    assert "pip install 'rlcore[dask]'" in line and not ran
    monkeypatch.setitem(sys.modules, "psfmodels", None)
    assert main(["psf", "widefield", "--na", "1.4", "--wavelength", "0.5",
                 "--voxel-size", "0.2", "0.1", "0.1", "--shape", "9", "9", "9", "-o",
                 str(tmp_path / "w.tif")]) == 2
    assert "pip install 'rlcore[psf]'" in _one_error_line(capsys)


def test_distill_refuses_noise_and_counts_beads(tmp_path, rng, capsys):
    noise = rng.poisson(100, (20, 40, 40)).astype(np.uint16)
    with pytest.raises(ValueError, match="no bead found .* is it an image of beads"):
        rlcore.psf.distill(noise)
    beads = np.zeros((24, 48, 48), np.float32)
    for c in [(12, 12, 12), (12, 36, 30)]:
        beads[c] = 5000
    beads = rlcore.convolve(beads, gaussian_psf((7, 9, 9), (1.5, 1.2, 1.2))) + \
        rng.normal(0, 1, beads.shape).astype(np.float32) + 10
    tifffile.imwrite(tmp_path / "beads.tif", beads)
    assert main(["psf", "distill", str(tmp_path / "beads.tif"), "--shape", "7", "9", "9",
                 "-o", str(tmp_path / "psf.tif")]) == 0
    printed = capsys.readouterr().out.splitlines()[0]
    assert printed.startswith("2 bead(s) at (z, y, x) ")
    found = np.array(ast.literal_eval(printed.split(" (z, y, x) ")[1]))
    assert np.abs(found - [(12, 12, 12), (12, 36, 30)]).max() <= 0.25


def test_uncalibrated_images_stay_uncalibrated(tmp_path, rng):
    for name in ("a.tif", "a.ome.tif", "a.ome.zarr"):
        if name.endswith("zarr"):
            pytest.importorskip("ome_zarr", reason="ome-zarr not installed")
        write_image(tmp_path / name, _stack(rng))
        assert not read_image(tmp_path / name)[1].known, name


# ---- killed runs -----------------------------------------------------------------------

def _kill_once(tmp_path, fmt: str, sig: int, delay: float, existing: bool) -> str:
    """Run the CLI in a subprocess, send ``sig`` after ``delay`` s; classify the output."""
    out = tmp_path / f"out{fmt}"
    old = None
    if existing:
        write_image(out, np.full((4, 8, 8), 7, np.float32), overwrite=True)
        old = read_image(out)[0]
    else:
        _atomic.remove(out)
    cmd = [sys.executable, "-m", "rlcore", "deconvolve", str(tmp_path / "img.tif"),
           str(tmp_path / "psf.tif"), "-o", str(out), "-n", "3", "--overwrite"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert all(n.endswith((".tmp", ".old", ".new")) for n in leftovers), leftovers
    if sig == signal.SIGINT:
        assert "Traceback" not in err, err
    if not out.exists():
        assert old is None, "the old output was lost"
        return "none"
    data = read_image(out)[0]
    if old is not None and data.shape == old.shape and np.array_equal(data, old):
        return "old"
    assert data.shape == (16, 48, 48) and np.isfinite(data).all()  # complete new output
    return "new"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [".tif", ".ome.tif", ".ome.zarr"])
def test_killed_cli_runs_leave_the_old_output_or_the_complete_new_one(tmp_path, rng, fmt):
    if fmt.endswith("zarr"):
        pytest.importorskip("ome_zarr", reason="ome-zarr not installed")
    tifffile.imwrite(tmp_path / "img.tif", _stack(rng, (16, 48, 48)))
    tifffile.imwrite(tmp_path / "psf.tif", gaussian_psf((3, 5, 5), 1.0))
    outcomes = []
    for i, sig in enumerate([signal.SIGKILL, signal.SIGINT] * 2):
        delay = float(rng.uniform(0.6, 2.5))  # after Python itself has started
        outcomes.append(_kill_once(tmp_path, fmt, sig, delay, existing=i % 2 == 0))
    assert set(outcomes) <= {"old", "new", "none"}


def test_ctrl_c_while_a_thread_starts_is_delivered_again_not_raised_there(monkeypatch):
    """An interrupt inside ``Thread.start`` would leave a pool worker that no exit hook
    stops (CI's killed zarr run then hung at exit): the handler defers it, as inside the
    import machinery."""
    from rlcore import _interrupt

    frames = []
    start_new = threading._start_new_thread

    def spy(*args, **kwargs):
        frames.append(sys._getframe(1))  # Thread.start's own frame
        return start_new(*args, **kwargs)

    monkeypatch.setattr(threading, "_start_new_thread", spy)
    worker = threading.Thread(target=lambda: None)
    worker.start()
    worker.join()
    sent = []
    monkeypatch.setattr(_interrupt.os, "kill", lambda pid, sig: sent.append(sig))
    assert frames and frames[0].f_code is threading.Thread.start.__code__
    _interrupt._handler(signal.SIGINT, frames[0])  # no exception
    time.sleep(10 * _interrupt.RETRY)
    assert sent == [signal.SIGINT]


def test_an_interrupted_run_exits_even_if_a_library_left_a_thread_running():
    code = ("import sys, threading; from rlcore import _interrupt; "
            "threading.Thread(target=threading.Event().wait).start(); "
            "print('left', flush=True); _interrupt.exit_soon(130, grace=0.5); sys.exit(130)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 130 and done.stdout == "left\n"


def test_ctrl_c_while_the_interpreter_exits_ends_it_without_a_traceback():
    """A run that has ended (here: waiting at exit for a thread) and then gets Ctrl-C
    exits with 130 at once; Python's own handler printed "Exception ignored in: <module
    'threading'>" with a traceback (bench/kills.py met it on a run that had just ended
    with an error)."""
    code = ("import sys, threading; from rlcore import _interrupt; _interrupt.install(); "
            "threading.Thread(target=threading.Event().wait).start(); "
            "_interrupt.exiting(0); print('over', flush=True); sys.exit(0)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, proc.kill)  # a child that never exits fails, not hangs
    watchdog.start()
    try:
        assert proc.stdout.readline() == "over\n"
    finally:
        watchdog.cancel()
    time.sleep(0.2)  # into threading._shutdown
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err


def test_ctrl_c_inside_the_import_machinery_is_delivered_again_not_lost(monkeypatch):
    """The CLI's SIGINT handler: inside importlib's frames (where a KeyboardInterrupt
    would be printed as 'Exception ignored' and lost) it re-sends the signal a moment
    later; anywhere else it raises KeyboardInterrupt; an application's own handler is
    kept."""
    import types

    from rlcore import _interrupt

    sent = []
    monkeypatch.setattr(_interrupt.os, "kill", lambda pid, sig: sent.append(sig))
    code = compile("frame = sys._getframe()", "<frozen importlib._bootstrap>", "exec")
    scope = {"sys": sys}
    exec(code, scope)
    _interrupt._handler(signal.SIGINT, scope["frame"])  # no exception
    time.sleep(10 * _interrupt.RETRY)
    assert sent == [signal.SIGINT]
    with pytest.raises(KeyboardInterrupt):
        _interrupt._handler(signal.SIGINT, sys._getframe())
    own = types.SimpleNamespace()
    previous = signal.signal(signal.SIGINT, lambda s, f: own)
    try:
        custom = signal.getsignal(signal.SIGINT)
        _interrupt.install()
        assert signal.getsignal(signal.SIGINT) is custom
    finally:
        signal.signal(signal.SIGINT, previous)
