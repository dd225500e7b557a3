"""napari plugin (npe2): a deconvolution widget and the shipped real sample.

Installed with ``pip install "rlcore[napari]"``; napari finds it through the
``napari.manifest`` entry point (``rlcore/napari/napari.yaml``). Importing this package
does not import napari or Qt: the widget module does, when napari asks for it.
"""

__all__: list[str] = []
