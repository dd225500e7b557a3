"""Backends of rlcore, one module each, imported lazily by :mod:`rlcore.registry`.

Installed as ``rlcore.backends``. A backend holds no RL logic: it implements the array
operations of :class:`rlcore.protocol.Backend` and a ``probe()`` that says whether (and on
which devices) it can run here.
"""
