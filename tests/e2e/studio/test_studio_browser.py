"""A person's path through the Studio in a real Chromium, on the real platform.

Sign in, design a workflow from an empty canvas by clicking and typing only, publish and
activate it, run it, answer a human step in /tasks, and watch the runs' nodes turn COMPLETED.
Each page is photographed into docs/studio/ on the way.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from drift_cli.bundles import dsl_store_client
from drift_cli.platform import Platform

pytestmark = pytest.mark.asyncio(loop_scope="session")

TIMEOUT_MS = 20_000


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Any, platform: Platform) -> AsyncIterator[Any]:
    """A fresh browser tab (empty session storage) on the Studio, signed in as tenant acme."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, base_url=platform.studio_url)
    context.set_default_timeout(TIMEOUT_MS)
    tab = await context.new_page()
    problems: list[str] = []
    tab.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    await tab.goto("/")
    await tab.get_by_label("API key").fill("key-acme")
    await tab.get_by_role("button", name="Sign in").click()
    await tab.get_by_role("heading", name="Workflow definitions").wait_for()
    try:
        yield tab
    finally:
        await context.close()
    # A CSP violation or a script error is a broken page even when the test's path got through.
    assert not [p for p in problems if "Content Security Policy" in p or "Uncaught" in p], problems


async def _add_node(page: Any, name: str, kind: str) -> None:
    await page.get_by_label("Instance name").fill(name)
    await page.get_by_role("button", name=f"Add {kind}").click()
    await page.get_by_role("heading", name=re.compile(rf"^{re.escape(name)}\b")).wait_for()


async def _type_code(page: Any, label: str, text: str) -> None:
    editor = page.get_by_label(label, exact=True)
    await editor.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(text)


async def test_sign_in_keeps_the_key_in_session_storage_only(browser: Any, platform: Platform) -> None:
    """A wrong key is refused at sign-in; a right one is kept in sessionStorage, not localStorage or cookies."""
    context = await browser.new_context(base_url=platform.studio_url)
    try:
        tab = await context.new_page()
        await tab.goto("/")
        await tab.get_by_label("API key").fill("not-a-key")
        await tab.get_by_role("button", name="Sign in").click()
        await tab.get_by_text("That API key is not valid.").wait_for()
        await tab.get_by_label("API key").fill("key-acme")
        await tab.get_by_role("button", name="Sign in").click()
        await tab.get_by_text("tenant acme").wait_for()
        assert await tab.evaluate("sessionStorage.getItem('drift.apiKey')") == "key-acme"
        assert await tab.evaluate("localStorage.length") == 0
        assert await context.cookies() == []
    finally:
        await context.close()


async def test_design_publish_and_run_a_workflow_without_typing_json(
    page: Any, platform: Platform, screenshots: Path
) -> None:
    """From an empty canvas: a SCRIPT then a SUCCESS, published (so ACTIVE), run; its nodes show COMPLETED."""
    workflow = f"studio_sum_{uuid.uuid4().hex[:6]}"
    # The definitions list (GET /workflowDefinition): the examples, with their active versions.
    example = page.locator("table.list tr", has=page.get_by_role("link", name="hello_approval", exact=True))
    await example.wait_for()
    assert "1" in await example.locator("td").nth(1).inner_text()
    await page.screenshot(path=str(screenshots / "definitions.png"))
    await page.get_by_label("Workflow id").fill(workflow)
    await page.get_by_role("button", name="Open or create").click()
    await page.get_by_text("Empty canvas").wait_for()

    await _add_node(page, "compute", "SCRIPT")
    # The inspector's fields come from the node type's JSON Schema; a bad expression is flagged as typed.
    output = page.locator("[data-field='output'] input")
    await output.fill("{% {'sum': 1 + } %}")
    await page.locator("[data-field='output']").get_by_text(re.compile("expression:")).wait_for()
    await output.fill("{% {'sum': 1 + 2} %}")
    await _add_node(page, "finish", "SUCCESS")
    await page.locator("[data-field='disposition'] input").fill("{% 'sum is ' & $string($global.compute.sum) %}")
    await page.get_by_label("end", exact=True).check()

    await page.locator(".step[data-instance='compute']").click()
    await page.get_by_label("nextNode").select_option("finish")
    # The edge is drawn; the raw JSON view shows the same definition.
    await page.locator(".react-flow__edge[aria-label='Edge from compute to finish']").wait_for(state="attached")
    await page.get_by_role("tab", name="JSON").click()
    json_text = await page.get_by_label("definition JSON", exact=True).inner_text()
    assert '"nextNode": "finish"' in json_text and '"startNode": "compute"' in json_text

    await page.get_by_role("button", name="Publish").click()
    await page.get_by_text("Published version 1.").wait_for()
    await page.get_by_role("tab", name="Versions").click()
    # The first published version becomes ACTIVE by itself.
    await page.locator(".versions tr", has_text="ACTIVE").get_by_text("1", exact=True).wait_for()
    # Side-by-side diff of version 1 and the SNAPSHOT: identical content, so no changed row.
    await page.get_by_label("left version").select_option("1")
    await page.get_by_label("right version").select_option("SNAPSHOT")
    await page.get_by_role("button", name="Diff").click()
    diff = page.get_by_label("version diff")
    await diff.get_by_text('"startNode": "compute"').first.wait_for()
    assert await diff.locator("tr.diff-changed, tr.diff-added, tr.diff-removed").count() == 0
    await page.get_by_role("tab", name="Inspector").click()
    await page.screenshot(path=str(screenshots / "designer.png"))

    # A test run of the definition on the real engine: its trace is painted on the graph.
    await page.get_by_role("tab", name="Test").click()
    await page.get_by_role("button", name="Run test").click()
    await page.get_by_label("test trace").get_by_text("compute").wait_for()
    await page.locator(".test-run .status", has_text="COMPLETED").wait_for()
    await page.locator(".step[data-instance='finish']", has_text="COMPLETED").wait_for()

    await page.get_by_role("tab", name="Run").click()
    await page.get_by_role("button", name="Start run").click()
    await page.wait_for_url(re.compile(r"/runs/"))
    await page.locator(".toolbar .status", has_text="COMPLETED").wait_for()
    for name in ("compute", "finish"):
        await page.locator(f".step[data-instance='{name}']", has_text="COMPLETED").wait_for()
    await page.get_by_text('disposition: "sum is 3"').wait_for()
    await page.screenshot(path=str(screenshots / "run.png"))


async def test_a_server_validation_error_lands_on_its_node_and_field(page: Any) -> None:
    """A definition the dsl-store refuses shows each error on the node and field its pointer names."""
    workflow = f"studio_bad_{uuid.uuid4().hex[:6]}"
    await page.goto(f"/workflows/{workflow}")
    await _add_node(page, "broken", "SCRIPT")
    await page.locator("[data-field='output'] input").fill("{% 1 + %}")
    await page.get_by_role("button", name="Save").click()
    errors = page.get_by_label("validation errors")
    await errors.get_by_text("/states/broken").first.wait_for()
    await page.locator(".step.has-errors[data-instance='broken']").wait_for()
    await page.locator("[data-field='output'].field-error").wait_for()


async def test_answer_a_human_step_in_tasks_and_watch_the_run_complete(page: Any, screenshots: Path) -> None:
    """hello_approval waits on a person; its task is a form with the options as choices; Approve completes the run."""
    run_id = f"studio-hello-{uuid.uuid4().hex[:6]}"
    await page.get_by_role("link", name="hello_approval", exact=True).click()
    for name in ("greet", "ask_approval", "route_decision", "approved", "rejected"):
        await page.locator(f".step[data-instance='{name}']").wait_for()
    # Branch and failure edges carry their labels.
    for label in ("otherwise", "on failure"):
        await page.locator(".react-flow__edge-text", has_text=label).first.wait_for(state="attached")
    await page.screenshot(path=str(screenshots / "designer-example.png"))
    await page.get_by_role("tab", name="Run").click()
    await page.get_by_label("Run id (optional)").fill(run_id)
    await _type_code(page, "params", '{"name": "Ada"}')
    await page.get_by_role("button", name="Start run").click()
    await page.wait_for_url(re.compile(rf"/runs/{run_id}"))
    await page.locator(".toolbar .status", has_text="WAITING").wait_for()
    await page.locator(".step[data-instance='ask_approval']", has_text="WAITING").wait_for()

    await page.get_by_role("link", name="Tasks", exact=True).click()
    task = page.get_by_label(f"task of {run_id}")
    await task.get_by_text("Hello, Ada!").wait_for()
    await page.screenshot(path=str(screenshots / "tasks.png"))
    await task.get_by_label("Approve this greeting?").select_option(label="Approve")
    await task.get_by_role("button", name="Submit").click()
    await page.get_by_text(f"{run_id}: COMPLETED").wait_for()

    await page.goto(f"/runs/{run_id}")
    for name in ("greet", "ask_approval", "route_decision", "approved"):
        await page.locator(f".step[data-instance='{name}']", has_text="COMPLETED").wait_for()
    await page.get_by_label("timeline").get_by_text("route_decision").wait_for()


async def test_the_run_page_follows_a_run_live(page: Any, platform: Platform) -> None:
    """With a run's page open, a resume made elsewhere turns its nodes COMPLETED without a reload."""
    run_id = f"studio-live-page-{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": "Bearer key-acme"}
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=60, headers=headers) as gateway:
        started = await gateway.post(
            "/v3/workflow/start",
            json={"workflow": {"id": "hello_approval"}, "workflowId": run_id, "params": {"name": "Cy"}},
        )
        assert started.json()["workflowStatus"] == "WAITING"
        await page.goto(f"/runs/{run_id}?definition=hello_approval")
        await page.locator(".step[data-instance='ask_approval']", has_text="WAITING").wait_for()
        await page.locator(".live.on").wait_for()
        resumed = await gateway.put(
            f"/v3/workflow/resume/{run_id}", json={"viewResponse": {"selectedOptions": {"decision": "REJECT"}}}
        )
        assert resumed.json()["workflowStatus"] == "FAILED"
    # No navigation: the live feed brings the change.
    await page.locator(".step[data-instance='rejected']", has_text="COMPLETED").wait_for()
    await page.locator(".toolbar .status", has_text="FAILED").wait_for()
    await page.get_by_text("error: rejected by someone").wait_for()


async def test_terminate_then_retry_a_run_from_its_page(page: Any, platform: Platform) -> None:
    """A run terminated from its page shows TERMINATED; Retry runs it again from that node, WAITING once more."""
    run_id = f"studio-retry-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=60) as gateway:
        started = await gateway.post(
            "/v3/workflow/start",
            headers={"Authorization": "Bearer key-acme"},
            json={"workflow": {"id": "hello_approval"}, "workflowId": run_id, "params": {"name": "Bo"}},
        )
        assert started.json()["workflowStatus"] == "WAITING"
    await page.goto(f"/runs/{run_id}?definition=hello_approval")
    await page.locator(".toolbar .status", has_text="WAITING").wait_for()
    await page.get_by_role("button", name="Terminate").click()
    await page.locator(".toolbar .status", has_text="TERMINATED").wait_for()
    await page.get_by_role("button", name="Retry").click()
    await page.locator(".toolbar .status", has_text="WAITING").wait_for()
    await page.locator(".step[data-instance='greet']", has_text="COMPLETED").wait_for()


async def test_runs_and_schedules_pages_render(page: Any, screenshots: Path) -> None:
    """The runs list (with its status filters) and the schedules page open for a signed-in person."""
    await page.get_by_role("link", name="Runs", exact=True).click()
    await page.get_by_role("heading", name="Runs").wait_for()
    for status in ("RUNNING", "WAITING", "COMPLETED", "FAILED", "TERMINATED"):
        await page.get_by_label("filters").get_by_text(status, exact=True).wait_for()
    # The list (GET /v3/workflows) shows the runs the other tests started, newest first.
    await page.locator("table.list tbody tr").first.wait_for()
    await page.screenshot(path=str(screenshots / "runs.png"))
    await page.get_by_role("link", name="Schedules", exact=True).click()
    await page.get_by_role("heading", name="Schedules").wait_for()
    await page.screenshot(path=str(screenshots / "schedules.png"))


async def test_swagger_pages_render_their_operations_offline(browser: Any, platform: Platform) -> None:
    """The gateway's and dsl-store's Swagger pages draw their operations with no request leaving the host."""
    context = await browser.new_context()
    try:
        tab = await context.new_page()
        requested: list[str] = []
        tab.on("request", lambda request: requested.append(request.url))
        for base in (platform.gateway_url, platform.dsl_store_url):
            await tab.goto(f"{base}/schema/swagger")
            await tab.locator(".opblock").first.wait_for()
        assert requested and all(url.startswith("http://127.0.0.1:") for url in requested), requested
    finally:
        await context.close()


def _doubling_map(definition_id: str) -> dict[str, Any]:
    """A MAP over `params.items`: each item doubled by one SCRIPT (a negative item fails), one failure tolerated."""
    return {
        "id": definition_id,
        "startNode": "double_all",
        "states": {
            "double_all": {
                "nodeDefinition": {
                    "id": "double_all",
                    "type": "MAP",
                    "items": "{% $global.params.items %}",
                    "itemNode": "double",
                    "toleratedFailures": 1,
                },
                "nextNode": "done",
            },
            "double": {
                "nodeDefinition": {
                    "id": "double",
                    "type": "SCRIPT",
                    "output": "{% $item < 0 ? $error('negative item') : $item * 2 %}",
                },
                "end": True,
            },
            "done": {"nodeDefinition": {"id": "done", "type": "SUCCESS"}, "end": True},
        },
    }


async def test_the_run_page_shows_map_items(page: Any, platform: Platform) -> None:
    """A MAP run's page, opened by its id alone, draws its graph (the gateway names the definition),
    counts the MAP's items on its node, aggregates the item branch state across items, lists each
    item's visit under its item in the timeline, and shows a selected item's output or error."""
    definition_id = f"studio_map_{uuid.uuid4().hex[:6]}"
    run_id = f"studio-map-{uuid.uuid4().hex[:6]}"
    async with dsl_store_client(platform.dsl_store_url, "key-acme") as dsl:
        for path, body in (
            (("/workflowDefinition"), _doubling_map(definition_id)),
            (f"/workflowDefinition/{definition_id}/publishWorkflow", None),
        ):
            answer = await dsl.post(path, json=body)
            assert answer.is_success, answer.text
    headers = {"Authorization": "Bearer key-acme"}
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=60, headers=headers) as gateway:
        started = await gateway.post(
            "/v3/workflow/start",
            json={"workflow": {"id": definition_id}, "workflowId": run_id, "params": {"items": [1, 2, -3]}},
        )
        assert started.json()["workflowStatus"] == "COMPLETED", started.text
        detail = (await gateway.get(f"/v3/workflow/{run_id}")).json()
    assert detail["definitionId"] == definition_id
    assert detail["definitionVersion"]
    await page.goto(f"/runs/{run_id}")
    await page.locator(".step[data-instance='double_all']", has_text="2/3 completed, 1 failed").wait_for()
    await page.locator(".step[data-instance='double_all']", has_text="COMPLETED").wait_for()
    await page.locator(".step[data-instance='double']", has_text="items: 2 completed, 1 failed").wait_for()
    await page.locator(".step[data-instance='done']", has_text="COMPLETED").wait_for()
    timeline = page.get_by_label("timeline")
    for index, status in ((0, "COMPLETED"), (1, "COMPLETED"), (2, "FAILED")):
        await timeline.locator(f"tr.timeline-item[data-item='double[{index}]']", has_text=status).wait_for()
    await timeline.locator("tr.timeline-item[data-item='double[2]']").click()
    side = page.locator("section.side")
    await side.get_by_role("heading", name="double[2]").wait_for()
    await side.get_by_text("negative item").first.wait_for()
    await timeline.locator("tr.timeline-item[data-item='double[1]']").click()
    await side.get_by_role("heading", name="double[1]").wait_for()
    await side.locator(".cm-content", has_text="4").wait_for()
