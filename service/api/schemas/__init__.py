"""Pydantic v2 request/response schemas, one module per resource.

Families follow the FastAPI template: `XCreate` (input), `XPublic` (one), `XsPublic`
(a page: `data` and the total `count`).
"""
