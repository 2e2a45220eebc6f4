#!/usr/bin/env bash
# The README's first command: installs what is missing, then runs the end-to-end demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/edgeprune demo "$@"
