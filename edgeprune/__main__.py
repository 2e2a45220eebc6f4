from edgeprune.cli import app

app(prog_name="edgeprune")
