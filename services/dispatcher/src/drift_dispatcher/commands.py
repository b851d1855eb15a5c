"""Turning commands into Temporal calls, idempotently; what cannot run becomes one REJECTED event."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NoReturn

import structlog
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from drift_dispatcher.definitions import DefinitionClient
from drift_dispatcher.faults import TRANSIENT_RPC, Rejected, temporal_unavailable
from drift_dispatcher.partitions import sniffed_workflow_id
from drift_dispatcher.retry import RetryRefused, retry_run
from drift_dispatcher.tenancy import Claim, RunLimiter, TenantDuplicates
from drift_dispatcher.traffic import resolve_version
from drift_runtime import metrics
from drift_runtime.locks import RunLocks
from drift_runtime.messaging import (
    PoisonMessage,
    TransientFault,
    delivery_count,
    growing_delay_s,
    message_id,
    publish,
)
from drift_runtime.search_attributes import run_attributes
from drift_runtime.telemetry import inject_headers
from drift_schema import codec, ids, subjects
from drift_schema.commands import EventCommand, ResumeCommand, RetryCommand, StartCommand, TerminateCommand
from drift_schema.events import WorkflowEvent
from drift_schema.nodes import resolve_children
from drift_schema.run import (
    EVENT_UPDATE,
    RESUME_UPDATE,
    TERMINATED_SEQ,
    WORKFLOW_NAME,
    EventInput,
    ResumeInput,
    RunInput,
    RunLimits,
    temporal_id,
)
from drift_schema.statuses import RejectionCode, WorkflowStatus

log = structlog.get_logger("drift.dispatcher")


def _transient(error: RPCError) -> bool:
    return error.status in TRANSIENT_RPC


@contextlib.contextmanager
def _temporal_faults_are_transient() -> Iterator[None]:
    try:
        yield
    except RPCError as error:
        if _transient(error):
            raise temporal_unavailable(error) from None
        raise
    except RPCTimeoutOrCancelledError as error:
        # An update that Temporal did not answer in time may or may not have landed: tried again (its id dedups).
        raise TransientFault(f"temporal did not answer in time: {error}") from None


class CommandDispatcher:
    """Applies `drift.<tenant>.cmd.*` messages to Temporal."""

    def __init__(
        self,
        client: Client,
        js: JetStreamContext,
        definitions: DefinitionClient,
        task_queue: str,
        *,
        limits: RunLimits | None = None,
        duplicates: TenantDuplicates | None = None,
        limiter: RunLimiter | None = None,
    ) -> None:
        self.client = client
        self.js = js
        self.definitions = definitions
        self.task_queue = task_queue
        self.locks = RunLocks()
        self.limits = limits or RunLimits()
        self.duplicates = duplicates
        self.limiter = limiter

    async def handle(self, msg: Msg, replayed: bool = False) -> None:
        """Apply one command message; `replayed`: it may have been applied before (a redelivery).

        Raises TransientFault to be retried later and PoisonMessage when no one can be told about it.
        """
        try:
            tenant, kind = subjects.parse_command(msg.subject)
        except ValueError:
            _poison("unknown", "not a command subject")
        msg_id = message_id(msg)
        claim = await self._claim(tenant, msg_id, msg) if msg_id is not None else None
        if claim is Claim.DUPLICATE:
            metrics.commands.labels(kind, "duplicate").inc()
            log.info("dispatch.duplicate_command", tenant=tenant, kind=kind)
            return
        command_id = msg_id or f"seq-{msg.metadata.sequence.stream}"
        decoder = codec.COMMAND_DECODERS.get(kind)
        header_id = (msg.headers or {}).get(subjects.WORKFLOW_ID_HEADER)
        if decoder is None:
            await self._reject_or_poison(
                tenant, kind, header_id, command_id, RejectionCode.INVALID, f"unknown command {kind}"
            )
            return
        try:
            command = codec.decode_with(decoder, msg.data)
        except codec.DecodeError as error:
            detail = f"invalid {kind} command at '{error.pointer}': {error.message}"
            known = header_id or sniffed_workflow_id(msg.data)
            await self._reject_or_poison(tenant, kind, known, command_id, RejectionCode.INVALID, detail)
            return
        except Exception as error:
            # Whatever the decoder raises on hostile bytes (invalid UTF-8, 1e999), the command gets its answer.
            detail = f"invalid {kind} command: the body cannot be decoded ({type(error).__name__})"
            known = header_id or sniffed_workflow_id(msg.data)
            await self._reject_or_poison(tenant, kind, known, command_id, RejectionCode.INVALID, detail)
            return
        if not ids.is_workflow_id(command.workflow_id):
            # The pattern check of the decoder lets a final newline through; every id is checked exactly.
            _poison(kind, "invalid workflowId")
        structlog.contextvars.bind_contextvars(tenant=tenant, workflow_id=command.workflow_id, command_id=command_id)
        redelivered = replayed or delivery_count(msg) > 1
        if redelivered:
            metrics.commands.labels(kind, "redelivered").inc()
        # Certainly new only when its id was claimed just now by its first delivery; anything else may
        # have been applied before, and is looked up first where applying it again would not be a no-op.
        maybe_applied = redelivered or claim is not Claim.FRESH
        try:
            async with self.locks.hold(f"{tenant}/{command.workflow_id}"):
                try:
                    await self._apply(tenant, kind, command, command_id, redelivered, maybe_applied)
                except RPCError as error:
                    # Not transient (those became TransientFault): Temporal refuses this command for good.
                    raise Rejected(RejectionCode.INVALID, f"temporal refused the command: {error.message}") from None
            metrics.commands.labels(kind, "accepted").inc()
            metrics.dispatch_seconds.labels(kind).observe(_since(msg))
        except TransientFault as fault:
            # Waits in the stream for as long as the outage lasts, retried ever less often.
            raise TransientFault(str(fault), delay_s=growing_delay_s(msg)) from None
        except Rejected as rejection:
            metrics.commands.labels(kind, "rejected").inc()
            callback_url = getattr(command, "callback_url", None)
            await self._reject(tenant, command.workflow_id, command_id, rejection.code, rejection.message, callback_url)
        finally:
            structlog.contextvars.unbind_contextvars("workflow_id", "command_id")

    async def _claim(self, tenant: str, msg_id: str, msg: Msg) -> Claim | None:
        """Deduplication per tenant (the stream's own duplicate window is shared by every tenant); None without it."""
        if self.duplicates is None:
            return None
        return await self.duplicates.claim(tenant, msg_id, msg.metadata.sequence.stream)

    async def _apply(
        self, tenant: str, kind: str, command: Any, command_id: str, redelivered: bool, maybe_applied: bool
    ) -> None:
        if isinstance(command, StartCommand):
            await self.start(tenant, command, command_id, maybe_applied=maybe_applied)
        elif isinstance(command, ResumeCommand):
            update = ResumeInput(
                selected_options=command.view_response.selected_options,
                command_id=command_id,
                callback_url=command.callback_url,
                trace_context=inject_headers(),
            )
            await self._update(tenant, command.workflow_id, RESUME_UPDATE, update, command_id)
        elif isinstance(command, EventCommand):
            if not ids.is_event_name(command.event):
                raise Rejected(RejectionCode.INVALID, "event is not a valid event name")
            event = EventInput(
                event=command.event, payload=command.payload, command_id=command_id, trace_context=inject_headers()
            )
            await self._update(tenant, command.workflow_id, EVENT_UPDATE, event, command_id)
        elif isinstance(command, TerminateCommand):
            await self.terminate(tenant, command, command_id, redelivered)
        elif isinstance(command, RetryCommand):
            try:
                await retry_run(self, tenant, command, command_id)
            except RetryRefused as refused:
                raise Rejected(refused.code, refused.message) from None
        else:
            raise Rejected(RejectionCode.INVALID, f"command {kind} is not supported")

    async def start(self, tenant: str, command: StartCommand, command_id: str, *, maybe_applied: bool = True) -> None:
        """Start the command's run; `maybe_applied`: this command may have started it already (see `handle`).

        A command that may have been applied before (a redelivery, a partition read again by its next
        owner, an id claimed by an earlier delivery, a retried schedule firing) may follow a start that
        landed. If that run has closed since, ALLOW_DUPLICATE below would start this same command a
        second time: look first. A command certainly new (its first delivery, its id claimed just now)
        skips that look-up, a Temporal round trip before every start; a run it may meet is another
        command's: FAIL below answers CONFLICT while it runs, and a closed one's id is reused.
        """
        if maybe_applied and await self._started_by(temporal_id(tenant, command.workflow_id), command_id):
            log.info("dispatch.duplicate_start")
            return
        if not ids.is_definition_id(command.workflow.id):
            raise Rejected(RejectionCode.INVALID, "workflow.id is not a valid definition id")
        # ACTIVE follows the workflow's traffic split: the workflowId's hash picks the version it runs.
        version = await resolve_version(
            self.definitions, tenant, command.workflow.id, command.workflow.version, command.workflow_id
        )
        definition = await self.definitions.pinned(tenant, command.workflow.id, version)
        if definition is None:
            raise Rejected(
                RejectionCode.NOT_FOUND,
                f"workflow definition '{command.workflow.id}' version '{command.workflow.version}' not found",
            )
        # CHILD nodes' definitions are pinned now too, recursively (cycles and missing ones are skipped).
        children = await resolve_children(
            definition, lambda child, version: self.definitions.pinned(tenant, child, version)
        )
        thread_context = codec.to_builtins(command.thread_context) if command.thread_context else {}
        context = {
            "params": command.params,
            "issueDetail": command.issue_detail,
            "customer": command.customer,
            "orderDetails": command.order_details,
            "threadContext": thread_context,
        }
        size = len(codec.encode(context))
        if size > self.limits.max_context_bytes:
            raise Rejected(
                RejectionCode.INVALID,
                f"the start's context is {size} bytes, over a run's limit of {self.limits.max_context_bytes} bytes",
            )
        run = RunInput(
            tenant=tenant,
            workflow_id=command.workflow_id,
            definition=definition,
            context=context,
            command_id=command_id,
            callback_url=command.callback_url,
            children=children,
            enums=await self.definitions.enums(tenant),
            limits=self.limits,
        )
        workflow_id = temporal_id(tenant, command.workflow_id)
        if self.limiter is not None and not await self.limiter.allows(tenant):
            raise Rejected(
                RejectionCode.LIMITED,
                f"the tenant has {self.limiter.max_running} runs running, its limit: retry when some have finished",
            )
        try:
            with _temporal_faults_are_transient():
                await self.start_execution(tenant, workflow_id, run, command_id)
        except WorkflowAlreadyStartedError:
            if await self._started_by(workflow_id, command_id):
                log.info("dispatch.duplicate_start")
                return
            raise Rejected(RejectionCode.CONFLICT, f"workflow '{command.workflow_id}' is already running") from None
        log.info("dispatch.started", definition_id=definition.id, version=definition.version)

    async def start_execution(
        self, tenant: str, workflow_id: str, run: RunInput, command_id: str, memo: dict[str, str] | None = None
    ) -> None:
        """Start `run` as a new execution under `workflow_id`: a closed run's id is reused, a running one's is not.

        Raises WorkflowAlreadyStartedError while the id runs; the memo names the command that started it
        (how a redelivery finds its start done) and `memo` adds to it.
        """
        definition = run.definition
        await self.client.start_workflow(
            WORKFLOW_NAME,
            run,
            id=workflow_id,
            task_queue=self.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            memo={"commandId": command_id, "tenant": tenant, "definitionId": definition.id, **(memo or {})},
            # Listed (GET /v3/workflows) from the moment it starts; the run upserts each status change.
            search_attributes=run_attributes(tenant, definition.id, definition.version),
        )

    async def _started_by(self, workflow_id: str, command_id: str) -> bool:
        """Whether the latest run of this id (running or closed) was started by this very command."""
        try:
            with _temporal_faults_are_transient():
                description = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        memo = await description.memo()
        return bool(memo.get("commandId") == command_id)

    async def _update(self, tenant: str, workflow_id: str, name: str, argument: Any, command_id: str) -> None:
        """Apply a resume or event update; the update id makes a redelivered command a no-op on the run."""
        handle = self.client.get_workflow_handle(temporal_id(tenant, workflow_id))
        try:
            with _temporal_faults_are_transient():
                await handle.execute_update(name, argument, id=command_id)
        except WorkflowUpdateFailedError as failure:
            cause = failure.cause
            if isinstance(cause, ApplicationError) and cause.type and cause.type in RejectionCode.__members__:
                raise Rejected(RejectionCode(cause.type), cause.message) from None
            raise Rejected(RejectionCode.INVALID, str(cause or failure)) from None
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                if await self._exists(handle.id):
                    raise Rejected(RejectionCode.CONFLICT, "run is not WAITING") from None
                raise Rejected(RejectionCode.NOT_FOUND, f"workflow '{workflow_id}' not found") from None
            raise
        log.info("dispatch.updated", update=name)

    async def terminate(self, tenant: str, command: TerminateCommand, command_id: str, redelivered: bool) -> None:
        """Terminate a running run and announce `TERMINATED` on its behalf (a terminated run cannot)."""
        handle: WorkflowHandle[Any, Any] = self.client.get_workflow_handle(temporal_id(tenant, command.workflow_id))
        try:
            with _temporal_faults_are_transient():
                description = await handle.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise Rejected(RejectionCode.NOT_FOUND, f"workflow '{command.workflow_id}' not found") from None
            raise
        reason = command.reason or "terminated on request"
        if description.status == WorkflowExecutionStatus.RUNNING:
            with _temporal_faults_are_transient():
                await handle.terminate(reason=reason)
        elif not (redelivered and description.status == WorkflowExecutionStatus.TERMINATED):
            # A redelivery after terminating but before announcing must still announce.
            status = description.status.name if description.status else "unknown"
            raise Rejected(RejectionCode.CONFLICT, f"run is {status}, not running")
        first_run = description.raw_description.workflow_execution_info.first_run_id or description.run_id
        event = WorkflowEvent(
            workflow_id=command.workflow_id,
            workflow_status=WorkflowStatus.TERMINATED,
            error_message=reason,
            event_id=ids.terminated_event_id(first_run),
            tenant=tenant,
            seq=TERMINATED_SEQ,
            command_id=command_id,
        )
        await publish(self.js, subjects.workflow_events(tenant, command.workflow_id), event, event.event_id)
        log.info("dispatch.terminated")

    async def _exists(self, workflow_id: str) -> bool:
        try:
            with _temporal_faults_are_transient():
                await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def _reject_or_poison(
        self, tenant: str, kind: str, workflow_id: str | None, command_id: str, code: RejectionCode, message: str
    ) -> None:
        if workflow_id is None or not ids.is_workflow_id(workflow_id):
            _poison(kind, message)
        metrics.commands.labels(kind, "rejected").inc()
        await self._reject(tenant, workflow_id, command_id, code, message)

    async def _reject(
        self,
        tenant: str,
        workflow_id: str,
        command_id: str,
        code: RejectionCode,
        message: str,
        callback_url: str | None = None,
    ) -> None:
        event = WorkflowEvent(
            workflow_id=workflow_id,
            workflow_status=WorkflowStatus.REJECTED,
            error_message=message,
            event_id=ids.rejected_event_id(command_id),
            tenant=tenant,
            seq=0,
            command_id=command_id,
            error_code=code,
            callback_url=callback_url,
        )
        try:
            # The event stream's duplicate window is shared by every tenant: the id is scoped by tenant.
            msg_id = f"{tenant}:{event.event_id}"
            await publish(self.js, subjects.workflow_events(tenant, workflow_id), event, msg_id)
        except (NatsError, TimeoutError) as error:
            # Retried: the event id dedups, so the run still gets exactly one REJECTED event.
            raise TransientFault(f"could not publish the rejection: {error}") from None
        log.warning("dispatch.command_rejected", code=code.value, reason=message)


def _since(msg: Msg) -> float:
    """Seconds since JetStream stored the message."""
    try:
        stored = msg.metadata.timestamp
    except Exception:
        return 0.0
    return max(0.0, (datetime.now(UTC) - stored).total_seconds())


def _poison(kind: str, reason: str) -> NoReturn:
    """A command no one can be told about (no valid run id): logged, counted, never redelivered."""
    metrics.commands.labels(kind, "poison").inc()
    raise PoisonMessage(reason)
