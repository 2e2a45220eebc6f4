"""The README and docs/ are read in the repository on their own: every relative link points
at a file of the repository, none reaches outside it, and the design page is linked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def relative_links(page: Path) -> list[str]:
    links = LINK.findall(page.read_text())
    return [t for t in links if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_stay_in_the_repository_and_resolve(page: Path) -> None:
    for target in relative_links(page):
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert REPO in path.parents, f"{page.name} links outside the repository: {target}"
        assert path.exists(), f"{page.name} links to a missing file: {target}"


def test_readme_links_the_design_page() -> None:
    assert "docs/design.md" in relative_links(REPO / "README.md")
