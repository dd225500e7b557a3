"""The file-format layer as today's files meet it: OME-NGFF 0.4 and 0.5 metadata kept
through the CLI, every corrupt TIFF or zarr chunk one error naming the file, headers that
claim more than the file holds refused before allocating, and a full disk or a file-size
limit named with the output left as it was."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import gaussian_psf

from rlcore.cli import main
from rlcore.io import (
    Calibration,
    VoxelSize,
    read_calibration,
    read_image,
    read_series,
    write_image,
    write_series,
)

ROOT = Path(__file__).resolve().parents[1]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _psf(tmp_path, voxel: VoxelSize | None = None) -> Path:
    """A PSF file; with ``voxel`` (the image's), it states that voxel size, so that the CLI
    neither resamples it nor says that its voxel size is unknown."""
    path = tmp_path / "psf.tif"
    if voxel is None:
        tifffile.imwrite(path, gaussian_psf((5, 5, 5), 1.0).astype(np.float32))
    else:
        write_image(path, gaussian_psf((5, 5, 5), 1.0).astype(np.float32), voxel,
                    overwrite=True)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "rlcore", *args], capture_output=True,
                          text=True, env=env, timeout=300)


# ---- OME-NGFF 0.4 and 0.5 ----------------------------------------------------------------

def _ome_zarr_image(path: Path, version: str, image: np.ndarray, *, units: bool = True,
                    translation=None, extra_transform=None, pyramid: bool = False) -> Path:
    """An image written by ome-zarr itself; the translation (and any other transform)
    added to its metadata, as ome-zarr's writer keeps only scale."""
    pytest.importorskip("ome_zarr")
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image as ome_write

    fmt = FormatV05() if version == "0.5" else FormatV04()
    scale = {"t": 1.0, "c": 1.0, "z": 0.3, "y": 0.1, "x": 0.1}
    kw = {"axes_units": {"t": "second", "z": "micrometer", "y": "micrometer",
                         "x": "micrometer"}} if units else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ome_write(image, str(path), fmt=fmt, axes="tczyx", scale=scale,
                  scale_factors=[2] if pyramid else [], **kw)
    if translation is not None or extra_transform is not None:
        group = zarr.open_group(str(path), mode="r+")
        attrs = group.attrs.asdict()
        key = "ome" if "ome" in attrs else "multiscales"
        ms = (attrs[key]["multiscales"] if key == "ome" else attrs[key])[0]
        transforms = ms["datasets"][0]["coordinateTransformations"]
        if translation is not None:
            transforms[1] = {"type": "translation", "translation": list(translation)}
        if extra_transform is not None:
            transforms.append(extra_transform)
        group.attrs.update({key: attrs[key]})
    return path


def _ngff_json(path: Path) -> tuple[dict, int]:
    """(multiscales[0], zarr format) straight from the store's JSON."""
    if (path / "zarr.json").exists():
        ome = json.loads((path / "zarr.json").read_text())["attributes"]["ome"]
        ms = ome["multiscales"][0]
        return dict(ms, version=ome["version"]), 3
    ms = json.loads((path / ".zattrs").read_text())["multiscales"][0]
    return ms, 2


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_ngff_tczyx_round_trips_through_the_cli(tmp_path, rng, version):
    image = (rng.random((2, 2, 8, 32, 32)) * 100).astype(np.float32)
    translation = [2.0, 0.0, 1.5, -3.0, 4.25]
    src = _ome_zarr_image(tmp_path / "in.ome.zarr", version, image,
                          translation=translation)
    _, in_axes, voxel = read_series(src)
    assert in_axes == "tczyx" and voxel == VoxelSize(0.3, 0.1, 0.1)
    out = tmp_path / "out.ome.zarr"
    run = _cli("deconvolve", str(src), str(_psf(tmp_path, voxel)), "-o", str(out), "-n", "2",
               "--backend", "numpy")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    ms_in, format_in = _ngff_json(src)
    ms_out, format_out = _ngff_json(out)
    assert format_out == format_in == (3 if version == "0.5" else 2)
    assert ms_out["version"] == version
    assert ms_out["axes"] == ms_in["axes"]  # names, types and units
    assert [a.get("unit") for a in ms_out["axes"]] == ["second", None, "micrometer",
                                                      "micrometer", "micrometer"]
    transforms = ms_out["datasets"][0]["coordinateTransformations"]
    assert transforms == [{"type": "scale", "scale": [1.0, 1.0, 0.3, 0.1, 0.1]},
                          {"type": "translation", "translation": translation}]
    cal = read_calibration(out)
    assert cal == read_calibration(src) and cal.version == version
    result, axes, _ = read_series(out)
    assert axes == "tczyx" and result.shape == image.shape and np.isfinite(result).all()
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    node = list(Reader(parse_url(str(out)))())[0]  # ome-zarr reads it back
    assert node.data[0].shape == image.shape


def test_the_issues_unitless_ngff_05_keeps_its_voxel_size(tmp_path, rng):
    """ome-zarr 0.18 writes no unit unless asked: the scale is read in micrometres."""
    image = rng.random((2, 2, 8, 32, 32)).astype(np.float32)
    src = _ome_zarr_image(tmp_path / "in.ome.zarr", "0.5", image, units=False,
                          pyramid=True)
    data, axes, voxel = read_series(src)
    assert data.shape == image.shape  # the pyramid's full resolution
    assert axes == "tczyx" and voxel == VoxelSize(0.3, 0.1, 0.1)
    out = tmp_path / "out.ome.zarr"
    assert main(["deconvolve", str(src), str(_psf(tmp_path)), "-o", str(out), "-n", "1",
                 "--backend", "numpy"]) == 0
    ms, _ = _ngff_json(out)
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == \
        [1.0, 1.0, 0.3, 0.1, 0.1]
    assert all("unit" not in a for a in ms["axes"])  # as the input: no unit invented


def test_a_multiscale_input_is_read_at_full_resolution_whatever_the_order(tmp_path, rng):
    zarr = pytest.importorskip("zarr", reason="zarr not installed (rlcore[dask])")

    image = rng.random((1, 1, 4, 32, 32)).astype(np.float32)
    src = _ome_zarr_image(tmp_path / "in.ome.zarr", "0.5", image, pyramid=True)
    group = zarr.open_group(str(src), mode="r+")
    attrs = group.attrs.asdict()
    attrs["ome"]["multiscales"][0]["datasets"].reverse()  # lowest resolution listed first
    group.attrs.update({"ome": attrs["ome"]})
    data, axes, voxel = read_series(src)
    assert data.shape == (4, 32, 32) and axes == "zyx" and voxel.y == pytest.approx(0.1)
    np.testing.assert_array_equal(data, image[0, 0])


def test_singleton_axes_come_back_and_the_version_can_be_asked_for(tmp_path, rng):
    image = rng.random((1, 2, 4, 16, 16)).astype(np.float32)
    src = _ome_zarr_image(tmp_path / "in.ome.zarr", "0.5", image, translation=[0] * 5)
    data, axes, voxel = read_series(src)
    assert axes == "czyx"  # the singleton t removed on reading ...
    out = tmp_path / "out.ome.zarr"
    write_series(out, data, axes, voxel, ngff_version="0.4")
    assert read_calibration(out).axes == "tczyx"  # ... and written back
    assert (out / ".zattrs").exists() and not (out / "zarr.json").exists()
    assert read_calibration(out).version == "0.4"
    with pytest.raises(ValueError, match="ngff_version"):
        write_series(tmp_path / "bad.ome.zarr", data, axes, ngff_version="0.6")


def test_the_cli_writes_the_ngff_version_asked_for(tmp_path, rng, capsys):
    image = (rng.random((2, 2, 8, 32, 32)) * 100).astype(np.float32)
    src = _ome_zarr_image(tmp_path / "in.ome.zarr", "0.4", image)
    psf = str(_psf(tmp_path))
    for asked, expected in ((None, "0.4"), ("0.5", "0.5")):
        out = tmp_path / f"out-{asked}.ome.zarr"
        extra = ["--ngff-version", asked] if asked else []
        assert main(["deconvolve", str(src), psf, "-o", str(out), "-n", "1", "--backend",
                     "numpy", *extra]) == 0
        assert read_calibration(out).version == expected
        assert read_calibration(out).scale == read_calibration(src).scale
    capsys.readouterr()
    tif = tmp_path / "out.ome.tif"
    assert main(["deconvolve", str(src), psf, "-o", str(tif), "-n", "1",
                 "--ngff-version", "0.5"]) == 2
    line = _one_line(capsys)
    assert "--ngff-version" in line and "OME-Zarr" in line and not tif.exists()


def test_an_explicit_calibration_and_a_voxel_size_override(tmp_path, rng):
    pytest.importorskip("ome_zarr")
    image = rng.random((3, 4, 8, 8)).astype(np.float32)
    cal = Calibration("tzyx", (2.5, 0.5, 0.2, 0.2), (10.0, 1.0, 0.0, -1.0),
                      ("second", "micrometer", "micrometer", "micrometer"))
    write_series(tmp_path / "a.ome.zarr", image, "tzyx", calibration=cal)
    back = read_calibration(tmp_path / "a.ome.zarr")
    assert back.scale == cal.scale and back.translation == cal.translation
    assert back.units == cal.units and back.voxel_size == VoxelSize(0.5, 0.2, 0.2)
    write_series(tmp_path / "b.ome.zarr", image, "tzyx", VoxelSize(0.25, 0.2, 0.2),
                 calibration=cal)
    b = read_calibration(tmp_path / "b.ome.zarr")
    assert b.scale == (2.5, 0.25, 0.2, 0.2) and b.translation == cal.translation
    with pytest.raises(ValueError, match="Calibration"):
        Calibration("zyx", (1, 1), (0, 0, 0), (None,) * 3)


def test_a_transformation_that_cannot_be_kept_is_one_warning(tmp_path, rng, capsys):
    image = rng.random((1, 1, 8, 16, 16)).astype(np.float32)
    affine = {"type": "affine", "affine": [[1, 0, 0, 0]] * 3}
    src = _ome_zarr_image(tmp_path / "in.ome.zarr", "0.5", image, extra_transform=affine)
    with pytest.warns(UserWarning, match="affine coordinate transformation cannot be "
                                         "kept") as seen:
        read_series(src)
    assert len(seen) == 1 and str(src) in str(seen[0].message)
    assert main(["deconvolve", str(src), str(_psf(tmp_path, VoxelSize(0.3, 0.1, 0.1))), "-o",
                 str(tmp_path / "out.ome.zarr"), "-n", "1", "--backend", "numpy"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "affine" in err[0], err


# ---- corrupt TIFFs -----------------------------------------------------------------------

CODECS = ["none", "zlib", "lzw", "zstd"]


def _tiff(path: Path, kind: str, codec: str, rng) -> Path:
    kw = {"compression": None if codec == "none" else codec, "photometric": "minisblack"}
    stack = rng.poisson(40, (8, 32, 32)).astype(np.uint16)
    hyper = rng.poisson(40, (2, 2, 3, 32, 32)).astype(np.uint16)
    {"striped": lambda: tifffile.imwrite(path, stack, rowsperstrip=8, **kw),
     "tiled": lambda: tifffile.imwrite(path, stack, tile=(16, 16), **kw),
     "bigtiff": lambda: tifffile.imwrite(path, stack, bigtiff=True, **kw),
     "ome": lambda: tifffile.imwrite(path, hyper, ome=True, metadata={"axes": "TCZYX"},
                                     **kw),
     "imagej": lambda: tifffile.imwrite(path, hyper.transpose(0, 2, 1, 3, 4), imagej=True,
                                        metadata={"axes": "TZCYX"}, **kw)}[kind]()
    return path


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("kind", ["striped", "tiled", "bigtiff", "ome", "imagej"])
def test_a_tiff_cut_anywhere_is_one_valueerror_naming_it(tmp_path, rng, kind, codec):
    if codec in ("lzw", "zstd"):
        pytest.importorskip("imagecodecs")
    path = _tiff(tmp_path / "in.tif", kind, codec, rng)
    intact = read_series(path)[0]
    raw = path.read_bytes()
    for cut in (16, len(raw) // 4, len(raw) // 2, 3 * len(raw) // 4):
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=f"^{path}: ") as caught:
            read_series(path)
        assert "\n" not in str(caught.value)
    path.write_bytes(raw[:-1])  # the last byte: padding (read exactly) or an error
    try:
        np.testing.assert_array_equal(read_series(path)[0], intact)
    except ValueError as exc:
        assert str(exc).startswith(f"{path}: ")


def test_the_issues_truncated_zlib_sample_is_one_line_and_no_log_noise(tmp_path):
    from rlcore import data

    raw = Path(data.path("lls_image.tif")).read_bytes()
    cut = tmp_path / "lls_half.tif"
    cut.write_bytes(raw[: len(raw) // 2])
    run = _cli("deconvolve", str(cut), str(data.path("lls_psf.tif")), "-o",
               str(tmp_path / "out.tif"), "-n", "1", "--backend", "numpy")
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert lines[0].startswith(f"rlcore: error: {cut}: ") and "Traceback" not in run.stderr
    assert not (tmp_path / "out.tif").exists()


def test_tifffiles_log_is_held_back_while_reading(tmp_path, rng, caplog):
    path = _tiff(tmp_path / "in.tif", "striped", "zlib", rng)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with caplog.at_level("DEBUG"), pytest.raises(ValueError, match="invalid page offset"):
        read_series(path)
    assert not [r for r in caplog.records if r.name.startswith("tifffile") and
                r.levelname in ("WARNING", "ERROR")]


@pytest.mark.parametrize("codec", ["none", "zlib"])
@pytest.mark.parametrize("big", [False, True])
def test_a_header_claiming_1e12_voxels_is_refused_before_allocating(tmp_path, codec, big):
    path = tmp_path / "huge.tif"
    tifffile.imwrite(path, np.ones((64, 64), np.uint8), bigtiff=big, metadata=None,
                     compression=None if codec == "none" else codec, rowsperstrip=64)
    with tifffile.TiffFile(path, mode="r+") as tif:
        tags = tif.pages[0].tags
        tags["ImageLength"].overwrite(10**6)
        tags["ImageWidth"].overwrite(10**6)
        tags["RowsPerStrip"].overwrite(10**6)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=f"^{path}: .*claims shape \\(1000000, "
                                             "1000000\\) \\(1e\\+12 voxels"):
            read_series(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_a_tiff_codec_without_imagecodecs_names_the_package(tmp_path, rng):
    pytest.importorskip("imagecodecs")
    for codec in ("lzw", "zlib"):
        _tiff(tmp_path / f"{codec}.tif", "striped", codec, rng)
    code = textwrap.dedent(f"""
        import sys
        sys.modules["imagecodecs"] = None  # as if not installed
        from rlcore.io import read_series
        assert read_series({str(tmp_path / 'zlib.tif')!r})[0].shape == (8, 32, 32)
        try:
            read_series({str(tmp_path / 'lzw.tif')!r})
        except ValueError as exc:
            print(exc)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert run.stdout.strip() == (f"{tmp_path / 'lzw.tif'}: its LZW compression needs "
                                  "imagecodecs: pip install imagecodecs"), run.stderr


def test_small_last_axes_are_never_written_as_rgb(tmp_path, rng):
    for name in ("a.tif", "a.ome.tif"):
        image = rng.random((2, 5, 3)).astype(np.float32)
        write_image(tmp_path / name, image)
        np.testing.assert_array_equal(read_image(tmp_path / name)[0], image)


# ---- corrupt zarr chunks -----------------------------------------------------------------

def _zarr_with(path: Path, version: str, codec: str, image: np.ndarray) -> Path:
    pytest.importorskip("ome_zarr")
    import numcodecs
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image as ome_write
    from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

    if version == "0.5":
        options = {"compressors": [{"zstd": ZstdCodec, "blosc": BloscCodec,
                                    "gzip": GzipCodec}[codec]()]}
    else:
        options = {"compressor": {"zstd": numcodecs.Zstd, "blosc": numcodecs.Blosc,
                                  "gzip": numcodecs.GZip}[codec]()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ome_write(image, str(path), fmt=FormatV05() if version == "0.5" else FormatV04(),
                  axes="zyx", scale_factors=[],
                  storage_options=dict(options, chunks=(4, 32, 32)))
    return path


def _first_chunk(path: Path) -> Path:
    meta = {"zarr.json", ".zarray", ".zattrs", ".zgroup"}
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name not in meta)[0]


@pytest.mark.parametrize("codec", ["zstd", "blosc", "gzip"])
@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_a_truncated_zarr_chunk_of_each_codec_names_the_file_and_chunk(tmp_path, rng,
                                                                       version, codec):
    image = rng.poisson(40, (8, 32, 32)).astype(np.float32)
    path = _zarr_with(tmp_path / "in.ome.zarr", version, codec, image)
    chunk = _first_chunk(path)
    raw = chunk.read_bytes()
    key = "s0/c/0/0/0" if version == "0.5" else "s0/0/0/0"
    for cut in (len(raw) // 2, len(raw) - 1):
        chunk.write_bytes(raw[:cut])
        pattern = f"^{path}: the chunk at \\[0:4, 0:32, 0:32\\] \\({key}\\) is unreadable"
        with pytest.raises(ValueError, match=pattern):
            read_series(path)
        lazy = read_series(path, lazy=True)[0]
        with pytest.raises(ValueError, match=pattern):
            lazy.compute(scheduler="synchronous")


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_an_absent_zarr_chunk_is_one_warning_naming_the_file(tmp_path, rng, version):
    image = rng.poisson(40, (8, 32, 32)).astype(np.float32) + 1
    path = _zarr_with(tmp_path / "in.ome.zarr", version, "zstd", image)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every chunk there: nothing to say
        np.testing.assert_array_equal(read_series(path)[0], image)
    _first_chunk(path).unlink()
    for lazy in (False, True):
        with pytest.warns(UserWarning) as caught:
            data = read_series(path, lazy=lazy)[0]
        assert len(caught) == 1
        message = str(caught[0].message)
        assert message.startswith(f"{path}: 1 of 2 chunks are absent"), message
        assert "fill value (0" in message and "incomplete" in message
        data = np.asarray(data)
        assert (data[:4] == 0).all() and (data[4:] == image[4:]).all()


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_rlcores_own_zarr_outputs_make_a_flipped_bit_an_error(tmp_path, rng, version):
    pytest.importorskip("ome_zarr")
    image = rng.poisson(40, (8, 32, 32)).astype(np.float32)
    path = tmp_path / "out.ome.zarr"
    write_series(path, image, "zyx", ngff_version=version)
    chunk = _first_chunk(path)
    raw = chunk.read_bytes()
    for at in (len(raw) // 4, len(raw) // 2, 3 * len(raw) // 4, len(raw) - 1):
        flipped = bytearray(raw)
        flipped[at] ^= 0x10
        chunk.write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match=f"^{path}: the chunk at .* is unreadable"):
            read_series(path)
    chunk.write_bytes(raw)
    np.testing.assert_array_equal(read_series(path)[0], image)


def test_a_corrupt_zarr_chunk_through_the_cli_is_one_line(tmp_path, rng, capsys):
    image = rng.poisson(40, (8, 32, 32)).astype(np.float32)
    path = _zarr_with(tmp_path / "in.ome.zarr", "0.4", "blosc", image)
    chunk = _first_chunk(path)
    chunk.write_bytes(chunk.read_bytes()[:-1])
    for out in ("out.ome.zarr", "out.tif"):
        assert main(["deconvolve", str(path), str(_psf(tmp_path)), "-o",
                     str(tmp_path / out), "-n", "1", "--backend", "numpy"]) == 2
        line = _one_line(capsys)
        assert str(path) in line and "(s0/0/0/0)" in line, line
        assert not (tmp_path / out).exists()


# ---- a full disk and a file-size limit ---------------------------------------------------

def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("name", ["out.tif", "out.ome.tif", "out.ome.zarr"])
def test_a_full_disk_is_one_error_and_the_old_output_stays(tmp_path, rng, monkeypatch,
                                                           name):
    if name.endswith("zarr"):
        pytest.importorskip("ome_zarr")
    out = tmp_path / name
    old = np.full((2, 8, 8), 7, np.float32)
    write_image(out, old)
    if name.endswith("zarr"):
        import zarr.storage._local as local

        def full(path, value, exclusive=False):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes(value.as_buffer_like())[:10])
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(local, "_put", full)
    else:
        def full(file, data, **kwargs):
            Path(file).write_bytes(b"II*\x00partial")
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(tifffile, "imwrite", full)
    with pytest.raises(OSError, match=f"^{out}: not written, disk full") as caught:
        write_image(out, rng.random((4, 16, 16)).astype(np.float32), overwrite=True)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    np.testing.assert_array_equal(read_image(out)[0], old)
    assert _leftovers(tmp_path) == []


def test_numpys_short_write_on_a_full_disk_says_disk_full(tmp_path, rng, monkeypatch,
                                                         capsys):
    import shutil

    tifffile.imwrite(tmp_path / "img.tif", rng.random((8, 16, 16)).astype(np.float32))
    psf = _psf(tmp_path)

    def short(file, data, **kwargs):
        Path(file).write_bytes(b"II*\x00partial")
        raise OSError("131072 requested and 49912 written")  # numpy's tofile: no errno

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(tifffile, "imwrite", short)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=4096))
    out = tmp_path / "out.tif"
    assert main(["deconvolve", str(tmp_path / "img.tif"), str(psf), "-o",
                 str(out), "-n", "1", "--backend", "numpy"]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"rlcore: error: {out}: not written, disk full: 4 KiB free")
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("name", ["out.tif", "out.ome.zarr"])
def test_a_file_size_limit_is_file_too_large_and_the_old_output_stays(tmp_path, name):
    if name.endswith("zarr"):
        pytest.importorskip("ome_zarr")
    out = tmp_path / name
    old = np.full((2, 8, 8), 7, np.float32)
    write_image(out, old)
    code = textwrap.dedent(f"""
        import resource
        import numpy as np
        from rlcore.io import write_image
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, resource.RLIM_INFINITY))
        image = np.random.default_rng(0).random((16, 256, 256)).astype(np.float32)
        try:
            write_image({str(out)!r}, image, overwrite=True)
        except OSError as exc:
            print(exc.errno, exc)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert run.stdout.strip() == (f"{errno.EFBIG} {out}: not written, file too large: the "
                                  "file-size limit (ulimit -f) is 1 MiB; the partial output "
                                  "was removed and an existing output is untouched"), \
        run.stderr
    np.testing.assert_array_equal(read_image(out)[0], old)
    assert _leftovers(tmp_path) == []


def test_outputs_have_normal_permissions(tmp_path, rng):
    pytest.importorskip("ome_zarr")
    umask = os.umask(0o022)
    try:
        write_image(tmp_path / "a.ome.zarr", rng.random((2, 8, 8)).astype(np.float32))
    finally:
        os.umask(umask)
    assert (tmp_path / "a.ome.zarr").stat().st_mode & 0o777 == 0o755


# ---- channel names ----------------------------------------------------------------------

@pytest.mark.parametrize("out_name", ["out.ome.tif", "out-04.ome.zarr", "out-05.ome.zarr"])
def test_channel_names_are_carried_from_input_to_output(tmp_path, rng, out_name, capsys):
    if out_name.endswith(".zarr"):
        pytest.importorskip("ome_zarr", reason="OME-Zarr output needs ome-zarr")
    image = (rng.random((2, 6, 24, 24)) * 100).astype(np.float32)
    src = tmp_path / "in.ome.tif"
    tifffile.imwrite(src, image, ome=True, photometric="minisblack",
                     metadata={"axes": "CZYX", "Channel": {"Name": ["DAPI", "GFP"]},
                               "PhysicalSizeZ": 0.3, "PhysicalSizeY": 0.1,
                               "PhysicalSizeX": 0.1})
    _, axes, voxel = read_series(src)
    assert axes == "czyx" and voxel.channels == ("DAPI", "GFP")
    out = tmp_path / out_name
    version = ["--ngff-version", "0.4" if "04" in out_name else "0.5"] \
        if out_name.endswith(".zarr") else []
    assert main(["deconvolve", str(src), str(_psf(tmp_path)), "-o", str(out), "-n", "1",
                 "--backend", "numpy", *version]) == 0
    result, axes, voxel = read_series(out)
    assert axes == "czyx" and voxel.channels == ("DAPI", "GFP")
    assert voxel == VoxelSize(0.3, 0.1, 0.1)
    if out_name.endswith(".zarr"):  # ome-zarr's own reader sees the labels too
        from ome_zarr.io import parse_url
        from ome_zarr.reader import Reader

        node = list(Reader(parse_url(str(out)))())[0]
        assert list(node.metadata["channel_names"]) == ["DAPI", "GFP"]
    # a mismatch (one name for two channels) is dropped, not written wrong
    write_series(tmp_path / "x.ome.tif", image, "czyx", VoxelSize(channels=("only",)))
    assert read_series(tmp_path / "x.ome.tif")[2].channels == ()
