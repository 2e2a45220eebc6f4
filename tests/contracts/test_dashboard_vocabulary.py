"""The dashboard's scripts and pages cannot import Python: their job states, phases and
metrics are written out once in static/js/format.js (and in the two page shells that list
them), and checked here against edgeprune.contracts."""

from __future__ import annotations

import json
import re

from edgeprune.contracts.jobs import PHASES, TERMINAL_STATES, JobState
from edgeprune.contracts.limits import METRICS
from service.dashboard.routes import STATIC_DIR, TEMPLATES_DIR

FORMAT_JS = (STATIC_DIR / "js" / "format.js").read_text()
STATES = [s.value for s in JobState]


def _constant(name: str) -> str:
    """The text between the brackets or braces of `export const NAME = ...;` in format.js."""
    found = re.search(
        rf"export const {name} = (?:new Set\()?([\[{{].*?[\]}}])\)?;", FORMAT_JS, re.S
    )
    assert found is not None, f"format.js no longer exports {name}"
    return found.group(1)


def _array(name: str) -> list[str]:
    return list(json.loads(_constant(name)))


def _object_keys(name: str) -> list[str]:
    return re.findall(r'(\w+):\s*"', _constant(name))


def test_format_js_names_the_contracts_states_and_phases() -> None:
    assert _array("JOB_STATES") == STATES
    assert set(_array("TERMINAL_STATES")) == {s.value for s in TERMINAL_STATES}
    assert _object_keys("PHASE_LABELS") == list(PHASES)
    assert _object_keys("METRIC_LABELS") == list(METRICS)


def test_the_pages_list_the_contracts_states_and_phases() -> None:
    job = (TEMPLATES_DIR / "job.html").read_text()
    assert re.findall(r'<li data-phase="(\w+)"', job) == list(PHASES)
    jobs = (TEMPLATES_DIR / "jobs.html").read_text()
    assert [v for v in re.findall(r'<option value="(\w*)"', jobs) if v] == STATES


def test_no_other_script_spells_the_state_list_out() -> None:
    # One list per page script would drift: they import JOB_STATES from format.js.
    listed = re.compile(r'\[\s*"queued",\s*"running"')
    scripts = [p for p in (STATIC_DIR / "js").glob("*.js") if p.name != "format.js"]
    assert scripts and not [p.name for p in scripts if listed.search(p.read_text())]
