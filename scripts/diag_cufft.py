# issue 19: do a shape's cuFFT plans share one work area? (GPU machine; prints and checks)
import cupy as cp
import numpy as np
from rlcore.backends import cupy as cb
be = cb.CupyBackend()
for shape in ((128, 1120, 1120), (64, 256, 256)):
    be.plan(shape)
    r2c, c2r = (be._plans[(shape, k, 0)] for k in ("R2C", "C2R"))
    print(shape, "work areas", r2c.work_area.mem.size, c2r.work_area.mem.size,
          "shared", r2c.work_area.ptr == c2r.work_area.ptr)
    x = cp.random.random(shape, dtype=cp.float32)
    s = be.rfftn(x)
    y = be.irfftn(s, shape)
    print("round trip max err", float(cp.abs(x - y).max()))
