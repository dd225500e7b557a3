"""How many iterations? Plain RL's oracle against ``iterations="auto"``, on ground truth.

``python -m bench.iterations --data ../shared/data --out bench/results/iterations``
(figure: ``docs/iterations.png``). For each set, with NRMSE = ||s x - t|| / ||t|| after
least-squares scaling (``s = <x, t> / <x, x>``):

* the error after every update of plain RL (1..200), Biggs-Andrews (1..100), momentum
  (1..100), the Wiener-Butterworth (auto's alpha, 1..60) and OTF-masked (1..30) back
  projectors;
* plain RL's best (the oracle: the count only ground truth can pick) and the wall time of
  plain rlcore run for that count; ``rlcore.deconvolve(image, psf, iterations="auto")``
  with everything else at its default: its error, the count it chose and its wall time
  (medians of 3, interleaved with the oracle run, same process);
* the cost of one update of each method relative to plain (10 updates, medians of 3).

Sets: the EPFL bars (``flowdec_epfl/bars-25pct``, ground truth shipped), and phantoms made
here (filaments and shells on a larger field, blurred by linear convolution and cropped, so
objects are cut by the volume's edges) under the measured LLS bead PSF
(``lls_pycudadecon/psf.tif``, background removed, centred sub-voxel, cropped to 41^3) and a
theoretical widefield PSF (psfmodels, NA 1.4, 520 nm, 130 x 130 x 300 nm voxels), with
Poisson noise at peaks of 10, 100 and 1000 photons over a background of 2% of the peak
(passed as ``offset``), one camera set (gain 2 ADU per photon, Gaussian read noise of
6 ADU, offset removed, so negative values occur), and small sharp blocks under a Gaussian
PSF (where the Wiener-Butterworth back projector alone stops short of plain RL).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import scipy.signal as ss
import tifffile

import rlcore
import rlcore.psf as P
from rlcore.autostop import AUTO_PHASES

SHAPE = (48, 96, 96)
#: the boundary of every run (``--boundary``; the faces' default is non-circulant-half)
BOUNDARY = "periodic"
METHODS = {  # name: (deconvolve keywords, updates in the curve)
    "plain": ({}, 200),
    "Biggs-Andrews": ({"accelerate": True}, 100),
    "momentum": ({"accelerate": "momentum"}, 100),
    # the back projector of auto's first phase (rlcore.api.AUTO_PHASES)
    "Wiener-Butterworth": ({"back_projector": AUTO_PHASES[0][1]}, 60),
    "OTF-masked": ({"back_projector": "otf-masked"}, 30),
}


def nrmse(x: np.ndarray, truth: np.ndarray) -> float:
    x = np.asarray(x, np.float64)
    s = float((x * truth).sum() / max(float((x * x).sum()), 1e-30))
    return float(np.linalg.norm(s * x - truth) / np.linalg.norm(truth))


def phantom(shape, seed, pad):
    """Filaments and shells on a field larger than ``shape`` by ``pad`` on each side."""
    rng = np.random.default_rng(seed)
    big = tuple(n + 2 * p for n, p in zip(shape, pad))
    obj = np.zeros(big, np.float32)
    for _ in range(14):
        p0 = rng.uniform(0, 1, 3) * np.array(big)
        d = rng.normal(size=3)
        d[0] *= 0.3
        d /= np.linalg.norm(d)
        pts = p0[None] + rng.uniform(-200, 200, 4000)[:, None] * d[None]
        ok = np.all((pts >= 0) & (pts < np.array(big) - 1), axis=1)
        idx = np.round(pts[ok]).astype(int)
        obj[idx[:, 0], idx[:, 1], idx[:, 2]] = rng.uniform(0.5, 1.0)
    obj = ndi.gaussian_filter(obj, 0.6)
    obj /= obj.max()
    zz, yy, xx = np.indices(big, dtype=np.float32)
    for _ in range(8):
        c = rng.uniform(0, 1, 3) * np.array(big)
        r = rng.uniform(4, 12)
        d = np.sqrt(((zz - c[0]) * 2) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2)
        solid = (d < r) if rng.uniform() >= 0.5 else ((d < r) & (d > r - 2))
        obj += np.where(solid, rng.uniform(0.2, 0.6), 0).astype(np.float32)
    return obj


def sets(data: Path, shape: tuple[int, ...] = SHAPE, only: list[str] | None = None):
    """The ground-truth sets (phantoms of ``shape``), or those whose names contain one of
    ``only``."""
    return [case for case in _sets(data, shape)
            if not only or any(word in case[0] for word in only)]


def _sets(data: Path, shape: tuple[int, ...]):
    lls = tifffile.imread(data / "lls_pycudadecon" / "psf.tif").astype(np.float64)
    measured = P.crop(P.center(P.background_subtract(lls, noise=3), subvoxel=True),
                      (41, 41, 41)).astype(np.float64)
    widefield = np.asarray(P.widefield((31, 63, 63), (0.3, 0.13, 0.13), na=1.4,
                                       wavelength=0.52, ni=1.515), np.float64)
    out = []
    for name, psf, seed in (("measured", measured, 1), ("widefield", widefield, 2)):
        pad = tuple(s // 2 + 1 for s in psf.shape)
        obj = phantom(shape, seed, pad)
        crop = tuple(slice(p, -p) for p in pad)
        truth = obj[crop].astype(np.float64)
        clean = np.clip(ss.fftconvolve(obj, psf / psf.sum(), mode="same")[crop], 0, None)
        for peak in (10, 100, 1000):
            rng = np.random.default_rng(peak)
            image = rng.poisson(clean * (peak / clean.max()) + 0.02 * peak).astype(np.float32)
            out.append((f"{name} PSF, peak {peak}", image, psf, truth, 0.02 * peak, "counts"))
        if name == "widefield":
            rng = np.random.default_rng(7)
            counts = rng.poisson(clean * (100 / clean.max()) + 1.0)
            image = (2.0 * counts + rng.normal(0, 6, clean.shape) - 2.0).astype(np.float32)
            out.append(("widefield PSF, camera (gain 2, read 6)", image, psf, truth, 0.0,
                        "camera"))
    # small sharp blocks under a Gaussian PSF, where the band-limited Wiener-Butterworth
    # back projector alone stops short of plain RL (auto's second phase is for them)
    rng = np.random.default_rng(11)
    g = np.exp(-0.5 * (np.arange(-6, 7) / 1.6) ** 2)
    gz = np.exp(-0.5 * (np.arange(-4, 5) / 2.0) ** 2)
    gauss = gz[:, None, None] * g[None, :, None] * g[None, None, :]
    pad = (6, 8, 8)
    # (32, 64, 64) with 90 blocks at the default SHAPE; 2/3 of ``shape`` with as many
    # blocks per voxel at other shapes
    small = tuple(2 * n // 3 for n in shape)
    count = round(90 * np.prod(small) / (32 * 64 * 64))
    big = np.zeros(tuple(n + 2 * p for n, p in zip(small, pad)))
    for _ in range(count):
        z, y, x = (rng.integers(2, n - 2) for n in big.shape)
        big[z - 1:z + 2, y - 2:y + 2, x - 1:x + 3] += rng.uniform(50, 200)
    crop = tuple(slice(p, -p) for p in pad)
    clean = np.clip(ss.fftconvolve(big, gauss / gauss.sum(), mode="same")[crop], 0, None)
    out.append(("blocks, Gaussian PSF, ~200 photons",
                rng.poisson(clean + 2.0).astype(np.float32), gauss, big[crop], 2.0, "counts"))
    bars = data / "flowdec_epfl" / "bars-25pct"
    out.append(("EPFL bars-25pct", tifffile.imread(bars / "data.tif").astype(np.float32),
                tifffile.imread(bars / "kernel.tif").astype(np.float64),
                tifffile.imread(bars / "actual.tif").astype(np.float64), 0.0, "unknown"))
    return out


def curve(image, psf, truth, n, offset, **kwargs):
    """NRMSE to ``truth`` after each of ``n`` updates (:meth:`rlcore.Deconvolver.run`'s
    observe; the offset removed first, as deconvolve does)."""
    errors = []
    data = np.clip(np.asarray(image, np.float32) - np.float32(offset), 0, None)
    with rlcore.Deconvolver(psf, data.shape, n, backend="numpy", boundary=BOUNDARY,
                            **kwargs) as rl:
        rl.run(data, observe=lambda k, x: errors.append(nrmse(x, truth)))
    return errors


def dec(image, psf, iterations, **kwargs):
    """``rlcore.deconvolve`` on the numpy backend with the bench's boundary."""
    return rlcore.deconvolve(image, psf, iterations, backend="numpy", boundary=BOUNDARY,
                             **kwargs)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def oracle_and_auto(image, psf, k, offset, repeats):
    """Wall times of plain RL for ``k`` updates and of ``iterations="auto"``, interleaved
    (``repeats`` each), then auto's result and RunInfo."""
    oracle_times, auto_times = [], []
    for _ in range(repeats):
        oracle_times.append(timed(lambda: dec(image, psf, k, offset=offset)))
        auto_times.append(timed(lambda: dec(image, psf, "auto", offset=offset)))
    result, info = dec(image, psf, "auto", offset=offset, return_info=True)
    return oracle_times, auto_times, result, info


def one_set(name, image, psf, truth, offset, kind, repeats=3):
    curves = {m: curve(image, psf, truth, n, offset, **kw) for m, (kw, n) in METHODS.items()}
    plain = curves["plain"]
    k_oracle = int(np.argmin(plain)) + 1
    oracle_times, auto_times, result, info = oracle_and_auto(image, psf, k_oracle, offset,
                                                             repeats)
    per_update = {}
    base = statistics.median(timed(lambda: dec(image, psf, 10)) for _ in range(repeats))
    for m, (kw, _) in METHODS.items():
        per_update[m] = statistics.median(
            timed(lambda kw=kw: dec(image, psf, 10, **kw))
            for _ in range(repeats)) / base
    auto_error = nrmse(result, truth)
    best_any = min(min(c) for c in curves.values())  # the best of every method's curve
    row = {
        "set": name, "kind": kind, "shape": list(image.shape), "psf": list(psf.shape),
        "oracle_error": min(plain), "oracle_iterations": k_oracle,
        "oracle_seconds": statistics.median(oracle_times),
        "plain_10": plain[9],
        "auto_error": auto_error, "auto_iterations": info.iterations,
        "auto_rule": info.stop_rule, "auto_seconds": statistics.median(auto_times),
        "auto_vs_oracle": auto_error / min(plain) - 1,
        "speedup": statistics.median(oracle_times) / statistics.median(auto_times),
        "method_best": {m: [min(c), int(np.argmin(c)) + 1] for m, c in curves.items()},
        "auto_vs_wb_best": auto_error / min(curves["Wiener-Butterworth"]) - 1,
        "auto_vs_best_any": auto_error / best_any - 1,
        "cost_per_update": per_update,
        "curves": curves,
        "base_seconds_per_update": base / 10,
    }
    return row


def markdown(rows) -> str:
    lines = [
        f"# How many iterations? (numpy backend, 2-core CPU, boundary {BOUNDARY})", "",
        "Image shapes (Z, Y, X): " + ", ".join(
            f"{r['set']} {tuple(r['shape'])}" for r in rows) + ".", "",
        "NRMSE after least-squares scaling. Oracle = plain RL's best over 1..200 updates "
        "(needs the ground truth). auto = `rlcore.deconvolve(image, psf, iterations=\"auto\", "
        "offset=...)`, everything else at its default (held-out split, rlcore.autostop; "
        f"Wiener-Butterworth alpha {AUTO_PHASES[0][1].alpha:g}, then matched with momentum; "
        "counts per phase in the last column). Times: medians of 3, interleaved. "
        "`vs WB best`: against the best of the Wiener-Butterworth curve (auto's first "
        "phase); `vs best of all`: against the best of every curve below.", "",
        "| set | oracle NRMSE @ it | oracle s | plain @10 | auto NRMSE @ it | vs oracle | "
        "auto s | speed-up | vs WB best | vs best of all | split; phases |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['oracle_error']:.4f} @ {r['oracle_iterations']} | "
            f"{r['oracle_seconds']:.2f} | {r['plain_10']:.4f} | {r['auto_error']:.4f} @ "
            f"{r['auto_iterations']} | {r['auto_vs_oracle']:+.1%} | {r['auto_seconds']:.2f} | "
            f"{r['speedup']:.1f}x | {r['auto_vs_wb_best']:+.1%} | "
            f"{r['auto_vs_best_any']:+.1%} | {r['auto_rule'].split(', ', 1)[-1]} |")
    speedups = [r["speedup"] for r in rows]
    lines += ["", f"Median speed-up over the sets: {statistics.median(speedups):.1f}x.", "",
              "Best NRMSE @ update per method, and cost of a 10-update call relative to "
              "plain's (setup included; one update's marginal cost: the last section):", "",
              "| set | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    for r in rows:
        cells = [f"{r['method_best'][m][0]:.4f} @ {r['method_best'][m][1]} "
                 f"({r['cost_per_update'][m]:.2f}x)" for m in METHODS]
        lines.append(f"| {r['set']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = [r for r in rows if r["set"].startswith(("EPFL", "widefield PSF, peak 100",
                                                     "measured PSF, peak 100"))]
    fig, axes = plt.subplots(1, len(picks), figsize=(5.5 * len(picks), 4.2))
    for ax, r in zip(np.atleast_1d(axes), picks):
        step = r["base_seconds_per_update"]
        for m, c in r["curves"].items():
            t = step * r["cost_per_update"][m] * np.arange(1, len(c) + 1)
            ax.plot(t, c, label=m)
        ax.plot([r["auto_seconds"]], [r["auto_error"]], "k*", markersize=12,
                label=f"auto ({r['auto_iterations']} it)")
        ax.axhline(r["oracle_error"], color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("wall time, s (numpy, 2 cores)")
        ax.set_ylabel("NRMSE")
        ax.set_title(r["set"])
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def speed_only(data: Path, previous: Path, repeats: int = 3, shape=SHAPE,
               only=None) -> list[dict]:
    """The auto stop's error and wall time against plain RL run for the oracle's count,
    the oracle counts and errors taken from an earlier full run (``previous``, its JSON):
    a quick check after a speed change (interleaved, medians of ``repeats``)."""
    prev = {r["set"]: r for r in json.loads(previous.read_text())}
    out = []
    for name, image, psf, truth, offset, _ in sets(data, tuple(shape), only):
        out.append(_speed_row(prev[name], image, psf, truth, offset, repeats))
        print(json.dumps(out[-1]), flush=True)
    return out


def _speed_row(prev: dict, image, psf, truth, offset, repeats: int) -> dict:
    k = prev["oracle_iterations"]
    dec(image, psf, 2, offset=offset)  # warm
    oracle_times, auto_times, result, info = oracle_and_auto(image, psf, k, offset, repeats)
    error = nrmse(result, truth)
    return {"set": prev["set"], "oracle_iterations": k, "oracle_error": prev["oracle_error"],
            "plain_10": prev["plain_10"], "auto_error": error,
            "auto_iterations": info.iterations, "auto_rule": info.stop_rule,
            "auto_vs_oracle": error / prev["oracle_error"] - 1,
            "speedup": statistics.median(oracle_times) / statistics.median(auto_times),
            "speedup_in_previous": prev["speedup"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/iterations"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--shape", type=int, nargs=3, default=list(SHAPE),
                        help="size of the phantom sets (Z Y X), default 48 96 96")
    parser.add_argument("--only", nargs="*", default=None,
                        help="only the sets whose names contain one of these words")
    parser.add_argument("--no-figure", action="store_true")
    parser.add_argument("--boundary", default="periodic",
                        help="boundary of every run (curves, oracle, auto)")
    parser.add_argument("--speed-only", type=Path, default=None, metavar="PREVIOUS_JSON",
                        help="only time auto against plain for the oracle counts of an "
                             "earlier run (its JSON); writes OUT-speed.json")
    args = parser.parse_args(argv)
    global BOUNDARY
    BOUNDARY = args.boundary
    if args.speed_only is not None:
        rows = speed_only(args.data, args.speed_only, shape=args.shape, only=args.only)
        args.out.with_name(args.out.name + "-speed").with_suffix(".json").write_text(
            json.dumps(rows, indent=1))
        print("median speed-up", statistics.median(r["speedup"] for r in rows))
        return 0
    rows = []
    for case in sets(args.data, tuple(args.shape), args.only):
        rows.append(one_set(*case))
        r = rows[-1]
        print(f"{r['set']:42s} oracle {r['oracle_error']:.4f}@{r['oracle_iterations']} "
              f"auto {r['auto_error']:.4f}@{r['auto_iterations']} ({r['auto_vs_oracle']:+.1%}, "
              f"WB best {r['auto_vs_wb_best']:+.1%}) {r['speedup']:.1f}x", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    args.out.with_suffix(".md").write_text(markdown(rows))
    if not args.no_figure:
        figure(rows, args.docs / "iterations.png")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
