#!/usr/bin/env bash
# Creates .venv and installs EdgePrune with every extra. Idempotent and quick when done already.
# torch 2.13.0 is installed first, on its own: pip takes the CPU build that lies on this disk,
# and every later requirement that admits 2.13.0 then installs nothing larger.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.edgeprune-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[worker,service,edge,dev]"
# An earlier setup installed the tests' model package here; the tests now expose it to their own
# processes only (tests/support/model_plugin.py), so the demo never sees its test networks.
if .venv/bin/python -m pip show --quiet edgeprune-test-models >/dev/null 2>&1; then
  .venv/bin/python -m pip uninstall --quiet --yes edgeprune-test-models
fi
echo "$want" > "$stamp"
