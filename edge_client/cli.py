"""`edge-client`: the device side of EdgePrune on the command line.

The commands live in edge_client/commands/; errors print one line on stderr and exit with
the code of their class (see errors.py).
"""

from __future__ import annotations

import typer

from edgeprune import help_format
from edgeprune.contracts import exit_codes

from .commands import bench, device, predict

# Everything but the engine's own code (a stalled training run).
help_format.install()
EXIT_CODES = exit_codes.epilog(c for c in exit_codes.ExitCode if c != exit_codes.ExitCode.STALLED)

app = typer.Typer(
    help="EdgePrune edge client: poll, verify, swap, benchmark and report.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
)
app.command()(device.register)
app.command()(device.run)
app.command()(predict.predict)
app.command()(bench.bench)
app.command()(device.rollback)
app.command()(device.status)
