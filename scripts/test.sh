#!/usr/bin/env bash
# The whole test set-up and run, on a fresh machine: the test extras, Debian's chromium (when
# apt-get can install it), Solara's front-end assets from the npm registry (into a cache
# outside the repository), then the test suite. Arguments go to pytest.
# Outside CI a missing browser or missing assets skip the browser test with one line saying
# how to enable it; with CI=true they fail it.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet ".[test]"

if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
    && [ "$(id -u)" = "0" ]; then
  apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } \
    || echo "scripts/test.sh: could not install chromium with apt-get" >&2
fi

export SOLARA_ASSETS_PROXY_CACHE_DIR="${SOLARA_ASSETS_PROXY_CACHE_DIR:-$HOME/.cache/gpumarket/solara-cdn}"
if command -v npm >/dev/null 2>&1; then
  python -m analysis.assets "$SOLARA_ASSETS_PROXY_CACHE_DIR" >/dev/null \
    || echo "scripts/test.sh: could not fetch Solara's assets with npm" >&2
else
  echo "scripts/test.sh: npm not found; Solara's assets not fetched" >&2
fi

python -m pytest "$@"
