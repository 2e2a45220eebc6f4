"""`edgeprune demo --json`: how the demo runs its steps so that stdout keeps only its closing
object (the whole demo runs in tests/integration/test_demo.py)."""

from __future__ import annotations

import os
import sys

import pytest

from edgeprune.demo import _Narrator


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_with_json_a_steps_output_and_the_narration_go_to_stderr(
    capfd: pytest.CaptureFixture[str],
) -> None:
    narrator = _Narrator(as_json=True)
    narrator.say("1/5 a step")
    narrator.echo("a note")
    narrator.run(_python("print('the step talks')"), dict(os.environ))
    captured = capfd.readouterr()
    assert captured.out == ""
    assert "== 1/5 a step" in captured.err and "a note" in captured.err
    assert "the step talks" in captured.err


def test_without_json_everything_stays_on_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    narrator = _Narrator(as_json=False)
    narrator.say("1/5 a step")
    narrator.run(_python("print('the step talks')"), dict(os.environ))
    out = capfd.readouterr().out
    assert "== 1/5 a step" in out and "the step talks" in out


def test_run_json_reads_one_object_or_the_last_of_json_lines(
    capfd: pytest.CaptureFixture[str],
) -> None:
    narrator = _Narrator(as_json=True)
    # The step is run with --json added; its stderr is shown (on stderr), not parsed.
    one = _python(
        "import json, sys; assert sys.argv[1:] == ['--json']; "
        "print('uploading', file=sys.stderr); print(json.dumps({'id': 'mdl_1'}, indent=2))"
    )
    assert narrator.run_json(one, dict(os.environ)) == {"id": "mdl_1"}
    lines = _python('print(\'{"event": "state"}\'); print(\'{"event": "job", "data": 1}\')')
    assert narrator.run_json(lines, dict(os.environ)) == {"event": "job", "data": 1}
    assert "uploading" in capfd.readouterr().err


def test_a_failing_step_ends_the_demo_with_its_exit_code() -> None:
    import typer

    with pytest.raises(typer.Exit) as raised:
        _Narrator(as_json=True).run(_python("raise SystemExit(3)"), dict(os.environ))
    assert raised.value.exit_code == 3
