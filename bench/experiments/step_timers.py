"""Synchronised timers for the experiments that time a route's steps (auto_parts.py,
gpu_auto_host_parts.py): :class:`Timers` wraps functions in place and sums their times."""
import collections
import functools
import time


class Timers:
    """Totals and call counts of wrapped functions, synchronising ``backend`` ("cupy":
    the current device) around each call so that queued device work is counted."""

    def __init__(self, backend: str):
        self.backend = backend
        self.total = collections.defaultdict(float)
        self.count = collections.Counter()

    def sync(self) -> None:
        if self.backend == "cupy":
            import cupy

            cupy.cuda.Device().synchronize()

    def wrap(self, owner, name, label=None) -> None:
        """Replace ``owner.name`` by a timed call of it (``label``: its name in the sums)."""
        f = getattr(owner, name)

        @functools.wraps(f)
        def timed(*a, **k):
            self.sync()
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                self.sync()
                self.total[label or name] += time.perf_counter() - t
                self.count[label or name] += 1

        setattr(owner, name, timed)

    def per_call(self, f, n=5) -> float:
        """Seconds per call of ``f()`` over ``n`` calls."""
        self.sync()
        t = time.perf_counter()
        for _ in range(n):
            f()
        self.sync()
        return (time.perf_counter() - t) / n
