#!/usr/bin/env bash
# The quick benchmark suite end to end (≈ 25 minutes on 2 CPU cores), then RESULTS.md.
#   bench/run_all.sh            quick suite on builtin:digits
#   bench/run_all.sh --cifar D  also on a CIFAR-10 python-format folder D (quality only)
# Run from anywhere; it works from the repository root. Set NICE=10 to be gentle on a
# shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { nice -n "${NICE:-0}" python -m "$@"; }

run bench.structure_overhead --quick
run bench.onnx_speedup --quick
run bench.quality --quick "$@"
python -m bench.report
