"""Event ids and shared header names (drift_schema.ids, drift_schema.headers): a built id parses back."""

from __future__ import annotations

import uuid

import pytest

from drift_schema import headers, ids

RUN_CHAIN = str(uuid.uuid4())


def test_node_and_status_ids_parse_back() -> None:
    """A node or status event id built for a run chain parses back to its kind, run chain and number."""
    for build, kind in ((ids.node_event_id, ids.NODE_EVENT), (ids.status_event_id, ids.STATUS_EVENT)):
        for number in (1, 7, 10_000):
            parsed = ids.parse_event_id(build(RUN_CHAIN, number))
            assert parsed == ids.EventId(kind=kind, run_chain=RUN_CHAIN, number=number)
            assert ids.run_chain_of(build(RUN_CHAIN, number)) == RUN_CHAIN


def test_terminated_id_parses_back() -> None:
    """The dispatcher's TERMINATED event id names the run chain and no number."""
    built = ids.terminated_event_id(RUN_CHAIN)
    assert ids.parse_event_id(built) == ids.EventId(kind=ids.TERMINATED_EVENT, run_chain=RUN_CHAIN)
    assert ids.run_chain_of(built) == RUN_CHAIN


@pytest.mark.parametrize("command_id", ["c1", "order:42:retry", ""])
def test_rejected_id_keeps_the_whole_command_id(command_id: str) -> None:
    """A REJECTED event id gives back its command id whole, colons included, and no run chain."""
    parsed = ids.parse_event_id(ids.rejected_event_id(command_id))
    assert parsed == ids.EventId(kind=ids.REJECTED_EVENT, run_chain="", command_id=command_id)


def test_visit_number_only_from_node_events() -> None:
    """The visit number comes from a node event id alone; status, terminated and foreign ids carry none."""
    assert ids.visit_number_of(ids.node_event_id(RUN_CHAIN, 12)) == 12
    assert ids.visit_number_of(ids.status_event_id(RUN_CHAIN, 12)) is None
    assert ids.visit_number_of(ids.terminated_event_id(RUN_CHAIN)) is None
    assert ids.visit_number_of("") is None


@pytest.mark.parametrize("foreign", ["", "plain", f"{RUN_CHAIN}:x9", f"{RUN_CHAIN}:n", f"{RUN_CHAIN}:n1x", ":s3"])
def test_foreign_ids_parse_to_no_kind(foreign: str) -> None:
    """An id no Drift process built has kind "" and, as before, the part before its last colon as run chain."""
    parsed = ids.parse_event_id(foreign)
    assert parsed.kind == ""
    assert parsed.number is None
    assert ids.run_chain_of(foreign) == foreign.rsplit(":", 1)[0]


def test_header_names_are_distinct() -> None:
    """No two shared header names are the same header (HTTP compares names without case)."""
    names = [value for name, value in vars(headers).items() if name.isupper() and name != "PROBLEM_JSON"]
    assert len({name.lower() for name in names}) == len(names)
    assert headers.TENANT == "X-Drift-Tenant"
