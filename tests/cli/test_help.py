"""Every command's --help of both command lines reads plainly: no typer type placeholders
(`<str>`, `<int range>`), every option and argument explained, choices listed, and no
`--no-X` negation of a flag that is off by default."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from typer.core import TyperOption
from typer.main import get_command
from typer.testing import CliRunner

from edge_client.cli import app as edge_app
from edgeprune.cli import app as edgeprune_app
from edgeprune.contracts.architectures import ZOO
from edgeprune.contracts.exit_codes import ExitCode
from edgeprune.contracts.jobs import JobState

PLACEHOLDER = re.compile(r"<(str|int|float|bool|path|file|directory|[a-z]+ range|list\[[^>]*\])>")


def _leaves(app: typer.Typer, prog: str) -> Iterator[tuple[list[str], typer.core.TyperCommand]]:
    def walk(command: object, path: list[str]) -> Iterator[tuple[list[str], object]]:
        children = getattr(command, "commands", None)
        if children:
            for name, child in sorted(children.items()):
                yield from walk(child, [*path, name])
        else:
            yield path, command

    yield from walk(get_command(app), [prog])  # type: ignore[misc]


COMMANDS = [
    *_leaves(edgeprune_app, "edgeprune"),
    *_leaves(edge_app, "edge-client"),
]
IDS = [" ".join(path) for path, _ in COMMANDS]


def _help(path: list[str]) -> str:
    app = edgeprune_app if path[0] == "edgeprune" else edge_app
    result = CliRunner().invoke(app, [*path[1:], "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_help_has_no_type_placeholders(path: list[str], command: object) -> None:
    text = _help(path)
    assert not PLACEHOLDER.findall(text), PLACEHOLDER.findall(text)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_option_and_argument_is_explained(path: list[str], command: object) -> None:
    params = [p for p in command.params if not p.hidden]  # type: ignore[attr-defined]
    unexplained = [p.name for p in params if not (p.help or "").strip()]
    assert not unexplained, f"{' '.join(path)}: no help for {unexplained}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_no_negation_of_a_flag_that_is_off_by_default(path: list[str], command: object) -> None:
    for param in command.params:  # type: ignore[attr-defined]
        if isinstance(param, TyperOption) and param.is_flag and param.secondary_opts:
            # --x/--no-x only where both mean something: on by default, or unset (None).
            assert param.default is not False, f"{' '.join(path)}: {param.opts}"


def test_arguments_are_named_in_upper_case() -> None:
    text = _help(["edgeprune", "jobs", "show"])
    assert "JOB_ID" in text and "job_id" not in text


def test_values_read_as_words_not_python_types() -> None:
    text = _help(["edge-client", "bench"])
    assert re.search(r"--runs\s+N \[x>=1\]", text)
    assert re.search(r"--input-shape\s+C,H,W", text)
    assert re.search(r"--raw\s+Float x", text)  # a flag takes no value
    assert re.search(r"--threads\s+N", _help(["edge-client", "run"]))


@pytest.mark.parametrize(
    "path",
    [
        ["edgeprune", "compress"],
        ["edgeprune", "pretrain"],
        ["edgeprune", "demo"],
        ["edgeprune", "models", "upload"],
    ],
)
def test_arch_lists_the_zoo(path: list[str]) -> None:
    text = " ".join(_help(path).split())
    assert all(name in text for name in ZOO), text


def test_the_zoo_named_in_help_is_what_pruning_builds() -> None:
    from pruning.models.registry import available_models

    assert sorted(ZOO) == available_models()


def test_state_choices_are_the_api_job_states() -> None:
    from service.api.schemas.jobs import JobState as ApiJobState

    assert ApiJobState is JobState  # the API validates against the contract itself
    text = _help(["edgeprune", "jobs", "list"])
    assert "[queued|running|succeeded|failed|canceled]" in text
    refused = CliRunner().invoke(edgeprune_app, ["jobs", "list", "--state", "done"])
    assert refused.exit_code == ExitCode.USAGE


def _choices(app: typer.Typer, path: list[str], option: str) -> list[str]:
    command = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    (param,) = [p for p in command.params if option in p.opts]
    return list(param.type_descriptor.choices)  # type: ignore[attr-defined]


def test_every_log_level_option_takes_the_same_names() -> None:
    names = _choices(edgeprune_app, ["serve"], "--log-level")
    assert names == ["debug", "info", "warning", "error", "critical"]
    for app, path in [
        (edgeprune_app, ["api"]),
        (edgeprune_app, ["worker"]),
        (edge_app, ["run"]),
        (edge_app, ["register"]),
        (edge_app, ["rollback"]),
    ]:
        assert _choices(app, path, "--log-level") == names, path


def test_flops_are_called_flops_macs_in_help() -> None:
    for path, _ in COMMANDS:
        text = " ".join(_help(path).split())
        assert not re.search(r"FLOPs(?! \(MACs\))", text), path
    assert "FLOPs (MACs)" in " ".join(_help(["edgeprune", "compress"]).split())
