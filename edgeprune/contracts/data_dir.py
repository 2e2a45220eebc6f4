"""Files `edgeprune serve` keeps in its data dir that other commands look for."""

from __future__ import annotations

# Written on the first start (mode 0600); the operator CLI reads it when no token is given.
ADMIN_TOKEN_FILE = "admin-token"
