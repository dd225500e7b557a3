"""The napari widget: deconvolve an image layer in a worker thread, never freezing the viewer.

The widget holds no RL logic: it gathers the settings, calls :func:`rlcore.deconvolve` in
napari's ``thread_worker`` and adds the result as a new layer with the source layer's
scale and translate. Progress comes from the ``callback`` (one step per iteration and
block) through a Qt signal, so the bar updates on the GUI thread; Cancel sets a flag that
the callback checks, which stops the run between iterations. Errors become a napari
notification with the one-line message. A PSF layer of K PSFs ``(K, Z, Y, X)`` with its
depths ("PSF depths", or the layer's ``metadata["psf_depths"]``) runs the depth-variant
model (``psf_depths``).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
    create_widget,
)
from qtpy.QtCore import QObject, Signal

import rlcore
from rlcore.backprojector import BACK_PROJECTORS
from rlcore.boundary import BOUNDARIES, FACE_BOUNDARY

__all__ = ["DeconvolveWidget", "Cancelled"]

_GENERATED = "Gaussian (rlcore.psf)"


def at_image_scale(psf: np.ndarray, psf_scale: Any, image_scale: Any) -> np.ndarray:
    """The PSF resampled from its layer's scale to the image layer's
    (:func:`rlcore.psf.resample`, the last ``psf.ndim`` axes; a notification says so) when
    both scales are known, i.e. neither is napari's default of all 1, and they differ;
    otherwise the PSF as given (taken as sampled at the image's scale)."""
    n = psf.ndim
    a = tuple(float(v) for v in psf_scale)[-n:]
    b = tuple(float(v) for v in image_scale)[-n:]
    if len(a) != n or len(b) != n or np.allclose(a, b, rtol=1e-6, atol=0) or all(
            v == 1 for v in a) or all(v == 1 for v in b):
        return psf
    from napari.utils.notifications import show_info

    from rlcore.psf import resample

    out = resample(psf, a, b)
    show_info(f"PSF resampled from its layer's scale {a} to the image's {b}: shape "
              f"{psf.shape} -> {out.shape}")
    return out


def parse_depths(text: str, image_scale: Any) -> tuple[float, ...] | None:
    """The "PSF depths" box: numbers separated by commas or spaces, in planes of the image's
    z axis, or in microns with a trailing ``um`` / ``µm`` (converted by the image layer's z
    scale, which must be known: not napari's default of all 1). None when empty.

    Raises
    ------
    ValueError
        Not a list of numbers, or microns with the image layer's scale unknown.
    """
    text = text.strip()
    if not text:
        return None
    microns = text.lower().endswith(("um", "µm"))
    body = text[:-2] if microns else text
    try:
        depths = tuple(float(v) for v in body.replace(",", " ").split())
    except ValueError:
        raise ValueError(f"PSF depths: {text!r} is not a list of numbers; give the depths "
                         "in planes of the image's z axis (e.g. 0, 20, 40) or in microns "
                         "(e.g. 0, 6, 12 um)") from None
    if not depths:
        raise ValueError("PSF depths: no number given; e.g. 0, 20, 40 (planes)")
    if microns:
        scale = tuple(float(v) for v in image_scale)
        if len(scale) < 3:
            raise ValueError("PSF depths: the image layer has no z axis; a depth-variant "
                             "PSF is for (Z, Y, X) images")
        if all(v == 1 for v in scale):
            raise ValueError("PSF depths: given in microns, but the image layer's scale is "
                             "napari's default (all 1, unknown); set the layer's scale or "
                             "give the depths in planes")
        depths = tuple(d / scale[-3] for d in depths)
    return depths


class Cancelled(Exception):
    """Raised by the progress callback after Cancel: stops the run between iterations."""


class _Relay(QObject):
    """Carries progress from the worker thread to the GUI thread (queued signal)."""

    progressed = Signal(int, int)


def backend_choices() -> list[str]:
    """"auto" and every backend that works on this machine (from available_backends)."""
    return ["auto"] + [b.name for b in rlcore.available_backends()
                       if b.available and b.name != "array_api"]


class DeconvolveWidget(Container):
    """Richardson-Lucy deconvolution of an image layer.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer (napari passes it).
    """

    def __init__(self, napari_viewer: Any):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.image = create_widget(annotation="napari.layers.Image", label="image")
        self.psf_source = ComboBox(choices=["PSF layer", _GENERATED], value="PSF layer",
                                   label="PSF from")
        self.psf = create_widget(annotation="napari.layers.Image", label="PSF layer")
        self.center_psf = CheckBox(value=True, text="centre the PSF on its centroid")
        self.psf_depths = LineEdit(value="", label="PSF depths")
        self.psf_depths.tooltip = (
            "a depth-variant PSF: a PSF layer of K PSFs (K, Z, Y, X) and their K depths, "
            "planes of the image's z axis (0, 20, 40) or microns (0, 6, 12 um); empty: the "
            "layer's metadata['psf_depths'] (planes), else one PSF")
        self.sigma = FloatSpinBox(value=2.0, min=0.3, max=50.0, step=0.1,
                                  label="PSF sigma (voxels)", visible=False)
        self.background = FloatSpinBox(value=0.0, min=0.0, max=1e9, step=1.0,
                                       label="background")
        self.iterations = SpinBox(value=10, min=0, max=100000, label="iterations")
        self.auto = CheckBox(value=False, text="iterations from the data (auto)")
        self.accelerate = ComboBox(choices=["auto", "off", "momentum", "biggs-andrews"],
                                   value="auto", label="acceleration")
        self.back_projector = ComboBox(choices=["auto", *BACK_PROJECTORS], value="auto",
                                       label="back projector")
        self.backend = ComboBox(choices=backend_choices(), value="auto", label="backend")
        self.boundary = ComboBox(choices=list(BOUNDARIES), value=FACE_BOUNDARY,
                                 label="boundary")
        self.blocks = CheckBox(value=False, text="compute in blocks (large data)")
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self.status = Label(value="")
        self.extend([self.image, self.psf_source, self.psf, self.center_psf,
                     self.psf_depths, self.sigma,
                     self.background,
                     self.iterations, self.auto, self.accelerate, self.back_projector,
                     self.backend, self.boundary, self.blocks,
                     self.run_button, self.cancel_button, self.progress, self.status])
        self.psf_source.changed.connect(self._psf_source_changed)
        self.auto.changed.connect(lambda value: setattr(self.iterations, "enabled", not value))
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self._relay = _Relay()
        self._relay.progressed.connect(self._on_progress)
        self._cancel = threading.Event()
        self.worker = None
        self.result_layer = None
        # layer choices follow the viewer's layers
        napari_viewer.layers.events.inserted.connect(self._refresh_layers)
        napari_viewer.layers.events.removed.connect(self._refresh_layers)

    # -- settings
    def _refresh_layers(self, *_: Any) -> None:
        self.image.reset_choices()
        self.psf.reset_choices()

    def _psf_source_changed(self, value: str) -> None:
        generated = value == _GENERATED
        self.psf.visible = self.center_psf.visible = self.psf_depths.visible = not generated
        self.sigma.visible = generated

    def settings(self) -> dict:
        """The keyword arguments for :func:`rlcore.deconvolve` (besides image and PSF).

        With "auto" iterations the background is passed as ``offset`` (the held-out split
        is made on the data as recorded); otherwise it is subtracted first."""
        accelerate = {"off": False}.get(self.accelerate.value, self.accelerate.value)
        out = {"iterations": "auto" if self.auto.value else int(self.iterations.value),
               "backend": self.backend.value, "boundary": self.boundary.value,
               "accelerate": accelerate, "back_projector": self.back_projector.value,
               "block_shape": "auto" if self.blocks.value else None}
        if self.auto.value and self.background.value:
            out["offset"] = float(self.background.value)
        return out

    def _inputs(self) -> tuple[np.ndarray, np.ndarray, tuple[float, ...] | None]:
        """The image, the PSF (or a stack of K PSFs, ``(K, Z, Y, X)``) as prepared, and the
        stack's depths (planes of the image; None for one PSF)."""
        layer = self.image.value
        if layer is None:
            raise ValueError("image: choose an image layer")
        image = np.asarray(layer.data)
        if image.ndim not in (2, 3):
            raise ValueError(f"image: layer {layer.name!r} has {image.ndim} axes; "
                             "rlcore deconvolves 2-D and 3-D images")
        if self.background.value and not self.auto.value:
            image = np.clip(image.astype(np.float32) - np.float32(self.background.value),
                            0, None)
        if self.psf_source.value == _GENERATED:
            from rlcore import psf as psf_tools

            sigma = float(self.sigma.value)
            size = tuple(min(n, 2 * int(np.ceil(4 * sigma)) + 1) for n in image.shape)
            return image, psf_tools.gaussian(size, sigma), None
        psf_layer = self.psf.value
        if psf_layer is None:
            raise ValueError("PSF: choose a PSF layer, or a generated Gaussian PSF")
        if psf_layer is layer:
            raise ValueError("PSF: the PSF layer is the image layer; choose the PSF")
        psf = np.asarray(psf_layer.data)
        depths = self._depths(psf, psf_layer, layer)
        psfs = list(psf) if depths is not None else [psf]
        scale = tuple(psf_layer.scale)[-psfs[0].ndim:]
        psfs = [at_image_scale(self._centred(p), scale, layer.scale) for p in psfs]
        return image, (np.stack(psfs) if depths is not None else psfs[0]), depths

    def _depths(self, psf: np.ndarray, psf_layer: Any, layer: Any) -> tuple | None:
        """The depths of a stack of PSFs: the "PSF depths" box, else the PSF layer's
        ``metadata["psf_depths"]`` (planes); None for one PSF."""
        depths = parse_depths(self.psf_depths.value, layer.scale)
        if depths is None and psf.ndim == 4:
            meta = psf_layer.metadata.get("psf_depths")
            depths = None if meta is None else tuple(float(d) for d in meta)
            if depths is None:
                raise ValueError(f"PSF depths: the PSF layer {psf_layer.name!r} holds "
                                 f"{psf.shape[0]} PSFs {psf.shape}; give their "
                                 f"{psf.shape[0]} depths in 'PSF depths' (planes of the "
                                 "image's z axis, e.g. 0, 20, 40), or choose a layer of "
                                 "one PSF")
        if depths is not None and psf.ndim != 4:
            raise ValueError(f"PSF depths: given, but the PSF layer {psf_layer.name!r} holds "
                             f"one PSF {psf.shape}; clear 'PSF depths', or choose a layer "
                             "of K PSFs (K, Z, Y, X)")
        return depths

    def _centred(self, psf: np.ndarray) -> np.ndarray:
        """The faces' policy (:func:`rlcore.psf.centered`) when "centre" is ticked."""
        if not self.center_psf.value:
            return psf
        from rlcore.psf import centered

        psf, moved = centered(psf)
        if any(moved):
            from napari.utils.notifications import show_info

            show_info(f"PSF centred on its centroid: moved by "
                      f"{tuple(round(m, 2) for m in moved)} voxels")
        return psf

    # -- running
    def run(self, *_: Any) -> bool:
        """Start the deconvolution in a worker thread (:attr:`worker`). Returns True when
        it started (or was already running), False when the settings are wrong: then a
        notification says why (a button handler must not raise into the event loop)."""
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error

        if self.worker is not None:
            return True
        try:
            image, psf, depths = self._inputs()
        except (ValueError, TypeError) as exc:
            show_error(f"rlcore: {exc}")
            self.status.value = f"error: {exc}"
            return False
        source = self.image.value
        kwargs = self.settings()
        iterations = kwargs.pop("iterations")
        if depths is not None:
            kwargs["psf_depths"] = depths
        self._cancel.clear()
        relay = self._relay
        cancel = self._cancel

        def callback(k: int, total: int) -> None:
            relay.progressed.emit(k, total)
            if cancel.is_set():
                raise Cancelled(f"cancelled after {k} of {total} iterations")

        def job() -> np.ndarray:
            return rlcore.deconvolve(image, psf, iterations, callback=callback, **kwargs)

        self.progress.max = max(1, iterations if isinstance(iterations, int) else 200)
        self.progress.value = 0
        self.status.value = "running"
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        worker = create_worker(job, _ignore_errors=True)  # errors: _on_error, one line
        worker.returned.connect(lambda result: self._on_done(result, source))
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        worker.start()
        return True

    def cancel(self, *_: Any) -> None:
        """Stop the running deconvolution after its current iteration."""
        self._cancel.set()
        self.status.value = "cancelling"

    def _on_progress(self, k: int, total: int) -> None:
        self.progress.max = max(1, total)
        self.progress.value = k

    def _on_done(self, result: np.ndarray, source: Any) -> None:
        high = float(np.percentile(result, 99.9)) if result.size else 1.0
        self.result_layer = self.viewer.add_image(
            result, name=f"{source.name} deconvolved", scale=source.scale,
            translate=source.translate, colormap=source.colormap.name,
            blending=source.blending,
            contrast_limits=(0.0, high if high > 0 else 1.0))  # RL sharpens: bright peaks
        self.status.value = "done"

    def _on_error(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_error, show_info

        if isinstance(exc, Cancelled):
            show_info(f"rlcore: {exc}")
            self.status.value = str(exc)
            return
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        show_error(f"rlcore: {message}")
        self.status.value = f"error: {message}"

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.enabled = True
        self.cancel_button.enabled = False
