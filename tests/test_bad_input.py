"""Bad input gets a clear exception naming the argument; inputs are never mutated."""

from __future__ import annotations

import numpy as np
import pytest

import rlcore
from rlcore.errors import BackendUnavailableError

GOOD_IMAGE = np.ones((6, 7, 8), np.float32)
GOOD_PSF = np.ones((3, 3, 3))


def _nan_image():
    a = GOOD_IMAGE.copy()
    a[1, 2, 3] = np.nan
    return a


def _inf_psf():
    p = GOOD_PSF.copy()
    p[0, 0, 0] = np.inf
    return p


BAD = [
    # (image, psf, kwargs, exception, message must contain)
    (_nan_image(), GOOD_PSF, {}, ValueError, "image: contains 1 NaN"),
    (GOOD_IMAGE, _inf_psf(), {}, ValueError, "psf: contains NaN"),
    (np.ones((0, 4, 4), np.float32), GOOD_PSF, {}, ValueError, "image: is empty"),
    (GOOD_IMAGE, np.ones((0, 3, 3)), {}, ValueError, "psf: is empty"),
    (GOOD_IMAGE, np.ones((2, 3, 3, 3)), {}, ValueError, "psf: has 4 dimensions"),
    (GOOD_IMAGE, np.zeros((3, 3, 3)), {}, ValueError, "psf: sum must be positive, got 0"),
    (GOOD_IMAGE, -np.ones((3, 3, 3)), {}, ValueError, "psf: sum must be positive, got -27"),
    (GOOD_IMAGE.astype(np.complex64), GOOD_PSF, {}, TypeError, "image: dtype complex64"),
    (GOOD_IMAGE, GOOD_PSF.astype(complex), {}, TypeError, "psf: dtype complex128"),
    (GOOD_IMAGE.astype(object), GOOD_PSF, {}, TypeError, "image: dtype object"),
    (np.full((2, 2), "a"), np.ones((1, 1)), {}, TypeError, "image: dtype <U1"),
    (GOOD_IMAGE > 0, GOOD_PSF, {}, TypeError, "image: dtype bool"),
    ("image.tif", GOOD_PSF, {}, TypeError, "image: got str"),
    (np.float32(3.0), GOOD_PSF, {}, ValueError, "image: must have at least 1 dimension"),
    (GOOD_IMAGE, GOOD_PSF, {"iterations": -1}, ValueError, "iterations: must be >= 0"),
    (GOOD_IMAGE, GOOD_PSF, {"iterations": 2.5}, TypeError, "iterations: must be an int"),
    (GOOD_IMAGE, GOOD_PSF, {"iterations": True}, TypeError, "iterations: must be an int"),
    (GOOD_IMAGE, GOOD_PSF, {"boundary": "wrap"}, ValueError, "boundary: must be one of"),
    (GOOD_IMAGE, GOOD_PSF, {"backend": "nope"}, ValueError, "backend: unknown backend 'nope'"),
    (GOOD_IMAGE, GOOD_PSF, {"backend": 3}, TypeError, "backend: must be a str"),
    (GOOD_IMAGE, GOOD_PSF, {"init": "ones"}, ValueError, "init: must be 'image'"),
    (GOOD_IMAGE, GOOD_PSF, {"init": -1.0}, ValueError, "init: a constant first estimate"),
    (GOOD_IMAGE, GOOD_PSF, {"init": np.ones((2, 2, 2))}, ValueError, "init: shape (2, 2, 2)"),
    (GOOD_IMAGE, GOOD_PSF, {"callback": 5}, TypeError, "callback: must be callable"),
    (GOOD_IMAGE, GOOD_PSF, {"device": "gpu0"}, ValueError, "device: the numpy backend"),
]


@pytest.mark.parametrize(("image", "psf", "kwargs", "exc", "message"), BAD,
                         ids=[b[-1][:40] for b in BAD])
def test_bad_input_raises_naming_the_argument(image, psf, kwargs, exc, message):
    kwargs = dict(kwargs)
    if "device" in kwargs:
        kwargs["backend"] = "numpy"
    with pytest.raises(exc) as info:
        rlcore.deconvolve(image, psf, **kwargs)
    assert message in str(info.value)


def test_negative_values_are_clipped_with_warning():
    image = np.ones((6, 7, 8), np.float32)
    image[0, 0, 0] = -5
    with pytest.warns(UserWarning, match="image: 1 negative values clipped to 0"):
        a = rlcore.deconvolve(image, GOOD_PSF, 3)
    b = rlcore.deconvolve(np.clip(image, 0, None), GOOD_PSF, 3)
    np.testing.assert_array_equal(a, b)
    psf = GOOD_PSF.copy()
    psf[0, 0, 0] = -0.1
    with pytest.warns(UserWarning, match="psf: 1 negative values clipped"):
        rlcore.deconvolve(np.ones((6, 7, 8)), psf, 1)


def test_unavailable_backend_says_why(monkeypatch):
    from rlcore import registry

    registry.register("fake", "rlcore.no_such_module", auto_rank=None)
    try:
        with pytest.raises(BackendUnavailableError, match="fake.*cannot run here"):
            rlcore.deconvolve(GOOD_IMAGE, GOOD_PSF, backend="fake")
        info = {b.name: b for b in rlcore.available_backends()}["fake"]
        assert not info.available and "No module named" in info.reason
    finally:
        registry._REGISTRY.pop("fake")


def test_dask_input_to_convolve_is_refused_clearly_and_bad_dask_options_raise():
    da = pytest.importorskip("dask.array", reason="dask not installed (rlcore[dask])")
    with pytest.raises(TypeError, match="image: convolve takes in-memory arrays"):
        rlcore.convolve(da.ones((4, 4, 4)), GOOD_PSF)
    with pytest.raises(ValueError, match="tol: not available with blocks"):
        rlcore.deconvolve(da.ones((4, 4, 4)), GOOD_PSF, tol=1e-3)
    with pytest.raises(ValueError, match="backend: unknown backend"):
        rlcore.deconvolve(da.ones((4, 4, 4)), GOOD_PSF, backend="nope")


@pytest.mark.parametrize("mode", ["periodic", "zero", "reflect"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
def test_inputs_are_never_mutated(backend, rng, mode, dtype):
    image = (rng.random((7, 9, 10)) * 100).astype(dtype)
    psf = rng.random((3, 4, 5)).astype(np.float32)
    init = (rng.random(image.shape) + 1).astype(np.float32)
    copies = [image.copy(), psf.copy(), init.copy()]
    out = backend.deconvolve(image, psf, 3, boundary=mode, init=init)
    for before, after in zip(copies, [image, psf, init]):
        np.testing.assert_array_equal(before, after)
    assert out is not None and not np.shares_memory(out, image)


def test_integer_and_float_inputs_agree(rng):
    image = (rng.random((6, 8, 10)) * 1000).astype(np.uint16)
    a = rlcore.deconvolve(image, GOOD_PSF, 3)
    b = rlcore.deconvolve(image.astype(np.float32), GOOD_PSF, 3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32


def test_array_likes_are_accepted():
    out = rlcore.deconvolve([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[0.0, 1.0, 0.0]], 2)
    assert isinstance(out, np.ndarray) and out.shape == (2, 3)


@pytest.mark.parametrize("route", ["whole", "blocks", "frames", "auto"])
def test_warnings_point_at_the_callers_line(route):
    """Every warning rlcore gives names the caller's file and line, whatever route ran."""
    import warnings

    image = np.full((8, 16, 16), 5.0, np.float32)
    image[0, 0, 0] = -1.0  # clipped, with a warning
    psf = np.ones((3, 3, 3), np.float32)
    psf[0, 0, 0] = -0.1  # clipped, with a warning (auto splits the raw image: no clip)
    kwargs = {"whole": {}, "blocks": {"block_shape": (8, 8, 8)}, "auto": {},
              "frames": {}}[route]
    iterations = "auto" if route == "auto" else 2
    data = np.stack([image, image]) if route == "frames" else image
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = __import__("inspect").currentframe().f_lineno + 1
        rlcore.deconvolve(data, psf, iterations, backend="numpy", **kwargs)
    assert caught, "expected the negative-value warnings"
    for w in caught:
        assert w.filename == __file__ and w.lineno == line, (w.filename, w.lineno, w.message)


def test_offset_auto_is_the_estimated_background_and_reported():
    """offset="auto": the image's background estimated once (rlcore.background) and
    subtracted as a given offset would be; RunInfo says the value."""
    from rlcore.background import estimate

    rng = np.random.default_rng(3)
    image = rng.poisson(5, (10, 32, 32)).astype(np.float32) + 100
    image[:, 10:20, 10:20] += 200
    psf = np.ones((3, 3, 3), np.float32)
    level = estimate(image)
    assert 99 <= level <= 110
    out, info = rlcore.deconvolve(image, psf, 3, offset="auto", backend="numpy",
                                  return_info=True)
    ref = rlcore.deconvolve(image, psf, 3, offset=level, backend="numpy")
    assert np.array_equal(out, ref) and info.offset == level
    frames, finfo = rlcore.deconvolve(np.stack([image, image]), psf, 2, offset="auto",
                                      backend="numpy", return_info=True)
    assert finfo.offset == level
    with pytest.raises(TypeError, match="offset"):
        rlcore.deconvolve(image, psf, 2, offset="dark")
