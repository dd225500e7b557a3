"""Plan once, run many, and the cost of one update per variant.

``python -m bench.series --backend numpy --out bench/results/series-cpu`` (``--backend
cupy`` on a GPU). Measures, in one process, interleaved, medians:

1. a time-lapse of ``--stacks`` stacks of (64, 256, 256) with one PSF (the measured LLS
   bead shipped with rlcore, cropped to 31^3), 10 iterations each: seconds per stack with
   one :class:`rlcore.Deconvolver` (``.run`` per stack), with one ``rlcore.deconvolve``
   call per stack, with ``rlcore.deconvolve`` on the whole ``(T, Z, Y, X)`` array, and
   the iteration floor (10 x the time of one update measured on the device, arrays
   already there); on a GPU also ``Deconvolver.run`` on the whole series (its transfers
   overlapped with the iterations, rlcore.pipeline), the device time of one stack (the
   plan run on a device array), the transfers of one stack at the pinned rate, each
   path's ratio to max(device, transfers), and the largest difference between the
   series' result and one call per stack; the same for 200 (32, 128, 128) frames;
2. the cost of one update of each variant (momentum, Biggs-Andrews, Wiener-Butterworth,
   OTF-masked, and ``iterations="auto"``'s extra loss evaluation) relative to a plain
   update, 10 updates of a (64, 256, 256) image, interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

import rlcore
import rlcore.psf as P
from rlcore.data import lls_sample


def _sync(backend: str) -> None:
    if backend == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()


def timed(fn, backend: str) -> float:
    _sync(backend)
    t0 = time.perf_counter()
    fn()
    _sync(backend)
    return time.perf_counter() - t0


def timelapse(backend: str, stacks: int, shape, psf, rounds: int = 6) -> dict:
    rng = np.random.default_rng(0)
    frames = rng.poisson(50.0, (stacks,) + tuple(shape)).astype(np.float32)
    psf = P.crop(psf, tuple(min(p, n) for p, n in zip(psf.shape, shape)))
    plan = rlcore.Deconvolver(psf, shape, 10, backend=backend, boundary="periodic")
    one = frames[0]
    plan.run(one)
    rlcore.deconvolve(one, psf, 10, backend=backend, boundary="periodic")  # warm-up (plans, pools)
    cases = {
        "Deconvolver.run per stack": lambda: [plan.run(f) for f in frames],
        "deconvolve per stack": lambda: [rlcore.deconvolve(f, psf, 10, backend=backend,
                boundary="periodic")
                                         for f in frames],
        "deconvolve on (T, Z, Y, X)": lambda: rlcore.deconvolve(frames, psf, 10,
                                                                backend=backend,
                                                                boundary="periodic"),
    }
    if backend == "cupy":
        cases["Deconvolver.run on the series"] = lambda: plan.run(frames)
    times: dict[str, list[float]] = {k: [] for k in cases}
    names = list(cases)
    for r in range(rounds):  # interleaved, the order rotated every round
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(timed(cases[name], backend) / stacks)
    # the floor: one update on data already on the device, 10 of them
    plan1 = rlcore.Deconvolver(psf, shape, 1, backend=backend, boundary="periodic")
    floor = statistics.median(timed(lambda: plan1.run(one), backend) for _ in range(5))
    plan11 = rlcore.Deconvolver(psf, shape, 11, backend=backend, boundary="periodic")
    eleven = statistics.median(timed(lambda: plan11.run(one), backend) for _ in range(5))
    per_update = (eleven - floor) / 10
    out = {k: statistics.median(v) for k, v in times.items()}
    out["floor (10 x one update)"] = 10 * per_update
    report = {"shape": list(shape), "stacks": stacks, "rounds": rounds,
              "seconds_per_stack": out}
    if backend == "cupy":
        report.update(_device_floor(plan, frames, out))
    return report


def _device_floor(plan, frames, out: dict) -> dict:
    """Device time and pinned transfers of one stack, each path over max(the two), and
    the series' largest difference from one call per stack."""
    import cupy as cp

    one = frames[0]
    dev = cp.asarray(one)
    pinned = cp.cuda.alloc_pinned_memory(one.nbytes)
    host = np.frombuffer(pinned, np.float32, one.size).reshape(one.shape)
    host[...] = one
    device = statistics.median(timed(lambda: plan.run(dev), "cupy") for _ in range(7))
    up = statistics.median(timed(lambda: dev.set(host), "cupy") for _ in range(7))
    down = statistics.median(timed(lambda: dev.get(out=host), "cupy") for _ in range(7))
    floor = max(device, up + down)
    series = plan.run(frames)
    diff = max(float(np.abs(series[t] - plan.run(frames[t])).max())
               for t in range(len(frames)))
    return {"device_seconds_per_stack": device, "transfer_seconds_per_stack": up + down,
            "over_floor": {k: v / floor for k, v in out.items()
                           if not k.startswith("floor")},
            "series_vs_each_stack_max_abs_diff": diff}


def costs(backend: str, shape, psf, rounds: int = 5) -> dict:
    rng = np.random.default_rng(1)
    image = rng.poisson(50.0, shape).astype(np.float32)
    psf = P.crop(psf, tuple(min(p, n) for p, n in zip(psf.shape, shape)))
    variants = {
        "plain": {}, "momentum": {"accelerate": "momentum"},
        "Biggs-Andrews": {"accelerate": True},
        "Wiener-Butterworth": {"back_projector": "wiener-butterworth"},
        "OTF-masked": {"back_projector": "otf-masked"},
    }
    plans = {k: (rlcore.Deconvolver(psf, shape, 10, backend=backend, **kw),
                 rlcore.Deconvolver(psf, shape, 1, backend=backend, **kw))
             for k, kw in variants.items()}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for ten, one in plans.values():  # warm-up
        ten.run(image)
        one.run(image)
    for _ in range(rounds):
        for name, (ten, one) in plans.items():
            times[name].append((timed(lambda t=ten: t.run(image), backend)
                                - timed(lambda o=one: o.run(image), backend)) / 9)
    per = {k: statistics.median(v) for k, v in times.items()}
    return {"shape": list(shape), "seconds_per_update": per,
            "relative_to_plain": {k: v / per["plain"] for k, v in per.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--stacks", type=int, default=50)
    parser.add_argument("--small-stacks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds (6)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/series-cpu"))
    args = parser.parse_args(argv)
    _, psf, _ = lls_sample()
    psf = P.crop(np.asarray(psf, np.float32), (31, 31, 31))
    report = {
        "backend": args.backend,
        "device": rlcore.deconvolve(np.ones((4, 4, 4), np.float32), np.ones((1, 1, 1)), 1,
                                    backend=args.backend, return_info=True,
                                    boundary="periodic")[1].device,
        "timelapse": timelapse(args.backend, args.stacks, (64, 256, 256), psf, args.rounds),
        "small_frames": timelapse(args.backend, args.small_stacks, (32, 128, 128), psf,
                                  args.rounds),
        "update_cost": costs(args.backend, (64, 256, 256), psf),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    lines = [f"# Series and update cost ({args.backend}: {report['device']})", ""]
    for key in ("timelapse", "small_frames"):
        r = report[key]
        lines += [f"{r['stacks']} stacks of {tuple(r['shape'])}, 10 iterations, seconds per "
                  f"stack (median of {r['rounds']} interleaved rounds, order rotated):", "",
                  "| path | s / stack | over max(device, transfers) |",
                  "|---|---|---|"]
        over = r.get("over_floor", {})
        lines += [f"| {k} | {v:.4f} |" + (f" {over[k]:.2f}x |" if k in over else " |")
                  for k, v in r["seconds_per_stack"].items()]
        if over:
            lines += ["", f"Ratios: s / stack over max(device {r['device_seconds_per_stack']:.4f}"
                      f" s, pinned transfers {r['transfer_seconds_per_stack']:.4f} s) per "
                      f"stack; series vs one call per stack: max abs diff "
                      f"{r['series_vs_each_stack_max_abs_diff']:.3g}"]
        lines.append("")
    c = report["update_cost"]
    lines += [f"One update of {tuple(c['shape'])} relative to plain (median of 5 interleaved "
              "rounds of 10 - 1 updates):", "", "| variant | s / update | vs plain |",
              "|---|---|---|"]
    lines += [f"| {k} | {c['seconds_per_update'][k]:.4f} | {v:.2f}x |"
              for k, v in c["relative_to_plain"].items()]
    text = "\n".join(lines) + "\n"
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
