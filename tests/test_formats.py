"""Vendor formats through bioio (``rlcore[formats]``): a CZI written by pylibCZIrw (Zeiss's
own CZI library) read with its axes, voxel size and channel names, deconvolved through
``deconvolve`` and ``batch`` into OME-Zarr and OME-TIFF with the sizes kept; a truncated
CZI, a file that is not of its suffix's format and a missing plugin each one line; bioio's
OME-TIFF and OME-Zarr readers agree with rlcore's own on what rlcore writes.

ND2 and LIF: no wheel ships a real file (bioio-nd2's and bioio-lif's test files live in
their repositories as git-LFS objects) and no Python writer exists, so their readers are
exercised on what they must refuse only."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import gaussian_psf

from rlcore import formats
from rlcore.cli import main
from rlcore.io import (
    VoxelSize,
    read_calibration,
    read_provenance,
    read_series,
    write_image,
    write_series,
)

#: z, y, x of the CZI, microns
SIZES = (0.3, 0.1, 0.1)
CHANNELS = ("DAPI", "GFP")


def _bioio(plugin: str):
    pytest.importorskip("bioio", reason="bioio not installed (pip install 'rlcore[formats]')")
    return pytest.importorskip(plugin.replace("-", "_"),
                               reason=f"{plugin} not installed (pip install {plugin})")


def _write_czi(path: Path, data: np.ndarray) -> Path:
    """``data`` (C, Z, Y, X) as a CZI, one subblock per plane, with SIZES and CHANNELS.

    CZI stores the scaling in metres (ZEN writes e.g. 1.0E-07); pylibCZIrw writes the
    value it is given, so it gets metres."""
    _bioio("bioio-czi")
    pyczi = pytest.importorskip("pylibCZIrw.czi", reason="pylibCZIrw (a CZI writer) missing")
    with pyczi.create_czi(str(path), exist_ok=True) as writer:
        for c in range(data.shape[0]):
            for z in range(data.shape[1]):
                writer.write(data[c, z], plane={"C": c, "Z": z, "T": 0})
        writer.write_metadata(channel_names=dict(enumerate(CHANNELS)),
                              scale_z=SIZES[0] * 1e-6, scale_y=SIZES[1] * 1e-6,
                              scale_x=SIZES[2] * 1e-6)
    return path


@pytest.fixture
def cells(tmp_path, rng) -> tuple[Path, np.ndarray, Path]:
    """A 2-channel (2, 8, 32, 40) uint16 CZI of blurred points with Poisson noise, and a
    Gaussian PSF file."""
    truth = np.zeros((2, 8, 32, 40), np.float32)
    truth[:, 2:6, 8:24:5, 6:34:7] = 400.0
    from scipy.ndimage import gaussian_filter

    blurred = np.stack([gaussian_filter(t, (1.0, 1.5, 1.5)) for t in truth]) + 20.0
    data = rng.poisson(blurred).astype(np.uint16)
    psf = tmp_path / "psf.tif"
    write_image(psf, gaussian_psf((7, 9, 9), (1.0, 1.5, 1.5)).astype(np.float32))
    return _write_czi(tmp_path / "cells.czi", data), data, psf


def _sizes(voxel: VoxelSize) -> tuple:
    return tuple(round(v, 9) for v in (voxel.z, voxel.y, voxel.x))


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ---- reading -----------------------------------------------------------------------------

def test_czi_is_read_with_its_axes_voxel_size_and_channels(cells):
    path, data, _ = cells
    image, axes, voxel = read_series(path)
    assert isinstance(image, np.ndarray) and image.dtype == np.uint16
    assert axes == "czyx" and _sizes(voxel) == SIZES
    np.testing.assert_array_equal(image, data)
    cal = read_calibration(path)  # singleton T kept, as for the other formats
    assert cal.axes == "tczyx" and _sizes(cal.voxel_size) == SIZES
    opened = formats.open_image(path)
    assert opened.channel_names == CHANNELS and opened.plugin.startswith("bioio_czi")


def test_czi_read_lazily_is_one_chunk_per_channel_volume(cells):
    path, data, _ = cells
    image, axes, voxel = read_series(path, lazy=True)
    assert type(image).__module__.startswith("dask") and axes == "czyx"
    assert image.chunks == ((1, 1), (8,), (32,), (40,))
    np.testing.assert_array_equal(image.compute(), data)
    np.testing.assert_array_equal(image[1, 3:5, :, 7:9].compute(), data[1, 3:5, :, 7:9])


@pytest.mark.parametrize("name, vendor", [
    ("a.czi", True), ("A.CZI", True), ("b.nd2", True), ("c.lif", True), ("d.tif", False),
    ("e.ome.tiff", False), ("f.ome.zarr", False), ("g.zarr", False), ("noext", False)])
def test_which_files_go_through_bioio(name, vendor):
    assert formats.is_vendor(name) is vendor


# ---- the command line: deconvolve and batch ------------------------------------------------

def test_cli_deconvolves_a_czi_to_ome_zarr_with_its_voxel_size(cells, tmp_path, capsys):
    """The must-show: CZI -> OME-Zarr keeps axes and sizes, writes provenance, and gives
    what the same data give through rlcore's OME-TIFF reader."""
    pytest.importorskip("ome_zarr", reason="OME-Zarr output needs ome-zarr")
    path, data, psf = cells
    out = tmp_path / "out.ome.zarr"
    assert main(["deconvolve", str(path), str(psf), "-o", str(out), "-n", "5"]) == 0
    cal = read_calibration(out)
    assert cal.axes == "czyx" and _sizes(cal.voxel_size) == SIZES
    assert read_provenance(out)["input"] == str(path)
    result, axes, voxel = read_series(out)
    assert axes == "czyx" and result.shape == data.shape
    assert voxel.channels == CHANNELS  # the CZI's channel names, as omero labels
    same = tmp_path / "same.ome.tif"  # the same pixels and sizes, read by tifffile
    write_series(same, data, "czyx", VoxelSize(*SIZES))
    expected = tmp_path / "expected.ome.tif"
    assert main(["deconvolve", str(same), str(psf), "-o", str(expected), "-n", "5"]) == 0
    np.testing.assert_allclose(result, read_series(expected)[0], rtol=1e-5, atol=1e-4)
    assert not np.allclose(result, data)  # it did deconvolve


def test_cli_czi_to_tiff_reads_it_whole_so_uint16_works(cells, tmp_path):
    path, _, psf = cells
    out = tmp_path / "out.tif"
    assert main(["deconvolve", str(path), str(psf), "-o", str(out), "-n", "3",
                 "--uint16"]) == 0
    image, axes, voxel = read_series(out)
    assert image.dtype == np.uint16 and image.max() == 65535
    assert set(axes) == set("czyx") and _sizes(voxel) == SIZES


def test_cli_batch_writes_czis_to_ome_zarr_and_ome_tiff_with_their_sizes(cells, tmp_path):
    pytest.importorskip("ome_zarr", reason="OME-Zarr output needs ome-zarr")
    path, data, psf = cells
    second = _write_czi(tmp_path / "more.czi", data[:, :, :, ::-1].copy())
    zarrs, tiffs = tmp_path / "zarrs", tmp_path / "tiffs"
    inputs = [str(tmp_path / "*.czi")]
    assert main(["batch", *inputs, "--psf", str(psf), "-o", str(zarrs), "-n", "5",
                 "--format", "ome-zarr"]) == 0
    assert main(["batch", *inputs, "--psf", str(psf), "-o", str(tiffs), "-n", "5"]) == 0
    for name in (path.stem, second.stem):
        for out in (zarrs / f"{name}.ome.zarr", tiffs / f"{name}.ome.tif"):
            cal = read_calibration(out)
            assert cal.axes == "czyx" and _sizes(cal.voxel_size) == SIZES, out
            assert read_provenance(out)["input"].endswith(f"{name}.czi")
            assert read_series(out)[2].channels == CHANNELS, out
    a = read_series(zarrs / "cells.ome.zarr")[0]
    np.testing.assert_allclose(a, read_series(tiffs / "cells.ome.tif")[0], rtol=1e-5,
                               atol=1e-4)
    assert not np.allclose(a, read_series(zarrs / "more.ome.zarr")[0])


# ---- one line for every failure ---------------------------------------------------------------

@pytest.mark.parametrize("keep", [0.0, 0.01, 0.5, 0.99])
def test_a_truncated_czi_is_one_line_naming_the_file(cells, tmp_path, capsys, keep):
    path, _, psf = cells
    raw = path.read_bytes()
    bad = tmp_path / "bad.czi"
    bad.write_bytes(raw[:int(len(raw) * keep)])
    with pytest.raises(ValueError, match=r"bad\.czi: not a readable CZI"):
        read_series(bad)
    code = main(["deconvolve", str(bad), str(psf), "-o", str(tmp_path / "o.ome.tif")])
    line = _one_line(capsys)
    assert code == 2 and "bad.czi" in line and "CZI" in line, line
    assert not (tmp_path / "o.ome.tif").exists()
    code = main(["batch", str(bad), "--psf", str(psf), "-o", str(tmp_path / "outs")])
    line = _one_line(capsys)
    assert code == 2 and line.count("bad.czi") == 1 and "not a readable CZI" in line, line


@pytest.mark.parametrize("suffix, plugin", [(".nd2", "bioio-nd2"), (".lif", "bioio-lif"),
                                            (".czi", "bioio-czi")])
def test_a_file_not_of_its_format_is_one_line_naming_it(tmp_path, capsys, suffix, plugin):
    _bioio(plugin)
    bad = tmp_path / f"notes{suffix}"
    bad.write_bytes(b"not an image\n" * 200)
    with pytest.raises(ValueError, match=rf"notes\{suffix}: not a readable"):
        read_series(bad)
    psf = tmp_path / "psf.tif"
    write_image(psf, gaussian_psf((5, 5, 5), 1.0).astype(np.float32))
    code = main(["deconvolve", str(bad), str(psf), "-o", str(tmp_path / "o.tif")])
    line = _one_line(capsys)
    assert code == 2 and bad.name in line and "Traceback" not in line


def test_without_bioio_one_line_names_the_pip_package(tmp_path, capsys, monkeypatch):
    """Runs without bioio installed too: bioio is made unimportable."""
    for name in ("bioio", "bioio.plugins"):
        monkeypatch.setitem(sys.modules, name, None)
    image = tmp_path / "cells.czi"
    image.write_bytes(b"\0" * 64)
    with pytest.raises(ImportError, match=r"pip install 'rlcore\[formats\]'"):
        read_series(image)
    psf = tmp_path / "psf.tif"
    write_image(psf, gaussian_psf((5, 5, 5), 1.0).astype(np.float32))
    assert main(["deconvolve", str(image), str(psf), "-o", str(tmp_path / "o.tif")]) == 2
    line = _one_line(capsys)
    assert "bioio-czi" in line and "pip install" in line and "cells.czi" in line, line


def test_a_missing_plugin_is_one_line_naming_it(tmp_path, monkeypatch):
    _bioio("bioio-czi")
    import bioio.plugins

    monkeypatch.setattr(bioio.plugins, "get_plugins", lambda use_cache=True: {})
    image = tmp_path / "cells.nd2"
    image.write_bytes(b"\0" * 64)
    with pytest.raises(ImportError, match=r"cells\.nd2: .*bioio-nd2 \(pip install bioio-nd2"):
        read_series(image)


def test_colour_czi_is_refused_naming_the_file(tmp_path, rng):
    _bioio("bioio-czi")
    pyczi = pytest.importorskip("pylibCZIrw.czi", reason="pylibCZIrw missing")
    path = tmp_path / "rgb.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as writer:
        writer.write(rng.integers(0, 255, (16, 16, 3)).astype(np.uint8),
                     plane={"C": 0, "Z": 0, "T": 0})
    with pytest.raises(ValueError, match=r"rgb\.czi: has 3 colour samples"):
        read_series(path)


# ---- the other plugins on what rlcore writes ---------------------------------------------------

def _tczyx(rng) -> np.ndarray:
    return rng.integers(0, 4000, (2, 2, 4, 16, 24)).astype(np.uint16)


def test_bioio_ome_tiff_reads_what_rlcore_reads(tmp_path, rng):
    """bioio-ome-tiff and rlcore's own reader agree on an OME-TIFF rlcore wrote."""
    _bioio("bioio-ome-tiff")
    data = _tczyx(rng)
    path = write_series(tmp_path / "a.ome.tif", data, "tczyx", VoxelSize(0.3, 0.1, 0.1))
    opened = formats.open_image(path)  # forced through bioio (read_series keeps tifffile)
    assert opened.plugin.startswith("bioio_ome_tiff")
    own, axes, voxel = read_series(path)
    assert opened.axes == axes == "tczyx"
    assert opened.voxel_size == pytest.approx((voxel.z, voxel.y, voxel.x))
    np.testing.assert_array_equal(opened.data[()], own)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_bioio_ome_zarr_reads_what_rlcore_reads(tmp_path, rng, version):
    """bioio-ome-zarr and rlcore's own reader agree on an OME-Zarr rlcore wrote."""
    _bioio("bioio-ome-zarr")
    pytest.importorskip("ome_zarr", reason="writing OME-Zarr needs ome-zarr")
    data = _tczyx(rng)
    path = write_series(tmp_path / "a.ome.zarr", data, "tczyx", VoxelSize(0.3, 0.1, 0.1),
                        ngff_version=version)
    opened = formats.open_image(path)
    assert opened.plugin.startswith("bioio_ome_zarr")
    own, axes, voxel = read_series(path)
    assert opened.axes == axes == "tczyx"
    assert opened.voxel_size == pytest.approx((voxel.z, voxel.y, voxel.x))
    np.testing.assert_array_equal(opened.data.lazy().compute(), own)
