"""How arrays get onto a grid and off it again, chosen once per backend and grid.

A :class:`rlcore.Deconvolver` holds one placement (:func:`placement_for`) and never asks
again which kind of backend it runs on:

* :class:`NamespacePlacement`: the backend has an array namespace that can embed on the
  grid (NumPy, CuPy, array-API libraries; reflect needs ``xp.pad``): everything on the
  device, by slicing;
* :class:`DevicePlacement`: no namespace, but the backend places on the device itself
  (:class:`rlcore.protocol.GridPlacement`, pyopencl): kernels embed, mask and crop;
* :class:`HostPlacement`: anything else: the grid is embedded on the host and uploaded,
  the result downloaded (or sliced, where there is a namespace) and cropped.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rlcore import _arrays
from rlcore.boundary import Grid
from rlcore.errors import NumericalError
from rlcore.protocol import GridPlacement, RegionData
from rlcore.validate import to_numpy

__all__ = ["Placement", "placement_for"]


class Placement:
    """The grid and backend of one plan; subclasses say where embedding happens.

    Attributes
    ----------
    region_data : bool
        The data (zero outside the image: zero, non-circulant) stays image-sized, because
        the backend divides on the region (:class:`rlcore.protocol.RegionData`): one grid
        array less.
    on_device : bool
        A padded first estimate is made from the data already on the device.
    """

    on_device = False

    def __init__(self, backend: Any, grid: Grid) -> None:
        self.backend, self.grid = backend, grid
        self.region_data = (grid.padded and grid.mode != "reflect"
                            and isinstance(backend, RegionData))

    def data(self, y: Any) -> Any:
        """The image as the iteration reads it: on the grid, or image-sized."""
        return self.backend.to_device(y) if self.region_data else self.on_grid(y)

    def on_grid(self, array: Any, *, estimate: bool = False, fill: float | None = None) -> Any:
        """``array`` embedded on the grid, on the backend's device (``estimate``: the
        first estimate's fill outside the image, ``fill`` or the image's mean)."""
        be, grid = self.backend, self.grid
        if not grid.padded:
            return be.to_device(array)
        host = np.asarray(to_numpy(array, "image"), dtype=np.float32)
        return be.to_device(grid.embed(host, estimate=estimate, fill=fill))

    def estimate_from_data(self, data: Any, outside: float | None) -> Any:
        """The first estimate on a padded grid made from the data on the device (only
        where :attr:`on_device`)."""
        raise NotImplementedError

    def _fill(self, data: Any, outside: float | None) -> float | None:
        """The first estimate's value outside the image: the mean is asked for only where
        the data is zero outside the image (non-circulant), a grid's mean scaled by grid
        over image voxels."""
        grid, be = self.grid, self.backend
        scale = 1.0 if self.region_data else math.prod(grid.shape) / math.prod(grid.image_shape)
        return grid.outside(True, outside, lambda: be.mean(data) * scale)

    def normalization(self, operator: Any, guard: float) -> Any:
        """``1 / B M`` (``H^T M`` for the matched back projector), 0 where ``B M <=
        guard``: Bertero & Boccacci (2005), eq. (9); M and the ones made on the host."""
        be, grid = self.backend, self.grid
        weight = operator.back_project(be.to_device(grid.mask(np)))
        ones = be.to_device(np.ones(grid.shape, dtype=np.float32))
        return be.divide_guarded(ones, weight, guard, out=weight)

    def _finite(self, estimate: Any) -> bool:
        grid, be = self.grid, self.backend
        if be.xp is None:
            return be.all_finite(estimate)
        return be.all_finite(estimate[grid.region] if grid.padded else estimate)

    def _crop(self, estimate: Any) -> Any:
        """The image region (on the device where there is a namespace, else on the host)."""
        grid, be = self.grid, self.backend
        if be.xp is not None:
            return estimate[grid.region] if grid.padded else estimate
        result = np.asarray(be.to_host(estimate))
        return result[grid.region] if grid.padded else result

    def result(self, estimate: Any, image: Any, xp: Any) -> Any:
        """The image region of ``estimate``, checked finite, in the caller's array kind
        (``image`` the caller's array, ``xp`` its namespace).

        Raises
        ------
        rlcore.errors.NumericalError
            NaN or infinite values.
        """
        if not self._finite(estimate):
            raise NumericalError(
                "the estimate contains NaN or infinite values; the image or PSF is "
                "numerically extreme (check its range and background)")
        be, result = self.backend, self._crop(estimate)
        kind = _arrays.kind(image)
        if kind == "numpy":
            return np.ascontiguousarray(be.to_host(result), dtype=np.float32)
        if _arrays.kind(result) == kind:
            return result
        return xp.asarray(be.to_host(result))


class NamespacePlacement(Placement):
    """Embedding, masks and crops by the backend's array namespace, on its device."""

    on_device = True

    def on_grid(self, array: Any, *, estimate: bool = False, fill: float | None = None) -> Any:
        be, grid = self.backend, self.grid
        device = be.to_device(array)
        if not grid.padded:
            return device
        return grid.embed(device, estimate=estimate, xp=be.xp, fill=grid.outside(
            estimate, fill, lambda: be.mean(device)))

    def estimate_from_data(self, data: Any, outside: float | None) -> Any:
        inside = data if self.region_data else data[self.grid.region]
        return self.grid.embed(inside, estimate=True, xp=self.backend.xp,
                               fill=self._fill(data, outside))

    def normalization(self, operator: Any, guard: float) -> Any:
        """As :meth:`Placement.normalization`, built in the operator's work buffer: one
        new array."""
        be, work = self.backend, operator.work
        work[...] = 0
        work[self.grid.region] = 1  # M
        weight = operator.back_project(work, out=be.empty(self.grid.shape))
        work[...] = 1
        return be.divide_guarded(work, weight, guard, out=weight)


class DevicePlacement(Placement):
    """Embedding, masks and crops by the backend's own kernels
    (:class:`rlcore.protocol.GridPlacement`); the image crosses image-sized."""

    on_device = True

    def on_grid(self, array: Any, *, estimate: bool = False, fill: float | None = None) -> Any:
        be, grid = self.backend, self.grid
        if not grid.padded:
            return be.to_device(array)
        image = be.to_device(np.asarray(to_numpy(array, "image"), dtype=np.float32))
        return be.embed(image, grid, grid.outside(estimate, fill, lambda: be.mean(image)))

    def estimate_from_data(self, data: Any, outside: float | None) -> Any:
        return self.backend.embed(data, self.grid, self._fill(data, outside))

    def normalization(self, operator: Any, guard: float) -> Any:
        """As :meth:`Placement.normalization`, M and the ones made in the work buffer."""
        be, grid = self.backend, self.grid
        weight = operator.back_project(be.region_mask(grid, operator.work),
                                       out=be.empty(grid.shape))
        ones = be.region_mask(grid, operator.work, outside=1.0)
        return be.divide_guarded(ones, weight, guard, out=weight)

    def _crop(self, estimate: Any) -> Any:
        be, grid = self.backend, self.grid
        if grid.padded:
            return np.asarray(be.to_host(be.crop(estimate, grid)))
        return np.asarray(be.to_host(estimate))


class HostPlacement(Placement):
    """The grid embedded on the host and uploaded (the array API standard has no
    ``pad`` for reflect; a backend without a namespace or placement kernels)."""


def placement_for(backend: Any, grid: Grid) -> Placement:
    """The placement of ``grid`` on ``backend`` (see the module docstring)."""
    xp = backend.xp
    if xp is not None and (grid.mode != "reflect" or hasattr(xp, "pad")):
        return NamespacePlacement(backend, grid)
    if xp is None and isinstance(backend, GridPlacement):
        return DevicePlacement(backend, grid)
    return HostPlacement(backend, grid)
