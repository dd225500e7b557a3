"""Peak memory of a blocked CPU run on a volume larger than the memory it may use.

``python -m bench.blocks_memory --dir /tmp/rlcore-big --out bench/results/blocks-memory``

Writes a float32 zarr volume of ``--shape`` (default (256, 2048, 2048) = 4 GiB) in a child
process, then, in another child process, deconvolves it zarr -> zarr with
``max_memory=--max-memory`` (default 1 GiB) on the numpy backend and reports that
process's peak RSS (``getrusage``), its time, and a check of a few blocks against an
unblocked run of a sub-volume.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: zarr chunks of 8 MiB: a block read or a core written touches whole chunks, so chunks
#: of 64 MiB (tried first) held ~0.7 GB more at the peak
CHUNKS = (32, 256, 256)


def _psf(n: int) -> np.ndarray:
    g = np.exp(-0.5 * ((np.arange(n) - n // 2) / (n / 6)) ** 2)
    h = g[:, None, None] * g[None, :, None] * g[None, None, :]
    return (h / h.sum()).astype(np.float32)


def make(path: Path, shape: tuple[int, ...]) -> None:
    import zarr

    z = zarr.open_array(str(path), mode="w", shape=shape, chunks=CHUNKS, dtype="f4")
    rng = np.random.default_rng(0)
    for i in range(0, shape[0], CHUNKS[0]):  # one slab of chunks at a time
        n = min(CHUNKS[0], shape[0] - i)
        slab = rng.poisson(20, (n,) + shape[1:]).astype(np.float32)
        idx = tuple(rng.integers(0, m, 2000) for m in (n,) + shape[1:])
        slab[idx] += 3000
        z[i:i + n] = slab


def _rss() -> int:
    """Resident bytes of this process now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def run(src: Path, dst: Path, iterations: int, max_memory: int, psf_size: int) -> dict:
    import resource

    import zarr

    import rlcore

    image = zarr.open_array(str(src), mode="r")
    out = zarr.open_array(str(dst), mode="w", shape=image.shape, chunks=CHUNKS, dtype="f4")
    rlcore.deconvolve(np.ones((8, 8, 8), np.float32), _psf(3), 1, backend="numpy",
            boundary="periodic")
    base = _rss()  # the process with everything imported: the run's memory is above it
    t = time.perf_counter()
    _, info = rlcore.deconvolve(image, _psf(psf_size), iterations, backend="numpy",
                                max_memory=max_memory, out=out, return_info=True,
                                        boundary="periodic")
    elapsed = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if peak < base:  # ru_maxrss counts the whole life of the process
        peak = base
    # check: a sub-volume deep inside, against an unblocked run of a larger crop around it
    halo = 3 * psf_size
    c = tuple(n // 2 for n in image.shape)
    crop = tuple(slice(m - 48 - halo, m + 48 + halo) for m in c)
    ref = rlcore.deconvolve(np.asarray(image[crop]), _psf(psf_size), iterations,
                            backend="numpy", boundary="zero")
    inner = tuple(slice(halo, halo + 96) for _ in c)
    got = np.asarray(out[tuple(slice(m - 48, m + 48) for m in c)])
    rel = float(np.linalg.norm(got - ref[inner]) / np.linalg.norm(ref[inner]))
    return {"shape": list(image.shape), "GiB": image.nbytes / 2**30,
            "max_memory_GiB": max_memory / 2**30, "iterations": iterations,
            "psf": psf_size, "plan": str(info.blocks), "seconds": round(elapsed, 1),
            "peak_rss_GiB": round(peak / 2**30, 3),
            "rss_before_run_GiB": round(base / 2**30, 3),
            "peak_over_cap": round((peak - base) / max_memory, 3),
            "interior_rel_l2_vs_unblocked_crop": rel}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/rlcore-big"))
    ap.add_argument("--shape", type=int, nargs=3, default=[256, 2048, 2048])
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--psf", type=int, default=9)
    ap.add_argument("--max-memory", type=float, default=1.0, help="GiB")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", choices=["make", "run"], default=None)
    args = ap.parse_args(argv)
    src, dst = args.dir / "in.zarr", args.dir / "out.zarr"
    if args.child == "make":
        make(src, tuple(args.shape))
        return 0
    if args.child == "run":
        print(json.dumps(run(src, dst, args.iterations, int(args.max_memory * 2**30),
                             args.psf)))
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    common = [sys.executable, "-m", "bench.blocks_memory", "--dir", str(args.dir),
              "--iterations", str(args.iterations), "--psf", str(args.psf),
              "--max-memory", str(args.max_memory), "--shape", *map(str, args.shape)]
    subprocess.run(common + ["--child", "make"], check=True)
    result = json.loads(subprocess.run(common + ["--child", "run"], check=True,
                                       capture_output=True, text=True).stdout)
    print(result)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
