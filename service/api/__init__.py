"""The REST API: `create_app()` in `service.api.main`."""
