#!/usr/bin/env bash
# The test command of the README: installs what is missing, then runs the default suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# --durations: every run ends with its slowest tests, so the suite's time can be watched.
exec .venv/bin/python -m pytest -q --durations=15 "$@"
