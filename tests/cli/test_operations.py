"""`drift runs` output and `drift schedule` argument checks (no platform needed)."""

from __future__ import annotations

import pytest

from drift_cli.main import build_parser
from drift_cli.operations import runs_table
from drift_schema.search import RunPage, RunSummary
from drift_schema.statuses import WorkflowStatus


def test_runs_table_aligns_columns_and_offers_the_next_page() -> None:
    """The table has one aligned row per run, '-' for what is unknown, and the flag for the next page."""
    page = RunPage(
        runs=[
            RunSummary(
                workflow_id="order-1",
                workflow_status=WorkflowStatus.WAITING,
                definition_id="orders",
                definition_version="3",
                current_node="approve",
                started_at="2026-12-07T10:00:00.000Z",
            ),
            RunSummary(workflow_id="a-much-longer-run-id", workflow_status=WorkflowStatus.FAILED),
        ],
        next_page_token="TOKEN",
    )
    lines = runs_table(page).splitlines()
    assert lines[0].startswith("WORKFLOW ID")
    assert lines[1].split() == ["order-1", "WAITING", "orders@3", "approve", "2026-12-07T10:00:00.000Z", "-"]
    assert lines[2].split() == ["a-much-longer-run-id", "FAILED", "-@-", "-", "-", "-"]
    assert lines[1].index("WAITING") == lines[2].index("FAILED") == lines[0].index("STATUS")
    assert lines[-1] == "more: --page-token TOKEN"
    assert "more:" not in runs_table(RunPage(runs=[], next_page_token=None))


def test_schedule_create_needs_exactly_one_of_cron_and_every(capsys: pytest.CaptureFixture[str]) -> None:
    """`drift schedule create` refuses neither or both of --cron and --every before calling anything."""
    parser = build_parser()
    args = parser.parse_args(
        ["schedule", "create", "nightly", "orders", "--cron", "0 3 * * *", "--overlap", "BUFFER_ONE"]
    )
    assert (args.cron, args.every, args.overlap, args.version) == ("0 3 * * *", None, "BUFFER_ONE", "ACTIVE")
    for argv in (
        ["schedule", "create", "s", "d"],
        ["schedule", "create", "s", "d", "--cron", "* * * * *", "--every", "5"],
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    capsys.readouterr()
