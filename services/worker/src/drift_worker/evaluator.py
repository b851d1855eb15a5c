"""A pool of evaluator processes: node expressions evaluated out of the worker, bounded in time and memory.

A JSONata builtin (`$distinct` over 100,000 items) runs in C or in one Python
call the expression's own time check never interrupts, and a thread cannot be
stopped: evaluated on the worker's threads, such work would run on past its
bound, hold the GIL and fill the worker's memory. So every node evaluation runs
in one of a few evaluator processes instead:

- each process has an address-space limit (`RLIMIT_AS`): an expression that
  allocates past it fails its node with "expression exceeded the memory bound of
  N MiB", and the process is replaced;
- an evaluation still running at its deadline gets its process SIGKILLed (the
  work is stopped, not abandoned) and the process is replaced;
- a tenant holds at most `tenant_slots` of the pool's processes at once, and
  waiting evaluations are served round-robin across tenants, so one tenant
  saturating its share never delays another's evaluation;
- processes start on demand (or all at once on `start()`), up to the pool's size,
  and one left idle for `idle_exit_s` exits: an idle worker holds no evaluator
  (each is tens of MiB), and the first evaluation after a quiet spell pays one
  process start (about a second) before its own deadline starts.

Tasks and answers cross a pipe as length-prefixed msgpack frames (msgspec), to
persistent processes: the cost per node is one encode/decode of the task each way.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import os
import resource
import struct
import subprocess
import sys
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from drift_schema import expressions
from drift_worker.model import NodeResult, NodeTask, SegmentTask, SegmentVisit

log = structlog.get_logger("drift.worker.evaluator")

DEFAULT_PROCESSES = 4
DEFAULT_MEMORY_MIB = 512
DEFAULT_TENANT_SHARE = 0.5
DEFAULT_NODE_TIMEOUT_MS = 3_000
DEFAULT_IDLE_EXIT_S = 60.0
STARTUP_TIMEOUT_S = 60.0
EVALUATOR_NICENESS = 10
WAIT_FACTOR = 3
"""Without a deadline from the caller, how many node timeouts an evaluation may wait for a process."""
_HEADER = struct.Struct(">I")
_READY = b"R"
_SEGMENT = b"S"
"""First byte of a segment request's frame (a node request is a msgpack map, whose first byte never is)."""

NODE = "node"
"""Evaluate a node's `kind.evaluate` (every kind but HTTP's answer)."""
HTTP_PREPARE = "http.prepare"
"""Render an HTTP node's request."""
HTTP_RESPOND = "http.respond"
"""Render an HTTP node's `output` with `$response` bound."""


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """How many evaluator processes, how much memory each, and how much of the pool one tenant may hold."""

    processes: int = DEFAULT_PROCESSES
    memory_mib: int = DEFAULT_MEMORY_MIB
    """Address-space limit of each evaluator process (RLIMIT_AS), interpreter included."""
    tenant_share: float = DEFAULT_TENANT_SHARE
    """Fraction of the processes one tenant may hold at once (at least one process)."""
    node_timeout_ms: int = DEFAULT_NODE_TIMEOUT_MS
    """Longest one node's evaluation (all its expressions) may run before its process is killed."""
    idle_exit_s: float = DEFAULT_IDLE_EXIT_S
    """Seconds a process may stay idle before it exits (0: never); the next demand starts a fresh one."""

    @property
    def tenant_slots(self) -> int:
        """How many processes one tenant may hold at once."""
        return max(1, min(self.processes, int(self.processes * self.tenant_share)))


class EvalRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One evaluation, as sent to an evaluator process."""

    op: str
    task: NodeTask
    bounds: expressions.Bounds
    max_output_bytes: int
    response: Any = None


class EvalReply(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An evaluator process's answer: a result or an expression error."""

    result: NodeResult | None = None
    error: str | None = None
    position: int | None = None
    code: str | None = None
    out_of_memory: bool = False


class SegmentRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A segment of pure nodes (`drift_worker.segments`), as sent to an evaluator process."""

    task: SegmentTask
    bounds: expressions.Bounds
    max_output_bytes: int


class SegmentFrame(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One frame of a segment's answer: a completed visit, the end of the segment, or the error that ended it."""

    visit: SegmentVisit | None = None
    done: bool = False
    error: str | None = None
    out_of_memory: bool = False


@dataclass(frozen=True, slots=True)
class SegmentOutcome:
    """What a segment evaluated: its completed visits, then the failure of the next node, if one failed."""

    visits: list[SegmentVisit]
    failed: str | None = None
    """The instance that failed after `visits` (None: the segment ended without a failure)."""
    failure: Exception | None = None


class EvaluationTimeout(Exception):
    """An evaluation ran past its deadline; its process was killed."""


class EvaluatorBusy(EvaluationTimeout):
    """No process of the tenant's share became free before the deadline (nothing was evaluated)."""


class EvaluatorUnavailable(RuntimeError):
    """No evaluator process could be started (a fault of the worker's host, retried)."""


class MemoryBoundExceeded(expressions.ExpressionError):
    """An evaluation allocated past the process's memory bound; its process was replaced."""


# --------------------------------------------------------------------------- the work, in the evaluator


def bindings_for(task: NodeTask, bounds: expressions.Bounds) -> dict[str, Any]:
    """The variables of contract 3, with this instance's parameters resolved first."""
    from drift_worker.nodes.base import render_field

    shared = {
        "global": task.context,
        "workflow": {
            "id": task.workflow_id,
            "tenant": task.tenant,
            "definitionId": task.definition_id,
            "definitionVersion": task.definition_version,
        },
        "enums": task.enums,
        **(task.bindings or {}),  # $item and $index inside a MAP item
    }
    params = {
        name: render_field(f"parameters/{name}", value, shared, bounds) for name, value in task.parameters.items()
    }
    return {**shared, "params": params}


def check_output_size(instance: str, output: Any, limit: int) -> None:
    """Refuse an output too large to carry in the run's context (and in every later activity's input)."""
    size = len(msgspec.json.encode(output))
    if size > limit:
        raise expressions.ExpressionError(
            f"output: the output of '{instance}' is {size} bytes, over the limit of {limit} bytes per node output"
        )


def run_request(request: EvalRequest) -> NodeResult:
    """Do one evaluation (in the evaluator process; also callable in-process, for tests and tools)."""
    from drift_schema.nodes import node_type
    from drift_worker.nodes import NODE_KINDS
    from drift_worker.nodes.http import Http

    bounds = request.bounds
    task = request.task
    bindings = bindings_for(task, bounds)
    if request.op == NODE:
        result = NODE_KINDS[node_type(task.node)].evaluate(task, bindings, bounds)
    elif request.op == HTTP_PREPARE:
        result = Http().evaluate(task, bindings, bounds)
    elif request.op == HTTP_RESPOND:
        result = NodeResult(output=Http().respond(task, bindings, request.response, bounds))
    else:
        raise expressions.ExpressionError(f"unknown evaluation {request.op!r}")
    if request.op != HTTP_PREPARE:  # a request is bounded by the HTTP settings, not as a node output
        check_output_size(task.instance, result.output, request.max_output_bytes)
    return result


def _read_exactly(stream: Any, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def _guarded(memory_mib: int, work: Callable[..., Any], *args: Any) -> tuple[Any, EvalReply | None]:
    """Do `work(*args)` in the evaluator process: its result, or the reply that reports how it failed."""
    try:
        return work(*args), None
    except expressions.ExpressionError as error:
        return None, EvalReply(error=error.message, position=error.position, code=error.code)
    except MemoryError:
        return None, EvalReply(error=f"expression exceeded the memory bound of {memory_mib} MiB", out_of_memory=True)
    except RecursionError:
        return None, EvalReply(error="expression exceeded the recursion limit")
    except Exception as error:  # a defect, not the expression's: answer it rather than die
        return None, EvalReply(error=f"evaluation failed: {type(error).__name__}: {error}")


def child_main(memory_mib: int) -> None:
    """The evaluator process: answer requests from stdin on stdout until stdin closes."""
    # Replies own the original stdout; anything else printed goes to stderr (the worker's log).
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    # Import everything an evaluation needs before the memory limit, so the limit bounds expressions only:
    # the node kinds and the segment walk, not the activities (their NATS, HTTP and tracing clients
    # would cost every process about 8 MiB and a tenth of a second to start).
    import drift_worker.segments  # noqa: F401
    from drift_worker.nodes import NODE_KINDS  # noqa: F401
    from drift_worker.nodes.http import Http  # noqa: F401

    limit = memory_mib * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # Below the worker and the platform's other processes: a tenant's CPU-heavy expression can slow
    # evaluations, never the orchestration every run (of every tenant) goes through.
    os.nice(EVALUATOR_NICENESS)
    decoder = msgspec.msgpack.Decoder(EvalRequest)
    segments = msgspec.msgpack.Decoder(SegmentRequest)
    encoder = msgspec.msgpack.Encoder()
    replies.write(_READY)
    while True:
        header = _read_exactly(requests, _HEADER.size)
        if header is None:
            return
        payload = _read_exactly(requests, _HEADER.unpack(header)[0])
        if payload is None:
            return
        if payload[:1] == _SEGMENT:
            if not _answer_segment(segments.decode(payload[1:]), replies, encoder, memory_mib):
                return
            continue
        result, failed = _guarded(memory_mib, lambda request: run_request(decoder.decode(request)), payload)
        reply = failed or EvalReply(result=result)
        out_of_memory = reply.out_of_memory
        try:
            body = encoder.encode(reply)
            replies.write(_HEADER.pack(len(body)) + body)
        except MemoryError:
            return
        if out_of_memory:
            # The heap may be left fragmented near the limit: let the pool start a fresh process.
            return


def _write_frame(replies: Any, encoder: msgspec.msgpack.Encoder, frame: SegmentFrame) -> None:
    body = encoder.encode(frame)
    replies.write(_HEADER.pack(len(body)) + body)


def _answer_segment(request: SegmentRequest, replies: Any, encoder: msgspec.msgpack.Encoder, memory_mib: int) -> bool:
    """Walk a segment, one frame per visit, then a closing frame; False when the process must be replaced."""
    from drift_worker.segments import walk

    bounds = request.bounds
    _, failed = _guarded(
        memory_mib,
        walk,
        request.task,
        bounds,
        request.max_output_bytes,
        lambda visit: _write_frame(replies, encoder, SegmentFrame(visit=visit)),
    )
    closing = (
        SegmentFrame(done=True)
        if failed is None
        else SegmentFrame(error=failed.error, out_of_memory=failed.out_of_memory)
    )
    try:
        _write_frame(replies, encoder, closing)
    except MemoryError:
        return False
    # After running out of memory the heap may be left fragmented near the limit: start a fresh process.
    return not closing.out_of_memory


# --------------------------------------------------------------------------- the pool, in the worker


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Evaluator:
    """One evaluator process and its pipes (non-blocking, served by whichever event loop calls it)."""

    def __init__(self, memory_mib: int) -> None:
        self.memory_mib = memory_mib
        # A fixed argv: this interpreter running this module (nothing from a tenant reaches it).
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "drift_worker.evaluator", str(memory_mib)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._write_fd = self.process.stdin.fileno()
        self._read_fd = self.process.stdout.fileno()
        os.set_blocking(self._write_fd, False)
        os.set_blocking(self._read_fd, False)
        self._buffer = bytearray()
        self.ready = False
        self.idle_since = 0.0
        """When the process last became idle (the event loop's clock)."""
        self._warming: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        loop.add_reader(self._read_fd, _wake, waiter)
        try:
            await waiter
        finally:
            loop.remove_reader(self._read_fd)

    async def _writable(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        loop.add_writer(self._write_fd, _wake, waiter)
        try:
            await waiter
        finally:
            loop.remove_writer(self._write_fd)

    async def _read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            try:
                chunk = os.read(self._read_fd, max(size - len(self._buffer), 65536))
            except BlockingIOError:
                await self._readable()
                continue
            if not chunk:
                raise EOFError
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._write_fd, view)
            except BlockingIOError:
                await self._writable()
                continue
            except BrokenPipeError:
                raise EOFError from None
            view = view[written:]

    async def _warm(self) -> None:
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            if await self._read(len(_READY)) != _READY:
                raise EOFError
        self.ready = True

    async def wait_ready(self) -> None:
        """Wait until the process has loaded the evaluator (one reader, however many wait)."""
        if self.ready:
            return
        if self._warming is None:
            self._warming = asyncio.ensure_future(self._warm())
        await asyncio.shield(self._warming)

    async def call(self, payload: bytes) -> bytes:
        """Send one framed request and read its framed answer (EOFError if the process died)."""
        await self.send(payload)
        return await self.receive()

    async def send(self, payload: bytes) -> None:
        """Send one framed request (a segment's is answered by several frames)."""
        await self.wait_ready()
        await self._write(_HEADER.pack(len(payload)) + payload)

    async def receive(self) -> bytes:
        """Read one framed answer (EOFError if the process died)."""
        (size,) = _HEADER.unpack(await self._read(_HEADER.size))
        return await self._read(size)

    def received(self) -> bytes | None:
        """The next framed answer if it has arrived whole already (read with an earlier one), else None."""
        if len(self._buffer) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self._buffer)
        end = _HEADER.size + size
        if len(self._buffer) < end:
            return None
        data = bytes(self._buffer[_HEADER.size : end])
        del self._buffer[:end]
        return data

    def kill(self) -> None:
        """SIGKILL the process (whatever it is doing) and close the pipes; reaped in the background."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def exit_code(self) -> int | None:
        return self.process.poll()


_LIVE: weakref.WeakSet[EvaluatorPool] = weakref.WeakSet()


@atexit.register
def _kill_all() -> None:
    """Leave no evaluator behind when the worker exits without closing its pool."""
    for pool in list(_LIVE):
        pool.kill_all()


class EvaluatorPool:
    """Evaluator processes shared fairly between tenants; see the module's docstring.

    Processes start on `start()` (the worker calls it before polling), else one by one on demand, never
    more than `settings.processes` at once; one idle for `settings.idle_exit_s` exits.
    """

    def __init__(self, settings: PoolSettings = PoolSettings(), on_idle: Callable[[], object] | None = None) -> None:
        """`on_idle` is called (on the event loop) when idle exits leave the pool without any process."""
        if settings.processes < 1:
            raise ValueError("an evaluator pool needs at least one process")
        self.settings = settings
        self._on_idle = on_idle
        self._idle: list[_Evaluator] = []
        self._live: set[_Evaluator] = set()
        """Every process started and not yet retired (idle, busy or warming): at most `settings.processes`."""
        self._in_use: collections.Counter[str] = collections.Counter()
        self._waiting: dict[str, collections.deque[asyncio.Future[_Evaluator]]] = {}
        self._turns: collections.deque[str] = collections.deque()
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(EvalReply)
        self._frames = msgspec.msgpack.Decoder(SegmentFrame)
        self._reapers: set[asyncio.Future[Any]] = set()
        self._expiry: asyncio.TimerHandle | None = None
        """The one pending check for idle processes (one timer, not one per evaluation)."""
        self._closed = False
        _LIVE.add(self)

    def _spawn(self) -> _Evaluator:
        """Start one process (cold), counted in the pool's size until retired."""
        process = _Evaluator(self.settings.memory_mib)
        self._live.add(process)
        return process

    def _retire(self, process: _Evaluator) -> None:
        """Kill a process and stop counting it; reaped in the background."""
        process.kill()
        self._live.discard(process)
        self._background(asyncio.to_thread(process.process.wait))

    def _park(self, process: _Evaluator) -> None:
        """Put a process back among the idle ones, to exit if nobody takes it within `idle_exit_s`."""
        process.idle_since = asyncio.get_running_loop().time()
        self._idle.append(process)
        if self._expiry is None:
            self._schedule_expiry()

    def _schedule_expiry(self) -> None:
        """Check again when the longest-idle process reaches `idle_exit_s` (nothing to do without one)."""
        self._expiry = None
        if self.settings.idle_exit_s <= 0 or not self._idle or self._closed:
            return
        loop = asyncio.get_running_loop()
        due = min(process.idle_since for process in self._idle) + self.settings.idle_exit_s
        self._expiry = loop.call_at(due, self._expire)

    def _expire(self) -> None:
        """Retire every process idle for `idle_exit_s` or more (a later demand starts a fresh one)."""
        now = asyncio.get_running_loop().time()
        expired = [p for p in self._idle if now - p.idle_since >= self.settings.idle_exit_s]
        for process in expired:
            self._idle.remove(process)
            self._retire(process)
        if expired:
            log.info("worker.evaluators_idle_exit", exited=len(expired), live=len(self._live))
        self._schedule_expiry()
        if expired and not self._live and self._on_idle is not None:
            # No evaluation for idle_exit_s and none running: the worker is idle (nearly every node evaluates here).
            self._on_idle()

    async def start(self) -> None:
        """Start every process and wait until each has loaded the evaluator (warm); idle ones exit later."""
        started = [self._spawn() for _ in range(self.settings.processes - len(self._live))]
        await asyncio.gather(*(process.wait_ready() for process in started))
        for process in started:
            self._park(process)
        self._dispatch()
        log.info("worker.evaluator_pool_started", processes=len(self._live), memory_mib=self.settings.memory_mib)

    def pids(self) -> list[int]:
        """The process ids of the idle evaluators (for tests and diagnostics)."""
        return [process.pid for process in self._idle]

    def live_pids(self) -> list[int]:
        """The process ids of every evaluator started and not retired: idle, busy or warming."""
        return [process.pid for process in self._live]

    def kill_all(self) -> None:
        """Kill every idle process (busy ones are killed by their callers' cancellation)."""
        for process in self._idle:
            process.kill()
            self._live.discard(process)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.process.wait(timeout=5)
        self._idle.clear()

    async def close(self) -> None:
        """Stop every process (successors still warming are killed as they come up)."""
        self._closed = True
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self.kill_all()
        if self._reapers:
            await asyncio.gather(*self._reapers, return_exceptions=True)
        self.kill_all()
        _LIVE.discard(self)

    # ------------------------------------------------------------------ fairness

    def _room(self) -> bool:
        """Whether a process can be handed out now: an idle one, or room in the pool to start one."""
        return bool(self._idle) or (len(self._live) < self.settings.processes and not self._closed)

    def _take(self) -> _Evaluator:
        """The most recently idle process (the others may exit), else a new one (`_room()` said there is room)."""
        return self._idle.pop() if self._idle else self._spawn()

    async def _acquire(self, tenant: str) -> _Evaluator:
        if self._room() and self._in_use[tenant] < self.settings.tenant_slots and not self._waiting:
            self._in_use[tenant] += 1
            return self._take()
        waiter: asyncio.Future[_Evaluator] = asyncio.get_running_loop().create_future()
        queue = self._waiting.setdefault(tenant, collections.deque())
        if not queue:
            self._turns.append(tenant)
        queue.append(waiter)
        self._dispatch()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(tenant, waiter.result())
            else:
                self._forget(tenant, waiter)
            raise

    def _forget(self, tenant: str, waiter: asyncio.Future[_Evaluator]) -> None:
        queue = self._waiting.get(tenant)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[tenant]
                self._turns.remove(tenant)

    def _dispatch(self) -> None:
        """Hand idle (or newly started) processes to waiting tenants in turn, skipping those at their share."""
        while self._turns and self._room():
            for _ in range(len(self._turns)):
                tenant = self._turns[0]
                self._turns.rotate(-1)
                if self._in_use[tenant] < self.settings.tenant_slots:
                    break
            else:
                return  # every waiting tenant holds its full share
            queue = self._waiting[tenant]
            waiter = queue.popleft()
            if not queue:
                del self._waiting[tenant]
                self._turns.remove(tenant)
            if waiter.done():
                continue  # cancelled (its deadline passed) but not yet resumed to forget itself
            self._in_use[tenant] += 1
            waiter.set_result(self._take())

    def _release(self, tenant: str, process: _Evaluator | None) -> None:
        """Give back one of `tenant`'s slots, with its process (None: a successor joins once warm)."""
        self._in_use[tenant] -= 1
        if self._in_use[tenant] <= 0:
            del self._in_use[tenant]
        if process is not None:
            self._park(process)
        self._dispatch()

    def _replace(self, process: _Evaluator, tenant: str) -> None:
        """Kill a process and start its successor, still counted in `tenant`'s share until warm.

        The successor is never handed out cold, and its start-up is charged to the tenant whose
        evaluation was killed: another tenant never waits for it, and a tenant whose evaluations keep
        being killed cannot grow past its share while the pool refills.
        """
        self._retire(process)
        # Started here, not in the background task: the freed place in the pool is the successor's.
        self._background(self._succeed(tenant, self._spawn()))

    async def _succeed(self, tenant: str, successor: _Evaluator) -> None:
        try:
            await self._start_successor(successor)
        finally:
            self._release(tenant, None)

    async def _start_successor(self, successor: _Evaluator) -> None:
        for attempt in range(5):
            if attempt:
                if len(self._live) >= self.settings.processes:
                    return  # a demand started a process in the freed place meanwhile: the pool is full
                successor = self._spawn()
            try:
                await successor.wait_ready()
            except (TimeoutError, EOFError):
                self._retire(successor)
                log.error("worker.evaluator_start_failed", attempt=attempt)
                await asyncio.sleep(1.0)
                continue
            if self._closed:
                self._retire(successor)
                return
            self._park(successor)
            self._dispatch()
            return

    def _background(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)

    # ------------------------------------------------------------------ evaluation

    def _limit(self, timeout_ms: int) -> int:
        """An evaluation's own deadline: the least of the caller's (0: none) and the pool's node timeout."""
        return min(timeout_ms, self.settings.node_timeout_ms) if timeout_ms > 0 else self.settings.node_timeout_ms

    async def _checkout(self, tenant: str, timeout_ms: int) -> _Evaluator:
        """A warm process of `tenant`'s share; EvaluatorBusy when none came within the caller's deadline."""
        limit = self._limit(timeout_ms)
        # Waiting for a process (the tenant's share busy) may use what the evaluation leaves of the caller's
        # deadline (at least as long as the evaluation's own): the two together stay within the activity's.
        wait = max(timeout_ms - limit, limit) if timeout_ms > 0 else WAIT_FACTOR * self.settings.node_timeout_ms
        try:
            async with asyncio.timeout(wait / 1000):
                process = await self._acquire(tenant)
        except TimeoutError:
            raise EvaluatorBusy(wait) from None
        # The evaluation's own deadline starts once it has a warm process (a replacement may still be starting).
        try:
            await process.wait_ready()
        except (TimeoutError, EOFError):
            # Not the expression's doing: fail the attempt (retried), not the node.
            self._replace(process, tenant)
            raise EvaluatorUnavailable("an evaluator process failed to start") from None
        except BaseException:
            self._release(tenant, process)
            raise
        return process

    def _died(self, process: _Evaluator, tenant: str, instance: str) -> MemoryBoundExceeded:
        code = process.exit_code()
        self._replace(process, tenant)
        log.warning("worker.evaluator_died", tenant=tenant, node=instance, exit_code=code)
        return MemoryBoundExceeded(
            f"expression exceeded the memory bound of {self.settings.memory_mib} MiB (its evaluator process stopped)"
        )

    async def evaluate(
        self,
        op: str,
        task: NodeTask,
        bounds: expressions.Bounds,
        max_output_bytes: int,
        timeout_ms: int,
        response: Mapping[str, Any] | None = None,
    ) -> NodeResult:
        """Evaluate one node's expressions in a process of the pool; ExpressionError or EvaluationTimeout.

        `timeout_ms` is the caller's deadline (0: none): the evaluation gets the least of it and the pool's
        node timeout; waiting for a process (a tenant whose share is busy waits) gets what is left of it.
        """
        request = EvalRequest(
            op=op,
            task=task,
            bounds=bounds,
            max_output_bytes=max_output_bytes,
            response=response,
        )
        payload = self._encoder.encode(request)
        limit = self._limit(timeout_ms)
        process = await self._checkout(task.tenant, timeout_ms)
        try:
            async with asyncio.timeout(limit / 1000):
                answer = await process.call(payload)
        except TimeoutError:
            self._replace(process, task.tenant)
            log.warning("worker.evaluation_killed", tenant=task.tenant, node=task.instance, limit_ms=limit)
            raise EvaluationTimeout(limit) from None
        except EOFError:
            raise self._died(process, task.tenant, task.instance) from None
        except BaseException:
            # Cancelled mid-evaluation: stop the work, do not leave it running.
            self._replace(process, task.tenant)
            raise
        reply = self._decoder.decode(answer)
        if reply.out_of_memory:
            self._replace(process, task.tenant)
            raise MemoryBoundExceeded(reply.error or "expression exceeded the memory bound")
        self._release(task.tenant, process)
        if reply.error is not None:
            raise expressions.ExpressionError(reply.error, reply.position, reply.code)
        assert reply.result is not None
        return reply.result

    async def evaluate_segment(
        self,
        task: SegmentTask,
        bounds: expressions.Bounds,
        max_output_bytes: int,
        on_visit: Callable[[SegmentVisit], None],
    ) -> SegmentOutcome:
        """Evaluate a segment of pure nodes in one process of the pool (see `drift_worker.segments`).

        Each node keeps its own deadline (its `timeoutMs`, capped by the pool's node timeout): the process
        answers one frame per visit, `on_visit` gets each as it arrives, and a node still running at its
        deadline has its process killed. A failing node ends the segment: the outcome holds the visits
        before it and its failure (ExpressionError, EvaluationTimeout or EvaluatorBusy), never raised.
        """
        from drift_worker.segments import node_limit_ms, step_of

        request = SegmentRequest(
            task=task,
            bounds=bounds,
            max_output_bytes=max_output_bytes,
        )
        payload = _SEGMENT + self._encoder.encode(request)
        visits: list[SegmentVisit] = []
        expected: str | None = task.start
        tenant = task.tenant

        def limit_of(instance: str | None) -> int:
            state = task.states.get(instance) if instance is not None else None
            return self._limit(node_limit_ms(state) if state is not None else 0)

        try:
            process = await self._checkout(tenant, node_limit_ms(task.states[task.start]))
        except EvaluatorBusy as busy:
            return SegmentOutcome(visits, task.start, busy)
        try:
            await process.send(payload)
            while True:
                limit = limit_of(expected)
                # A node whose frame came in with an earlier read has finished: no deadline left to keep.
                answer = process.received()
                if answer is None:
                    async with asyncio.timeout(limit / 1000):
                        answer = await process.receive()
                frame = self._frames.decode(answer)
                if frame.visit is not None:
                    visits.append(frame.visit)
                    on_visit(frame.visit)
                    state = task.states[frame.visit.instance]
                    number = task.first_visit + len(visits) - 1
                    expected = step_of(frame.visit.instance, state, number, frame.visit.result).next_node
                    continue
                break
        except TimeoutError:
            self._replace(process, tenant)
            log.warning("worker.evaluation_killed", tenant=tenant, node=expected, limit_ms=limit)
            return SegmentOutcome(visits, expected, EvaluationTimeout(limit))
        except EOFError:
            return SegmentOutcome(visits, expected, self._died(process, tenant, expected or task.start))
        except BaseException:
            # Cancelled mid-evaluation: stop the work, do not leave it running.
            self._replace(process, tenant)
            raise
        if frame.out_of_memory:
            self._replace(process, tenant)
            return SegmentOutcome(
                visits, expected, MemoryBoundExceeded(frame.error or "expression exceeded the memory bound")
            )
        self._release(tenant, process)
        if frame.error is not None:
            return SegmentOutcome(visits, expected, expressions.ExpressionError(frame.error))
        return SegmentOutcome(visits)


if __name__ == "__main__":
    child_main(int(sys.argv[1]))
