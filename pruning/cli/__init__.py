"""`edgeprune compress` and `edgeprune pretrain`: the engine without a server.

Module-level imports are typer and the standard library only; torch loads inside commands.
"""

from __future__ import annotations

import typer

from pruning.cli.compress import compress
from pruning.cli.pretrain import pretrain


def register(app: typer.Typer) -> None:
    app.command("compress")(compress)
    app.command("pretrain")(pretrain)
