"""Entry points compatible with other deconvolution libraries (switch by one import)."""
