"""Where each voxel lies: :class:`Calibration` (per-axis scale, translation, unit)
and :class:`VoxelSize` (microns, and the channels' names), and how a write picks them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

#: the axes rlcore reads and writes, in OME-NGFF's order
SERIES_AXES = "tczyx"


NGFF_VERSIONS = ("0.4", "0.5")


#: OME-NGFF's length units, in microns
_NGFF_UNITS = {"micrometer": 1.0, "nanometer": 1e-3, "millimeter": 1e3, "meter": 1e6,
               "centimeter": 1e4, "decimeter": 1e5, "picometer": 1e-6,
               "angstrom": 1e-4, "inch": 25400.0, "foot": 304800.0}


_TO_MICRONS = {"µm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0, "\\u00B5m": 1.0,
               "nm": 1e-3, "mm": 1e3, "m": 1e6, "cm": 1e4, "pixel": None, "": None}


_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


@dataclass(frozen=True)
class Calibration:
    """Where each voxel of an image lies: per axis, its scale, translation and unit.

    ``position = index * scale + translation`` along each axis, as OME-NGFF's ``scale``
    and ``translation`` transformations. Read from an OME-Zarr image by
    :func:`read_calibration` (and carried by the :class:`VoxelSize` that
    :func:`read_series` returns), kept on write by :func:`write_series` and
    :func:`zarr_output`.

    Attributes
    ----------
    axes : str
        One letter per axis of the file, from ``"tczyx"``.
    scale, translation : tuple of float
        One per axis, in the axis's unit (1 and 0 where the file states none).
    units : tuple of str or None
        OME-NGFF unit names (``"micrometer"``, ``"second"``, ...), None where not stated.
    version : str or None
        The OME-NGFF version read (``"0.4"``, ``"0.5"``); None when not from OME-Zarr.
        :func:`write_series` writes this version unless asked for another.
    """

    axes: str
    scale: tuple[float, ...]
    translation: tuple[float, ...]
    units: tuple[str | None, ...]
    version: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "axes", str(self.axes).lower())
        for name in ("scale", "translation"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        object.__setattr__(self, "units", tuple(None if u is None else str(u)
                                                for u in self.units))
        n = len(self.axes)
        if any(a not in SERIES_AXES for a in self.axes) or len(set(self.axes)) != n or \
                not (len(self.scale) == len(self.translation) == len(self.units) == n):
            raise ValueError(f"Calibration: axes {self.axes!r} (letters from 'tczyx') need "
                             f"one scale, translation and unit each; got {self.scale}, "
                             f"{self.translation}, {self.units}")

    @classmethod
    def from_voxel_size(cls, voxel_size: VoxelSize | None, axes: str) -> Calibration:
        """Scale from a voxel size in microns (1 and no unit where unknown), no
        translation."""
        voxel = voxel_size or VoxelSize()
        sizes = {"z": voxel.z, "y": voxel.y, "x": voxel.x}
        axes = axes.lower()
        return cls(axes, tuple(sizes.get(a) or 1.0 for a in axes), (0.0,) * len(axes),
                   tuple("micrometer" if sizes.get(a) is not None else None for a in axes))

    @property
    def voxel_size(self) -> VoxelSize:
        """The z, y, x scale in microns. A space axis without a unit is taken in
        micrometres (OME-NGFF's usual unit, what ome-zarr writes when given no unit),
        unless no space axis has a unit and every space scale is 1: uncalibrated."""
        space = [i for i, a in enumerate(self.axes) if a in "zyx"]
        bare = all(self.units[i] is None and self.scale[i] == 1.0 for i in space)
        sizes: dict[str, float | None] = {}
        for i in space:
            unit = self.units[i]
            factor = (None if bare else 1.0) if unit is None else _NGFF_UNITS.get(unit)
            value = self.scale[i]
            ok = factor is not None and math.isfinite(value) and value > 0
            sizes[self.axes[i]] = value * factor if ok else None
        return VoxelSize(sizes.get("z"), sizes.get("y"), sizes.get("x"))

    def for_axes(self, axes: str) -> Calibration:
        """This calibration for other axes: each letter's values, 1 / 0 / no unit for a
        letter it lacks."""
        axes = axes.lower()
        at = {a: i for i, a in enumerate(self.axes)}

        def pick(values: tuple, default: Any) -> tuple:
            return tuple(values[at[a]] if a in at else default for a in axes)

        return Calibration(axes, pick(self.scale, 1.0), pick(self.translation, 0.0),
                           pick(self.units, None), self.version)

    def with_voxel_size(self, voxel_size: VoxelSize) -> Calibration:
        """The z, y, x scale of ``voxel_size`` (microns) where it states one that differs
        from this calibration's; the rest kept."""
        own = self.voxel_size
        scale, units = list(self.scale), list(self.units)
        for i, a in enumerate(self.axes):
            new = getattr(voxel_size, a, None) if a in "zyx" else None
            old = getattr(own, a, None) if a in "zyx" else None
            if new is not None and (old is None or not math.isclose(new, old, rel_tol=1e-9)):
                scale[i], units[i] = float(new), "micrometer"
        return replace(self, scale=tuple(scale), units=tuple(units))


@dataclass(frozen=True)
class VoxelSize:
    """Voxel size in microns; ``None`` for an axis whose size the file does not state.

    ``calibration`` (not compared, not shown): the full per-axis :class:`Calibration` of
    the OME-Zarr image it was read from, which :func:`write_series` and
    :func:`zarr_output` keep when given this voxel size; None otherwise.
    """

    z: float | None = None
    y: float | None = None
    x: float | None = None
    calibration: Calibration | None = field(default=None, compare=False, repr=False)
    #: the channels' names, in the order of the C axis (OME ``Channel Name``, NGFF
    #: ``omero`` labels, a vendor file's); () where the file names none. Not compared.
    channels: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def as_tuple(self, ndim: int) -> tuple[float | None, ...]:
        return (self.z, self.y, self.x)[-ndim:] if ndim <= 3 else (None,) * ndim

    @property
    def known(self) -> bool:
        return any(v is not None for v in (self.z, self.y, self.x))


def _microns(value: float | None, unit: str | None) -> float | None:
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    factor = _TO_MICRONS.get((unit or "µm").strip(), None) if unit is not None else 1.0
    return None if factor is None else float(value) * factor


def _check_version(version: str | None) -> None:
    if version is not None and str(version) not in NGFF_VERSIONS:
        raise ValueError(f"ngff_version: {version!r}; rlcore writes OME-NGFF "
                         f"{' or '.join(NGFF_VERSIONS)}")


def _calibrated(axes: str, voxel_size: VoxelSize | None, calibration: Calibration | None
                ) -> Calibration:
    """The calibration to write: ``calibration`` or the one ``voxel_size`` carries, with
    the voxel size's z, y, x where it differs; else from the voxel size."""
    cal = calibration or (voxel_size.calibration if voxel_size is not None else None)
    if cal is None:
        return Calibration.from_voxel_size(voxel_size, axes)
    return cal.with_voxel_size(voxel_size) if voxel_size is not None else cal


def _restore_axes(image: Any, axes: str, cal: Calibration) -> tuple[Any, str]:
    """Singleton axes that the read removed, put back where the calibration has them
    (so the output has the input's axes)."""
    if set(axes) >= set(cal.axes) or not set(axes) <= set(cal.axes):
        return image, axes
    order = [a for a in cal.axes if a in axes]
    if "".join(order) != axes:
        return image, axes
    index = tuple(slice(None) if a in axes else None for a in cal.axes)
    return image[index], cal.axes


def _channel_names(names: tuple[str, ...], axes: str, shape: tuple[int, ...]
                   ) -> tuple[str, ...]:
    """The channel names to write: one per channel of the C axis (one for an image
    without one); () when they do not match."""
    count = shape[axes.index("c")] if "c" in axes else 1
    return tuple(names) if len(names) == count else ()
