"""The local service on several worker processes: one listening socket, forked workers.

The supervisor (the `ticket-enrich serve` process) loads the model and binds the address, then
forks each worker, which opens its own store connection, builds the app and runs uvicorn; on
Linux each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new
connections over them, elsewhere they share the supervisor's socket. Forking after the model is
loaded (and warmed up) lets the workers share its memory instead of each loading a copy.

A worker holding more than its share of the connections closes them one at a time, after a
response, until the kernel's new choices even the split (`ConnectionBalance`). With one worker
per usable core, each can be kept on a core of its own (`worker_cores`).

A worker that dies is replaced; SIGINT or SIGTERM stop every worker gracefully (each finishes
its requests in flight) and then the supervisor. What must be one for the whole service (agents'
sessions, sign-in and customer rate limits, the delivery outbox, the change feed) lives in the
SQLite store, never in a worker's memory.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from typing import Any

import uvicorn

from core.logs import JsonFormatter

_log = logging.getLogger(__name__)

# A worker that dies sooner than this after it started counts as a crash at start; after
# `_CRASHES_MAX` of those in a row the supervisor gives up instead of forking forever.
_CRASH_WINDOW_S = 10.0
_CRASHES_MAX = 5

AppFactory = Callable[[], AbstractContextManager[Any]]


def worker_cores(workers: int, pin: bool) -> list[int] | None:
    """The core each of ``workers`` worker processes is kept on (worker ``n`` on the ``n``-th),
    or None when the kernel places them: unless ``pin``, with one worker, where processes
    cannot be pinned (only Linux can), or when the workers are not exactly one per core this
    process may use (fewer would all crowd the first cores, more cannot each have one).

    Pinned, a worker stays where its caches are warm; in the HTTP benchmark on two cores (two
    workers and the load generator) p99 at 16 connections fell from 20.6 to 18.8 ms, the median
    of fifteen runs each, with the same throughput.
    """
    if not pin or workers < 2 or not hasattr(os, "sched_setaffinity"):
        return None
    usable = sorted(os.sched_getaffinity(0))
    return usable if len(usable) == workers else None


def serve(
    make_app: AppFactory, workers: int, options: dict[str, Any], cores: list[int] | None = None
) -> int:
    """Serve the app that ``make_app()`` yields on ``options``' host and port (uvicorn.Config
    options) with ``workers`` processes; return the exit status.

    With one worker the app runs in this process. With more, this process supervises forked
    ones and each enters its own ``make_app()``; with ``cores`` (see `worker_cores`), worker
    ``n`` runs on core ``cores[n]`` only, and so does the worker that replaces it.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if cores is not None and len(cores) != workers:
        raise ValueError(f"{workers} workers need {workers} cores, got {cores}")
    if not _log.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        _log.addHandler(handler)
        _log.setLevel(logging.INFO)
    if workers > 1 and not hasattr(os, "fork"):
        raise OSError("several workers need os.fork (Linux, macOS); set workers to 1")
    if workers > 1 and _REUSE_PORT:
        # The supervisor holds the address (bound, not listening, so it is handed no
        # connection) and each worker listens on a socket of its own.
        sock = _reuse_port_socket(options, listen=False)
    else:
        # Binding needs the address options only; each worker's Config gets the app.
        sock = uvicorn.Config("adapters.local.app:create_app", **options).bind_socket()
    try:
        if workers == 1:
            return _run_worker(make_app, sock, options)
        return _Supervisor(make_app, sock, options, workers, cores).run()
    finally:
        sock.close()


# On Linux each worker listens on its own SO_REUSEPORT socket and the kernel spreads new
# connections over them by their addresses. On one shared socket, the worker that wakes first
# accepts every connection waiting, so a client that opens its 16 keep-alive connections at
# once could have them all on one worker, and one core, while the other idles (measured: 600
# POST/s at 16 connections against 1,100 at 8 and at 32).
_REUSE_PORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _reuse_port_socket(options: dict[str, Any], *, listen: bool) -> socket.socket:
    family, kind, proto, _name, address = socket.getaddrinfo(
        options["host"], options["port"], type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if listen:
            sock.listen(options.get("backlog", 2048))
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


class CoalescingTransport:
    """A transport that sends what one turn of the event loop writes in one system call.

    uvicorn writes a response's status line and headers, then its body, each with a call of
    its own: two ``send`` calls, and two TCP segments that the client reads one by one, for
    every response. Here a write is held until the end of the event loop's current turn (a
    ``call_soon``), when everything written meanwhile goes out together, so a response whose
    head and body are sent in one step (every JSON response) costs one call and one segment. A
    streamed body is still sent as it is written: each turn's writes go out at its end.
    Everything else is the wrapped transport's.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(data)

    def flush(self) -> None:
        """Send what was written and not sent yet (nothing, once the transport closes)."""
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


NOT_SERVING = -1


class ConnectionBalance:
    """Keeps the workers' shares of connections even, where the kernel spreads them unevenly.

    With ``SO_REUSEPORT`` the kernel hands each new connection to a worker by a hash of its
    addresses, and a keep-alive connection stays with that worker for its life: 16 connections
    are as often split 6 and 10 as 8 and 8, and the worker with 10 queues its requests while
    the other waits. Each worker writes how many connections it holds into memory the forked
    workers share; a worker holding more than its share (all connections over the workers,
    rounded up) answers its next request with ``Connection: close``, one connection at a time,
    and the client's next connection is handed out again. Connections flow from the busier
    worker until it holds its share; an even split closes nothing. Closing a keep-alive
    connection after a response is HTTP/1.1's own way (RFC 9112, section 9.6), as a server's
    keep-alive request limit does.
    """

    def __init__(self, workers: int) -> None:
        if workers < 2:
            raise ValueError(f"a balance needs at least two workers, got {workers}")
        self.workers = workers
        # Anonymous and shared: a process forked after this sees the same counts. A worker's
        # count is -1 while it does not serve (before it starts, after it dies).
        self._counts = mmap.mmap(-1, 8 * workers)
        self._all = struct.Struct(f"{workers}q")
        self._all.pack_into(self._counts, 0, *([NOT_SERVING] * workers))
        self.number = 0  # this process's slot, set in each worker after the fork
        self.closing = 0  # connections this worker is closing and still holds

    def hold(self, connections: int, number: int | None = None) -> None:
        """Record that worker ``number`` (this one by default) holds ``connections``, or
        `NOT_SERVING`."""
        slot = self.number if number is None else number
        struct.pack_into("q", self._counts, 8 * slot, connections)

    def should_close(self) -> bool:
        """Whether this worker should close the connection of the request it starts answering;
        when so, it counts that connection as closing until `closed` is called."""
        counts = self._all.unpack_from(self._counts)
        serving = [held for held in counts if held != NOT_SERVING]
        if len(serving) < 2:  # the others are starting: a closed connection would come back
            return False
        share = -(-sum(serving) // len(serving))
        if counts[self.number] - self.closing > share:
            self.closing += 1
            return True
        return False

    def closed(self) -> None:
        """A connection `should_close` chose has closed."""
        self.closing = max(0, self.closing - 1)


def _http_protocol(balance: ConnectionBalance | None = None) -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol with writes coalesced (`CoalescingTransport`) and, given a
    ``balance``, connections closed while this worker holds more than its share; or uvicorn's
    own choice where httptools is missing."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"

    class ServiceProtocol(HttpToolsProtocol):
        _closing_for_balance = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            coalescing = CoalescingTransport(transport, self.loop)
            super().connection_made(coalescing)  # type: ignore[arg-type]
            if balance is not None:
                balance.hold(len(self.connections))

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            if balance is not None:
                if self._closing_for_balance:
                    self._closing_for_balance = False
                    balance.closed()
                balance.hold(len(self.connections))

        def on_headers_complete(self) -> None:
            answering = self.cycle
            super().on_headers_complete()
            cycle = self.cycle
            if (
                balance is not None
                and cycle is not None
                and cycle is not answering
                and cycle.keep_alive
                and not self._closing_for_balance
                and balance.should_close()
            ):
                # uvicorn then sends `connection: close` and closes after the response.
                cycle.keep_alive = False
                self._closing_for_balance = True

    return ServiceProtocol


def _run_worker(
    make_app: AppFactory,
    sock: Any,
    options: dict[str, Any],
    balance: ConnectionBalance | None = None,
) -> int:
    with make_app() as app:
        options = {"http": _http_protocol(balance), **options}
        if balance is not None:
            balance.hold(0)  # listening from here on
        server = uvicorn.Server(uvicorn.Config(app, **options))
        server.run(sockets=[sock])
    return 0 if server.started else 3


class _Supervisor:
    def __init__(
        self,
        make_app: AppFactory,
        sock: Any,
        options: dict[str, Any],
        workers: int,
        cores: list[int] | None = None,
    ) -> None:
        self.make_app = make_app
        self.sock = sock
        self.options = options
        self.workers = workers
        self.cores = cores
        self.children: dict[int, tuple[int, float]] = {}  # pid → (worker number, started)
        self.stopping = False
        self.crashes = 0
        # Only where each worker has its own socket: on a shared one, a new connection goes to
        # whichever worker accepts first, and closing would not move it.
        self.balance = ConnectionBalance(workers) if _REUSE_PORT else None

    def run(self) -> int:
        previous = {
            signum: signal.signal(signum, self._stop) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for number in range(self.workers):
                self._fork(number)
            return self._watch()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            _log.info("stopping the workers", extra={"signal": signal.Signals(signum).name})
        self.stopping = True
        for pid in list(self.children):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _watch(self) -> int:
        status_code = 0
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in self.children:
                continue
            number, started = self.children.pop(pid)
            if self.balance is not None:
                self.balance.hold(NOT_SERVING, number)
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                continue
            quick = time.monotonic() - started < _CRASH_WINDOW_S
            self.crashes = self.crashes + 1 if quick else 0
            _log.error(
                "worker exited; starting another",
                extra={"worker": number, "pid": pid, "exit_code": code},
            )
            if self.crashes >= _CRASHES_MAX:
                _log.error("workers keep dying at start; stopping the service")
                self._stop(signal.SIGTERM, None)
                status_code = 1
                continue
            self._fork(number)
        return status_code

    def _fork(self, number: int) -> None:
        # Nothing buffered in this process may be written twice, once by each side.
        sys.stdout.flush()
        sys.stderr.flush()
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(signum, signal.SIG_DFL)
                _stop_with_parent(supervisor)
                if self.cores is not None:
                    _keep_on_core(self.cores[number])
                sock = _reuse_port_socket(self.options, listen=True) if _REUSE_PORT else self.sock
                if self.balance is not None:
                    self.balance.number = number
                code = _run_worker(self.make_app, sock, self.options, self.balance)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                # Never return into the supervisor's code (its `finally` blocks, atexit).
                os._exit(code)
        self.children[pid] = (number, time.monotonic())


def _keep_on_core(core: int) -> None:
    """Run this process (and the threads it starts from now on) on ``core`` only; where that
    is refused (the core was taken from this process's set since), the kernel places it."""
    try:
        os.sched_setaffinity(0, {core})
    except OSError as exc:
        _log.warning("cannot keep the worker on its core", extra={"core": core, "error": str(exc)})


def _stop_with_parent(supervisor: int) -> None:
    """On Linux, have the kernel send this worker SIGTERM when the supervisor dies, even killed
    with SIGKILL, so that no worker is left serving alone."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != supervisor:
        # The supervisor died before the call above took effect.
        os.kill(os.getpid(), signal.SIGTERM)
