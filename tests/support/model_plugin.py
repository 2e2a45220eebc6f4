"""Makes the networks of `tests/model_plugin` installed for the test run only.

The package declares `edgeprune.models` entry points in its pyproject.toml. Installing it into
`.venv` would show its test networks (and its deliberately broken entry point's warnings) to
everything else run from that environment, the demo included. Instead the test session writes
the package's distribution metadata into a temporary folder and puts that folder and the
package on `sys.path` and `PYTHONPATH`: `importlib.metadata` finds the entry points there, in
the test process and in every process it starts (API, workers, CLIs).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

PLUGIN_ROOT = Path(__file__).resolve().parents[1] / "model_plugin"


def _dist_info(target: Path) -> Path:
    project = tomllib.loads((PLUGIN_ROOT / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    folder = target / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines: list[str] = []
    for group, points in project.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {value}" for key, value in points.items())
        lines.append("")
    (folder / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    return folder


def expose_model_plugin() -> Path:
    """Put the test package's code and metadata on this process's and its children's path;
    returns the metadata folder (remove it with `hide_model_plugin`)."""
    metadata_root = Path(tempfile.mkdtemp(prefix="edgeprune-test-plugin-"))
    _dist_info(metadata_root)
    entries = [str(PLUGIN_ROOT), str(metadata_root)]
    sys.path[:0] = entries
    inherited = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*entries, *([inherited] if inherited else [])])
    return metadata_root


def hide_model_plugin(metadata_root: Path) -> None:
    shutil.rmtree(metadata_root, ignore_errors=True)
