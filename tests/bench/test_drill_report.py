"""The drills' pure judging and reporting: webhook duplicates, evidence disagreements, generated reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# The drills package lives at the repository root, next to tests/ (it is not installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from drift_schema.statuses import WorkflowStatus
from drills.checks import Acked, Evidence, Result, TemporalRun, count_webhooks
from drills.loopback import Delivery, WebhookReceiver
from drills.report import DOC, paths, render_doc


def _delivery(workflow_id: str, status: str, webhook_id: str) -> Delivery:
    body = json.dumps({"workflowId": workflow_id, "workflowStatus": status}).encode()
    return Delivery(webhook_id, body, True, webhook_id.rsplit(":s", 1)[-1])


def test_every_second_delivery_of_a_state_is_counted_and_a_new_id_fails() -> None:
    """Two deliveries of one (run, status) count as a webhook duplicate; same id: a re-delivery; new id: duplicated."""
    receiver = WebhookReceiver("whsec_" + "A" * 32)
    receiver.deliveries = [
        _delivery("a", "COMPLETED", "ra:s3"),
        _delivery("a", "COMPLETED", "ra:s3"),  # the same webhook again (at-least-once)
        _delivery("b", "COMPLETED", "rb:s3"),
        _delivery("b", "COMPLETED", "rb2:s3"),  # the same state under another id: a receiver cannot tell
        _delivery("c", "WAITING", "rc:s2"),
        _delivery("c", "COMPLETED", "rc:s3"),
    ]
    result = Result("x", "y")
    count_webhooks(receiver, {"a", "b", "c"}, result)
    assert result.webhook_duplicates == 2
    assert result.redelivered == 1
    assert result.duplicated == 1
    assert not result.ok and "b: COMPLETED delivered under 2 different webhook-ids" in result.problems


def test_a_run_is_judged_by_temporal_the_store_and_its_webhook() -> None:
    """COMPLETED needs Temporal COMPLETED, the store's COMPLETED and (with a callback) the COMPLETED webhook."""
    command = Acked("w", WorkflowStatus.COMPLETED, callback=True)
    agreed = Evidence(TemporalRun(1, "COMPLETED", "m"), {"workflowStatus": "COMPLETED", "seq": 3}, {"COMPLETED"})
    assert agreed.disagreements(command) == []
    running = Evidence(TemporalRun(1, "RUNNING", "m"), {"workflowStatus": "WAITING", "seq": 2}, {"WAITING"})
    assert running.disagreements(command) == [
        "Temporal says RUNNING",
        "the run-context store says WAITING",
        "no COMPLETED webhook (got ['WAITING'])",
    ]
    waiting = Acked("w", WorkflowStatus.WAITING)
    assert Evidence(TemporalRun(1, "RUNNING", "m"), {"workflowStatus": "WAITING"}, set()).disagreements(waiting) == []


def _record(ok: bool) -> dict[str, Any]:
    return {
        "mode": "smoke",
        "command": "./run drill --smoke",
        "commit": "0123abc",
        "finished": "2026-12-07 17:00 UTC",
        "total_s": 300.0,
        "machine": "Linux x86_64, 2 cores",
        "results": [
            {
                "name": "redis-crash",
                "fault": "kill -9 Redis",
                "acked": 10,
                "runs": 10,
                "lost": 0 if ok else 1,
                "duplicated": 0,
                "stuck": 0,
                "problems": [] if ok else ["d5-1: acknowledged, no run"],
                "figures": {"killed": "valkey-server pid 7"},
                "seconds": 12.0,
                "ok": ok,
            }
        ],
    }


def test_the_report_names_its_commit_and_generates_its_open_items() -> None:
    """The report names the commit and command it ran; 'Open' lists exactly the last run's failures."""
    failing = render_doc(_record(ok=False))
    assert "`./run drill --smoke` on commit `0123abc`" in failing
    assert (
        "- `redis-crash`: lost 1, duplicated 0, stuck 0, 1 failed checks; first: d5-1: acknowledged, no run" in failing
    )
    passing = render_doc(_record(ok=True))
    assert "Nothing: every drill of the last run held every invariant." in passing
    assert "- killed: valkey-server pid 7" in passing


def test_smoke_runs_write_outside_the_tracked_files() -> None:
    """A smoke run records under .drift/ (ignored by git); only a full run writes docs/reliability.md."""
    record, report = paths("smoke")
    assert ".drift" in record.parts and ".drift" in report.parts
    assert paths("full")[1] == DOC
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().split()
    assert ".drift/" in ignored
