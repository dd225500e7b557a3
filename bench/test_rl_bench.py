"""pytest-benchmark suite: ``pytest bench/ --benchmark-only`` (or ``nox -s bench``)."""

from __future__ import annotations

import pytest

import rlcore
from bench.compare import gaussian_psf, make_image

SHAPES = [(64, 256, 256), (256, 256, 256)]


@pytest.fixture(scope="module", params=SHAPES, ids=lambda s: "x".join(map(str, s)))
def case(request):
    return make_image(request.param), gaussian_psf(32)


@pytest.mark.parametrize("name", [b.name for b in rlcore.available_backends()
                                  if b.available and b.name != "array_api"])
def test_deconvolve_10_iterations(benchmark, case, name):
    image, psf = case
    benchmark.pedantic(rlcore.deconvolve, args=(image, psf, 10), kwargs={"backend": name},
                       rounds=3, warmup_rounds=1)
