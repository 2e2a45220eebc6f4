#!/usr/bin/env bash
# The test command of the README: installs what is missing, then runs the default suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# One pytest process per core (pytest-xdist), an idle one taking tests from a busy one
# (worksteal): many tests wait on the processes they start, so two cores run the suite in
# about 13 minutes instead of 21. Each test process trains on one thread so that two of them
# do not fight over the cores (tests that need more threads set them). EDGEPRUNE_TEST_WORKERS=0
# runs everything in one process.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
workers="${EDGEPRUNE_TEST_WORKERS:-auto}"
# --durations: every run ends with its slowest tests, so the suite's time can be watched.
exec .venv/bin/python -m pytest -q --durations=15 -n "$workers" --dist worksteal "$@"
