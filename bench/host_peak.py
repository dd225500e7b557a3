"""Peak host memory of one unblocked run, in image-sized arrays (numpy backend).

``python -m bench.host_peak --shape 192 288 324 --psf 9 --boundary non-circulant``

A thread samples this process's resident memory (Linux ``/proc/self/statm``) every 2 ms
while ``rlcore.deconvolve`` runs (3 iterations, after a warm-up on a small image); the
peak above the memory before the call, over the image's float32 bytes, includes the
result.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def main(argv: list[str] | None = None) -> int:
    import rlcore

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", type=int, nargs=3, default=[192, 288, 324])
    ap.add_argument("--psf", type=int, default=9)
    ap.add_argument("--boundary", default="non-circulant")
    args = ap.parse_args(argv)
    shape = tuple(args.shape)
    image = np.random.default_rng(0).poisson(20, shape).astype(np.float32)
    g = np.exp(-0.5 * ((np.arange(args.psf) - args.psf // 2) / (args.psf / 6)) ** 2)
    psf = (g[:, None, None] * g[None, :, None] * g[None, None, :]).astype(np.float32)
    rlcore.deconvolve(image[:16, :16, :16].copy(), psf, 1, backend="numpy",
                      boundary=args.boundary)
    base, peak, running = _rss(), [0], [True]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, info = rlcore.deconvolve(image, psf, 3, backend="numpy", boundary=args.boundary,
                                return_info=True)
    running[0] = False
    thread.join()
    arrays = (peak[0] - base) / image.nbytes
    grid = float(np.prod(info.grid_shape)) / float(np.prod(shape))
    print(json.dumps({"shape": shape, "psf": args.psf, "boundary": args.boundary,
                      "grid": list(info.grid_shape), "peak_image_arrays": round(arrays, 2),
                      "peak_grid_arrays": round(arrays / grid, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
