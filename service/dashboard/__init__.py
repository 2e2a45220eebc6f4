"""The operator dashboard: server-rendered HTML shells whose data comes from the REST API.

The pages are public; every number on them is fetched by the browser from `/v1/...` with the
admin token the operator typed on the login page (kept in `sessionStorage`, sent as a bearer
header, never put in a URL). There is no private data path from the server into the HTML.
"""

from service.dashboard.routes import mount_dashboard, router

__all__ = ["mount_dashboard", "router"]
