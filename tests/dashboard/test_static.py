"""Static files: served from the package with the right types, no CDN, nothing dangling."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from service.dashboard.routes import CHART_JS_VERSION, STATIC_DIR
from tests.dashboard.conftest import Dashboard

JS_FILES = sorted(p.relative_to(STATIC_DIR).as_posix() for p in (STATIC_DIR / "js").glob("*.js"))
VENDOR_README = STATIC_DIR / "vendor" / "README.md"
ASSET_REF = re.compile(r"""(?:src|href)="(/static/[^"?]+)""")
IMPORT = re.compile(r"""from\s+"(\./[^"]+)";""")


@pytest.mark.parametrize("name", JS_FILES)
def test_scripts_are_served_as_javascript(dash: Dashboard, name: str) -> None:
    response = dash.client.get(f"/static/{name}")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.content == (STATIC_DIR / name).read_bytes()


def test_stylesheet_is_served_as_css(dash: Dashboard) -> None:
    response = dash.client.get("/static/css/dashboard.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert ".badge" in response.text


def test_vendored_chart_js_is_the_pinned_release(dash: Dashboard) -> None:
    response = dash.client.get("/static/vendor/chart.umd.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.text.startswith(f"/*!\n * Chart.js v{CHART_JS_VERSION}\n")
    recorded = re.search(r"sha256 of `chart.umd.js`: `([0-9a-f]{64})`", VENDOR_README.read_text())
    assert recorded is not None
    assert hashlib.sha256(response.content).hexdigest() == recorded.group(1)
    assert f"| Chart.js | {CHART_JS_VERSION} |" in VENDOR_README.read_text()
    assert "MIT License" in (STATIC_DIR / "vendor" / "chart.js.LICENSE.md").read_text()


def test_static_files_need_no_token(dash: Dashboard) -> None:
    # The shells and their assets load before anyone has signed in.
    assert dash.client.get("/static/js/api.js").status_code == 200
    assert dash.client.get("/static/favicon.svg").status_code == 200


def test_every_asset_a_page_names_exists(dash: Dashboard) -> None:
    referenced = set()
    for page in ("/", "/login", "/jobs/new", "/deployments", f"/jobs/{dash.seeded.succeeded}"):
        html = dash.client.get(page).text
        assert not re.search(r"""(?:src|href)="(?:https?:)?//""", html), page  # no CDN
        referenced |= set(ASSET_REF.findall(html))
    assert len(referenced) >= 8  # stylesheet, icon, five page scripts, Chart.js
    for path in referenced:
        assert dash.client.get(path).status_code == 200, path


def test_every_module_import_resolves() -> None:
    for name in JS_FILES:
        source = (STATIC_DIR / name).read_text()
        assert "http://" not in source and "https://" not in source, name
        for target in IMPORT.findall(source):
            assert (STATIC_DIR / Path(name).parent / target).is_file(), f"{name} -> {target}"


def test_scripts_never_put_the_token_in_a_url() -> None:
    api = (STATIC_DIR / "js" / "api.js").read_text()
    assert "sessionStorage" in api and "localStorage" not in api
    assert "Authorization" in api and "Bearer" in api
    for name in JS_FILES:
        source = (STATIC_DIR / name).read_text()
        assert not re.search(r"[?&](?:token|access_token)=", source), name
        assert "innerHTML" not in source, name  # API data goes in as text only
