"""The service's pydantic schemas and the edge client's test server against the shapes of
edgeprune.contracts: the same field names, the same nullable fields, the same Literal values.

A field added to a schema but not to the contract (or the other way round), a nullable field
that became required, or a variant name spelt differently fails here.
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest
from pydantic import BaseModel

from edgeprune.contracts import edge, jobs, limits
from service.api.schemas import deployments, devices
from service.api.schemas import jobs as job_schemas

PAIRS: list[tuple[type[BaseModel], Any]] = [
    (deployments.Manifest, edge.Manifest),
    (deployments.ManifestVariant, edge.ManifestVariant),
    (deployments.Preprocessing, edge.Preprocessing),
    (devices.Latency, edge.Latency),
    (devices.DeviceReportCreate, edge.DeviceReport),
]


def _keys(typed_dict: Any) -> set[str]:
    return set(typed_dict.__required_keys__ | typed_dict.__optional_keys__)


def _members(annotation: Any) -> list[Any]:
    """The types a field may hold, Optional/Union/Annotated unwrapped."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _members(arg)]
    if origin is not None and hasattr(annotation, "__metadata__"):  # Annotated[T, ...]
        return _members(get_args(annotation)[0])
    return [annotation]


def _nullable(annotation: Any) -> bool:
    return type(None) in _members(annotation)


def _literals(annotation: Any) -> set[Any]:
    return {
        value
        for member in _members(annotation)
        if get_origin(member) is Literal
        for value in get_args(member)
    }


@pytest.mark.parametrize(("model", "shape"), PAIRS, ids=lambda p: p.__name__)
def test_schema_fields_are_the_contracts(model: type[BaseModel], shape: Any) -> None:
    assert set(model.model_fields) == _keys(shape)


@pytest.mark.parametrize(("model", "shape"), PAIRS, ids=lambda p: p.__name__)
def test_schema_fields_take_null_and_literals_as_the_contract_says(
    model: type[BaseModel], shape: Any
) -> None:
    hints = get_type_hints(shape)
    for name, field in model.model_fields.items():
        assert _nullable(field.annotation) == _nullable(hints[name]), name
        assert _literals(field.annotation) == _literals(hints[name]), name


def test_a_job_is_listed_with_the_contracts_states_phases_and_metrics() -> None:
    fields = job_schemas.JobPublic.model_fields
    assert fields["state"].annotation is jobs.JobState
    assert _literals(fields["phase"].annotation) == set(jobs.PHASES)
    assert _literals(job_schemas.Target.model_fields["metric"].annotation) == set(limits.METRICS)


def test_the_training_phases_are_phases_in_their_order() -> None:
    assert [p for p in jobs.PHASES if p in jobs.TRAINING_PHASES] == list(jobs.TRAINING_PHASES)
    assert {s.value for s in jobs.TERMINAL_STATES} < {s.value for s in jobs.JobState}


def test_what_a_device_adds_to_a_report_is_no_checked_field() -> None:
    # The service stores BenchmarkContext keys as extras: none may shadow a checked field.
    assert not _keys(edge.BenchmarkContext) & set(devices.DeviceReportCreate.model_fields)
    assert _keys(edge.SentDeviceReport) == _keys(edge.DeviceReport) | _keys(edge.BenchmarkContext)


def test_the_edge_test_server_serves_contract_manifests() -> None:
    from tests.edge_client.edge_test_server import EdgeTestServer

    manifest = EdgeTestServer().promote("cams", b"model bytes", baseline=b"baseline bytes")
    assert set(manifest) == _keys(edge.Manifest)
    assert all(set(v) == _keys(edge.ManifestVariant) for v in manifest["variants"])
    deployments.Manifest.model_validate(manifest)  # what the real service would send
