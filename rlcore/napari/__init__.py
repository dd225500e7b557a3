"""napari plugin (npe2): a deconvolution widget and the shipped real sample.

Installed with ``pip install "rlcore[napari]"``; napari finds it through the
``napari.manifest`` entry point (``rlcore/napari/napari.yaml``). Importing this package
does not import napari or Qt: the widget module does, when napari asks for it.
"""

__all__ = ["DeconvolveWidget", "backend_choices", "lls_sample"]

_NAMES = {"DeconvolveWidget": "_widget", "backend_choices": "_widget",
          "lls_sample": "_sample"}


def __getattr__(name: str):
    """The widget and the sample, imported (with napari and Qt) on first use."""
    import importlib

    if name in _NAMES:
        return getattr(importlib.import_module(f"rlcore.napari.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'rlcore.napari' has no attribute {name!r}")
