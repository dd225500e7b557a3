#!/usr/bin/env bash
# Screenshots of the built site in headless Chromium, committed under docs/ so anyone can
# see what a user sees: the home page, the API page of rlcore.deconvolve and one gallery
# example. Build the site first (nox -s docs, or
# python -m sphinx -W --keep-going -b html docs docs/_build/html), then:
#   bash scripts/docs_screenshots.sh [BUILD_DIR]      # default docs/_build/html
# Needs Chromium (Debian: apt-get install -y chromium). It also refreshes docs/napari.png:
# the napari test's screenshot, which the test suite itself writes only to a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
html="$(cd "${1:-docs/_build/html}" && pwd)"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome)"
shot() {  # shot PAGE OUT.png WIDTH,HEIGHT
    profile="$(mktemp -d)"
    "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --user-data-dir="$profile" --window-size="$3" \
        --screenshot="$PWD/$2" "file://$html/$1" 2>/dev/null
    rm -rf "$profile"
    echo "docs/${2#docs/}: $1"
}
shot index.html docs/site-home.png 1400,1000
shot api/generated/rlcore.deconvolve.html docs/site-api-deconvolve.png 1400,1000
shot auto_examples/plot_01_lls_sample.html docs/site-gallery-example.png 1400,2300
RLCORE_DOCS_SCREENSHOTS=1 .venv/bin/python -m pytest -q tests/test_napari.py \
    -k test_run_on_real_data_adds_the_same_result_with_the_scale && echo "docs/napari.png: napari"
