"""Fault injection: kill ``rlcore deconvolve`` at random moments and classify what is left.

``python -m bench.kills --runs 60 --out bench/results/kills``

Each run starts the CLI in a subprocess on a small stack (TIFF / OME-TIFF / OME-Zarr
output; with or without a pre-existing output; with or without ``--overwrite``), sends
SIGKILL or SIGINT after a random delay drawn over the run's whole duration (start-up,
reading, computing, writing, renaming), and records:

* the outcome: ``old`` (the pre-existing output, byte for byte the same array), ``new``
  (a complete, readable result of the right shape and finite), ``none`` (no output, and
  there was none before); anything else is a failure (``lost`` old output, ``partial``);
* leftovers beside the output: only marked temporaries (``.NAME.*.tmp`` / ``.old`` /
  ``.new``) are allowed;
* for SIGINT: whether stderr holds a traceback (it must not) and the exit status;
* the seconds from the signal to the process's exit (``exit_s``): an exit slower than
  :data:`SLOW_EXIT` s is a failure (a thread left running that the interpreter waits for:
  CI's killed OME-Zarr run hung so, session 37).

``--formats .ome.zarr --signals SIGINT`` repeats the case that hung.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import tifffile

SHAPE = (32, 128, 128)
#: enough updates that most signals land while the run reads, computes or writes
ITERATIONS = 60
OLD = np.full((4, 8, 8), 7, np.float32)
#: seconds from the signal to the exit above which a run counts as held at exit
SLOW_EXIT = 5.0
#: seconds after which a run that has not exited is killed (and counted as held)
HUNG = 60.0


def _setup(folder: Path) -> None:
    rng = np.random.default_rng(0)
    tifffile.imwrite(folder / "img.tif", rng.poisson(40, SHAPE).astype(np.float32))
    g = np.exp(-0.5 * ((np.arange(7) - 3) / 1.2) ** 2)
    psf = g[:, None, None] * g[None, :, None] * g[None, None, :]
    tifffile.imwrite(folder / "psf.tif", (psf / psf.sum()).astype(np.float32))


def _classify(out: Path, had_old: bool) -> str:
    from rlcore.io import read_image

    if not out.exists():
        return "lost" if had_old else "none"
    try:
        data = read_image(out)[0]
    except Exception as exc:  # noqa: BLE001 - any unreadable output is a failure
        return f"partial ({type(exc).__name__})"
    if had_old and data.shape == OLD.shape and np.array_equal(data, OLD):
        return "old"
    if data.shape == SHAPE and np.isfinite(data).all():
        return "new"
    return "partial (wrong content)"


def one_run(folder: Path, fmt: str, sig: int, existing: bool, overwrite: bool,
            delay: float) -> dict:
    from rlcore.io import write_image

    out = folder / f"out{fmt}"
    for p in folder.iterdir():
        if p.name.startswith((".out", "out")):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    if existing:
        write_image(out, OLD)
    cmd = [sys.executable, "-m", "rlcore", "deconvolve", str(folder / "img.tif"),
           str(folder / "psf.tif"), "-o", str(out), "-n", str(ITERATIONS)]
    cmd += ["--overwrite"] if overwrite else []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    sent = proc.poll() is None
    if sent:
        proc.send_signal(sig)
    t = time.perf_counter()
    try:
        _, err = proc.communicate(timeout=HUNG)
    except subprocess.TimeoutExpired:  # held at exit (or stuck): recorded, then killed
        proc.kill()
        _, err = proc.communicate()
    exit_s = time.perf_counter() - t
    leftovers = sorted(p.name for p in folder.iterdir() if p.name.startswith(".out"))
    return {"format": fmt, "signal": signal.Signals(sig).name, "existing": existing,
            "overwrite": overwrite, "delay_s": round(delay, 3), "signal_sent": sent,
            "exit_s": round(exit_s, 3) if sent else None, "returncode": proc.returncode,
            "outcome": _classify(out, existing),
            "unmarked_leftovers": [n for n in leftovers
                                   if not n.endswith((".tmp", ".old", ".new"))],
            "marked_leftovers": len(leftovers),
            "traceback": "Traceback" in err, "stderr_lines": len(err.strip().splitlines()),
            "stderr_tail": err[-800:] if "Traceback" in err else ""}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--formats", nargs="+", default=[".tif", ".ome.tif", ".ome.zarr"])
    ap.add_argument("--signals", nargs="+", default=["SIGKILL", "SIGINT"],
                    choices=["SIGKILL", "SIGINT"])
    args = ap.parse_args(argv)
    formats, signals = args.formats, [signal.Signals[s] for s in args.signals]
    rnd = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="rlcore-kills-"))
    _setup(folder)
    t = time.perf_counter()  # the duration of an undisturbed run sets the delay range
    subprocess.run([sys.executable, "-m", "rlcore", "deconvolve", str(folder / "img.tif"),
                    str(folder / "psf.tif"), "-o", str(folder / "full.ome.zarr"), "-n",
                    str(ITERATIONS)], check=True, capture_output=True)
    duration = time.perf_counter() - t
    shutil.rmtree(folder / "full.ome.zarr")
    rows = []
    for i in range(args.runs):
        fmt = formats[i % len(formats)]
        sig = signals[(i // len(formats)) % len(signals)]
        existing = (i // 6) % 2 == 0
        overwrite = (i // 12) % 5 != 4  # mostly with --overwrite: the dangerous case
        rows.append(one_run(folder, fmt, sig, existing, overwrite,
                            rnd.uniform(0.05, 0.95 * duration)))
        print(rows[-1])
    shutil.rmtree(folder, ignore_errors=True)
    exits = [r["exit_s"] for r in rows if r["exit_s"] is not None]
    bad = [r for r in rows if r["outcome"] not in ("old", "new", "none")
           or r["unmarked_leftovers"] or (r["signal"] == "SIGINT" and r["traceback"])
           or (r["exit_s"] or 0.0) > SLOW_EXIT]
    summary = {"runs": len(rows), "undisturbed_run_s": round(duration, 2),
               "outcomes": dict(Counter(r["outcome"] for r in rows)),
               "by_signal": {s: dict(Counter(r["outcome"] for r in rows if r["signal"] == s))
                             for s in ("SIGKILL", "SIGINT")},
               "sigint_tracebacks": sum(r["traceback"] for r in rows
                                        if r["signal"] == "SIGINT"),
               "runs_with_marked_leftovers": sum(r["marked_leftovers"] > 0 for r in rows),
               "slowest_exit_after_signal_s": max(exits, default=None),
               "exits_slower_than_limit": sum(e > SLOW_EXIT for e in exits),
               "failures": len(bad)}
    print(summary)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps({"summary": summary,
                                                             "runs": rows}, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
