"""Corrupt inputs through the CLI and the API: one line naming the file, or a failure.

``python -m bench.corrupt_inputs --out bench/results/corrupt-inputs.md``

Builds, in a temporary folder:

* TIFFs of five kinds (plain striped, plain tiled, BigTIFF, OME-TIFF hyperstack TCZYX,
  ImageJ hyperstack TZCYX), each with no compression, zlib, LZW and zstd, each intact
  and cut at five offsets (16 bytes: inside the first IFD; 1/4, 1/2 and 3/4 of the file;
  the last byte removed);
* OME-Zarr images (NGFF 0.5 / zarr 3 and NGFF 0.4 / zarr 2) with each codec in use:
  ome-zarr's default zstd, zarr-python 2's default blosc, gzip, and rlcore's own outputs
  (zstd with a checksum); one chunk cut in half, one bit flipped in its first byte,
  in its middle and in its last byte;
* TIFF headers that claim 10^12 voxels (uncompressed and zlib, TIFF and BigTIFF) and the
  issue's 60000 x 60000 pixels.

Each goes through ``python -m rlcore deconvolve IN psf.tif -o OUT -n 1 --backend numpy``
in a subprocess (a small valid PSF) and through ``rlcore.io.read_series`` (eager; OME-Zarr
lazily too). A corrupt input passes when the CLI exits 2 with exactly one stderr line
that names the file and the API raises ValueError or OSError; an intact one when the CLI
exits 0 and the API returns. A corrupt input that is read without an error is "silent".
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parents[1]
CODECS = ("none", "zlib", "lzw", "zstd")
KINDS = ("striped", "tiled", "bigtiff", "ome-tczyx", "imagej-tzcyx")
CUTS = ("16 bytes", "1/4", "1/2", "3/4", "last used byte", "last byte off")


NOTES = (
    "What no reader can see: a bit flipped inside the compressed payload of a chunk "
    "whose codec keeps no checksum (zstd as ome-zarr and zarr write it, `checksum: "
    "false`; blosc) decodes without an error into different numbers. gzip keeps a "
    "CRC-32 and rlcore writes its own OME-Zarr outputs with zstd's checksum on, so "
    "their flips are errors (the rows \"rlcore's zstd+checksum\"). A blosc chunk cut "
    "short is caught by comparing its header's stored size with the chunk file's.")


@dataclass
class Case:
    name: str
    path: Path
    corrupt: bool
    intact: Path | None = None  # the file it was damaged from


@dataclass
class Row:
    case: Case
    exit: int | None
    lines: list[str]
    api: str
    lazy: str = ""
    seconds: float = 0.0
    same: bool = False  # read without error, and equal to the intact file's data

    @property
    def harmless(self) -> bool:
        """Damage outside what the file uses (tifffile's trailing padding): the read
        is the intact file's data, exactly."""
        return self.case.corrupt and self.exit == 0 and self.api == "none" and self.same

    @property
    def verdict(self) -> str:
        if self.ok:
            return "pass"
        return "harmless" if self.harmless else ("SILENT" if self.silent else "fail")

    @property
    def ok(self) -> bool:
        if not self.case.corrupt:
            return self.exit == 0 and self.api == "none" and self.lazy in ("", "none")
        named = len(self.lines) == 1 and str(self.case.path) in self.lines[0]
        raised = self.api in ("ValueError", "OSError") and self.lazy in (
            "", "ValueError", "OSError")
        return self.exit == 2 and named and raised

    @property
    def silent(self) -> bool:
        return self.case.corrupt and (self.exit == 0 or self.api == "none" or
                                      self.lazy == "none")


# ---- inputs ------------------------------------------------------------------------------

def _tiff(folder: Path, kind: str, codec: str, rng) -> Path:
    compression = None if codec == "none" else codec
    stack = rng.poisson(40, (12, 64, 64)).astype(np.uint16)
    hyper = rng.poisson(40, (2, 2, 6, 64, 64)).astype(np.uint16)
    suffix = ".ome.tif" if kind.startswith("ome") else ".tif"
    path = folder / f"{kind}-{codec}{suffix}"
    kw: dict = {"compression": compression, "photometric": "minisblack"}
    if kind == "striped":
        tifffile.imwrite(path, stack, rowsperstrip=16, **kw)
    elif kind == "tiled":
        tifffile.imwrite(path, stack, tile=(32, 32), **kw)
    elif kind == "bigtiff":
        tifffile.imwrite(path, stack, bigtiff=True, rowsperstrip=16, **kw)
    elif kind == "ome-tczyx":
        tifffile.imwrite(path, hyper, ome=True, metadata={"axes": "TCZYX"}, **kw)
    else:  # ImageJ's order: T, Z, C, Y, X
        tifffile.imwrite(path, hyper.transpose(0, 2, 1, 3, 4), imagej=True,
                         metadata={"axes": "TZCYX"}, **kw)
    return path


def _used_end(path: Path) -> int:
    """One past the last byte that the TIFF's IFDs, tag values and pixel data use
    (tifffile leaves unused padding after the last page's tags)."""
    end = 8
    with tifffile.TiffFile(path) as tif:
        fmt = tif.tiff
        for page in tif.pages:
            end = max(end, page.offset + fmt.tagnosize + len(page.tags) * fmt.tagsize +
                      fmt.offsetsize)
            for tag in page.tags.values():
                if tag.valuebytecount > fmt.tagoffsetthreshold:
                    end = max(end, tag.valueoffset + tag.valuebytecount)
            for offset, count in zip(page.dataoffsets, page.databytecounts):
                end = max(end, offset + count)
    return end


def _cut(path: Path, cut: str) -> Path:
    raw = path.read_bytes()
    n = {"16 bytes": 16, "1/4": len(raw) // 4, "1/2": len(raw) // 2,
         "3/4": 3 * len(raw) // 4, "last byte off": len(raw) - 1}.get(cut)
    n = _used_end(path) - 1 if n is None else n
    name = path.name.replace(".", f"-cut{n}.", 1)
    out = path.with_name(name)
    out.write_bytes(raw[:n])
    return out


def _huge_header(folder: Path, pixels: tuple[int, int], codec: str, bigtiff: bool) -> Path:
    """A one-page TIFF whose ImageWidth / ImageLength tags claim ``pixels``."""
    name = f"claims-{pixels[0]}x{pixels[1]}-{codec}{'-bigtiff' if bigtiff else ''}.tif"
    path = folder / name
    tifffile.imwrite(path, np.ones((64, 64), np.uint8), bigtiff=bigtiff,
                     compression=None if codec == "none" else codec, metadata=None,
                     rowsperstrip=64)
    with tifffile.TiffFile(path, mode="r+") as tif:
        tags = tif.pages[0].tags
        tags["ImageLength"].overwrite(pixels[0])
        tags["ImageWidth"].overwrite(pixels[1])
        tags["RowsPerStrip"].overwrite(pixels[0])
    return path


def _zarr_inputs(folder: Path, rng) -> list[tuple[str, Path]]:
    """(label, path) of intact OME-Zarr images, one per (NGFF version, codec)."""
    import numcodecs
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image as ome_write
    from zarr.codecs import BloscCodec, GzipCodec

    from rlcore.io import write_series

    image = rng.poisson(40, (16, 64, 64)).astype(np.float32)
    made = []
    for version, fmt in (("0.5", FormatV05()), ("0.4", FormatV04())):
        path = folder / f"ngff{version}-ome-zarr-zstd.ome.zarr"
        ome_write(image, str(path), fmt=fmt, axes="zyx", scale_factors=[],
                  storage_options={"chunks": (8, 64, 64)})
        made.append((f"NGFF {version}, ome-zarr's zstd", path))
        path = folder / f"ngff{version}-rlcore-zstd-checksum.ome.zarr"
        write_series(path, image, "zyx", ngff_version=version)
        made.append((f"NGFF {version}, rlcore's zstd+checksum", path))
        for codec in ("blosc", "gzip"):
            path = folder / f"ngff{version}-{codec}.ome.zarr"
            if version == "0.5":
                options = {"compressors": [BloscCodec() if codec == "blosc" else
                                           GzipCodec()]}
            else:
                options = {"compressor": numcodecs.Blosc() if codec == "blosc" else
                           numcodecs.GZip()}
            ome_write(image, str(path), fmt=fmt, axes="zyx", scale_factors=[],
                      storage_options=dict(options, chunks=(8, 64, 64)))
            made.append((f"NGFF {version}, {codec}", path))
    assert all(zarr.open_group(str(p), mode="r") is not None for _, p in made)
    return made


def _chunk(path: Path) -> Path:
    meta = {"zarr.json", ".zarray", ".zattrs", ".zgroup"}
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name not in meta)[0]


def _damaged_copy(path: Path, how: str) -> Path:
    tag = how.replace(" ", "-").replace("/", "")
    out = path.with_name(path.name.replace(".ome.zarr", f"-{tag}.ome.zarr"))
    shutil.copytree(path, out)
    chunk = _chunk(out)
    raw = bytearray(chunk.read_bytes())
    if how == "cut in half":
        raw = raw[: len(raw) // 2]
    else:
        at = {"flip first byte": 0, "flip byte at 1/4": len(raw) // 4,
              "flip middle byte": len(raw) // 2, "flip byte at 3/4": 3 * len(raw) // 4,
              "flip last byte": len(raw) - 1}[how]
        raw[at] ^= 0x10
    chunk.write_bytes(bytes(raw))
    return out


def cases(folder: Path) -> list[Case]:
    rng = np.random.default_rng(0)
    found: list[Case] = []
    for kind in KINDS:
        for codec in CODECS:
            path = _tiff(folder, kind, codec, rng)
            found.append(Case(f"{kind} TIFF, {codec}, intact", path, False))
            for cut in CUTS:
                found.append(Case(f"{kind} TIFF, {codec}, cut at {cut}", _cut(path, cut),
                                  True, path))
    for label, path in _zarr_inputs(folder, rng):
        found.append(Case(f"{label}, intact", path, False))
        for how in ("cut in half", "flip first byte", "flip byte at 1/4", "flip middle byte",
                    "flip byte at 3/4", "flip last byte"):
            found.append(Case(f"{label}, chunk {how}", _damaged_copy(path, how), True,
                              path))
    for pixels, codec, big in (((10**6, 10**6), "none", False), ((10**6, 10**6), "zlib", False),
                               ((10**6, 10**6), "none", True), ((60000, 60000), "none", False)):
        voxels = pixels[0] * pixels[1]
        found.append(Case(f"header claims {voxels:.0e} voxels ({pixels[0]} x {pixels[1]}, "
                          f"{codec}{', BigTIFF' if big else ''})",
                          _huge_header(folder, pixels, codec, big), True))
    return found


# ---- runs --------------------------------------------------------------------------------

def _api(path: Path, lazy: bool, intact: Path | None = None) -> tuple[str, bool]:
    """(the exception type read_series raised or "none", whether the data read equal
    the intact file's)."""
    import warnings

    from rlcore.io import read_series

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, _, _ = read_series(path, lazy=lazy)
            if lazy:
                data = data.compute(scheduler="synchronous")
    except Exception as exc:  # noqa: BLE001 - the type is what is recorded
        return type(exc).__name__, False
    same = intact is not None and np.array_equal(np.asarray(data),
                                                  np.asarray(read_series(intact)[0]))
    return "none", same


def run(case: Case, folder: Path, psf: Path) -> Row:
    is_zarr = case.path.name.endswith(".zarr")
    out = folder / ("out.ome.zarr" if is_zarr else "out.tif")
    shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "rlcore", "deconvolve", str(case.path), str(psf), "-o",
           str(out), "-n", "1", "--backend", "numpy", "--overwrite"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        code, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, err = None, "timed out after 300 s"
    seconds = time.perf_counter() - start
    lines = [ln for ln in err.splitlines() if ln.strip()]
    api, same = _api(case.path, False, case.intact)
    lazy = _api(case.path, True)[0] if is_zarr else ""
    return Row(case, code, lines, api, lazy, seconds, same)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: list[Row], folder: Path) -> str:
    counts = Counter(r.verdict for r in rows)
    corrupt = [r for r in rows if r.case.corrupt]
    out = [
        "# Corrupt inputs through the CLI and the API",
        "",
        "`python -m bench.corrupt_inputs --out bench/results/corrupt-inputs.md` "
        f"(rlcore at commit {_commit()}; tifffile {tifffile.__version__}, "
        f"{_versions()}). Paths are under the run's temporary folder, shown as `DIR`.",
        "",
        f"{len(rows)} inputs, {len(corrupt)} corrupt: {counts['pass']} pass, "
        f"{counts['harmless']} harmless, {counts['fail']} fail, {counts['SILENT']} "
        "silent. A corrupt input passes when "
        "the CLI exits 2 with exactly one stderr line naming the file and the API "
        "(`read_series`, and for OME-Zarr a lazy read computed) raises ValueError or "
        "OSError; an intact one when the CLI exits 0 and the API returns. \"harmless\": "
        "the bytes removed were unused padding (tifffile leaves some after the last "
        "page's tags) and the read equals the intact file's data exactly; \"last used "
        "byte\" cuts the last byte the file's IFDs, tags and pixels use. \"silent\": a "
        "corrupt input read without an error into different numbers.",
        "",
        NOTES,
        "",
        "| input | CLI exit | stderr lines | stderr line | API | lazy API | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        line = r.lines[0] if len(r.lines) == 1 else " / ".join(r.lines[:3])
        line = line.replace(str(folder), "DIR")
        verdict = r.verdict if r.verdict in ("pass", "harmless") else f"**{r.verdict}**"
        out.append(f"| {_md(r.case.name)} | {r.exit} | {len(r.lines)} | {_md(line)} | "
                   f"{r.api} | {r.lazy} | {verdict} |")
    return "\n".join(out) + "\n"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _versions() -> str:
    import ome_zarr
    import zarr

    try:
        import imagecodecs

        codecs = f"imagecodecs {imagecodecs.__version__}"
    except ImportError:
        codecs = "no imagecodecs"
    return f"zarr {zarr.__version__}, ome-zarr {ome_zarr.__version__}, {codecs}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" /
                   "corrupt-inputs.md")
    p.add_argument("--only", default=None, help="run the inputs whose name has this text")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rlcore-corrupt-") as tmp:
        folder = Path(tmp)
        g = np.exp(-0.5 * ((np.arange(5) - 2) / 1.0) ** 2)
        psf = folder / "psf.tif"
        tifffile.imwrite(psf, (g[:, None, None] * g[None, :, None] * g[None, None, :])
                         .astype(np.float32))
        rows = []
        for case in cases(folder):
            if args.only and args.only not in case.name:
                continue
            row = run(case, folder, psf)
            rows.append(row)
            mark = row.verdict
            print(f"{mark} {case.name}: exit {row.exit}, {len(row.lines)} line(s), "
                  f"API {row.api} {row.lazy}", flush=True)
        text = table(rows, folder)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
