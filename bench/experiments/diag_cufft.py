# issue 19: do a shape's cuFFT plans share one work area, and do the in-place work buffers
# transform right? (GPU machine; prints and checks)
import cupy as cp

from rlcore.backends import cupy as cb

be = cb.CupyBackend()
for shape in ((128, 1120, 1120), (64, 256, 256), (288, 288, 288)):
    free0 = cp.cuda.runtime.memGetInfo()[0]
    be.plan(shape)
    plans = {(k, p): cb._PLANS[(shape, k, p, 0)] for k in ("R2C", "C2R") for p in (False, True)}
    grid = 4 * cp.prod(cp.asarray(shape)).item()
    print(shape, {f"{k}{'-padded' if p else ''}": round(v.work_area.mem.size / grid, 3)
                  for (k, p), v in plans.items()},
          "distinct areas", len({v.work_area.ptr for v in plans.values()}),
          "device memory taken by the plans (grid arrays)",
          round((free0 - cp.cuda.runtime.memGetInfo()[0]) / grid, 3))
    x = cp.random.random(shape, dtype=cp.float32)
    work, spectrum = be.work_buffers(shape)
    work[...] = x
    be.rfftn(work, out=spectrum)
    be.irfftn(spectrum, shape, out=work)
    print("  in-place round trip max err", float(cp.abs(x - work).max()))
    del x, work, spectrum
    cb.clear_plan_cache()
    cp.get_default_memory_pool().free_all_blocks()
