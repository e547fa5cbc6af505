"""The request path of `POST /tickets` made cheaper without changing what it answers: one write
per response (`CoalescingTransport`), the ticket JSON encoded by orjson for the store and the
response with the standard library's rules kept, and the route served without FastAPI
resolving its parameters while its OpenAPI document stays the same; and the workers' shares of
connections kept even (`ConnectionBalance`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import os
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from uvicorn.server import ServerState

from adapters.local import sqlite_store
from adapters.local.app import _TicketJSONResponse
from adapters.local.workers import (
    NOT_SERVING,
    CoalescingTransport,
    ConnectionBalance,
    _http_protocol,
)


class _Transport(asyncio.Transport):
    """Records every write; closes on request."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_what_one_turn_writes_goes_out_in_one_write_and_in_order() -> None:
    async def scenario() -> list[bytes]:
        real = _Transport()
        coalescing = CoalescingTransport(real, asyncio.get_running_loop())
        coalescing.write(b"HTTP/1.1 200 OK\r\n\r\n")
        coalescing.write(b"{}")
        assert real.writes == []  # held until the end of this turn
        await asyncio.sleep(0)
        coalescing.write(b"next")
        await asyncio.sleep(0)
        return real.writes

    assert _run(scenario()) == [b"HTTP/1.1 200 OK\r\n\r\n{}", b"next"]


def test_closing_sends_what_is_held_first_and_nothing_after() -> None:
    async def scenario() -> _Transport:
        real = _Transport()
        coalescing = CoalescingTransport(real, asyncio.get_running_loop())
        coalescing.write(b"bye")
        coalescing.close()
        await asyncio.sleep(0)  # the flush scheduled by the write finds the transport closed
        return real

    real = _run(scenario())
    assert real.writes == [b"bye"]
    assert real.closed


def test_other_transport_calls_reach_the_wrapped_transport() -> None:
    async def scenario() -> None:
        real = _Transport()
        coalescing = CoalescingTransport(real, asyncio.get_running_loop())
        assert coalescing.get_extra_info("peername") == ("127.0.0.1", 50000)
        assert not coalescing.is_closing()

    _run(scenario())


def test_a_json_response_is_one_write_through_the_servers_protocol() -> None:
    """uvicorn's own protocol, given the coalescing transport, answers a request with the head
    and the body in one write (uvicorn alone writes them separately)."""
    app = FastAPI()

    @app.get("/thing")
    async def thing() -> dict[str, str]:
        return {"answer": "yes"}

    protocol_class = _http_protocol()
    if isinstance(protocol_class, str):
        pytest.skip("httptools is not installed: uvicorn chooses its own protocol")

    async def scenario() -> list[bytes]:
        config = uvicorn.Config(app, lifespan="off", log_level="warning")
        protocol = protocol_class(  # type: ignore[call-arg]
            config=config, server_state=ServerState(), app_state={}
        )
        real = _Transport()
        protocol.connection_made(real)
        protocol.data_received(b"GET /thing HTTP/1.1\r\nHost: example\r\n\r\n")
        for _ in range(100):
            await asyncio.sleep(0)
        assert protocol.cycle is not None and protocol.cycle.response_complete
        return real.writes

    writes = _run(scenario())
    assert len(writes) == 1
    head, _, body = writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert json.loads(body) == {"answer": "yes"}


def _run(coroutine: Any) -> Any:
    """``asyncio.run`` on a thread of its own: another test may leave an event loop running on
    the main thread (browser tests do), where ``asyncio.run`` refuses to start."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _standard(value: Any) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False)


STRICT_VALUES = [
    {"subject": "Zahlung fehlgeschlagen", "score": 0.1, "tiny": 1e-05, "n": [1, None, True]},
    {"nested": {"deep": [{"é": "😀"}, -0.0, 12345678901234567.0]}},
    "\u2028 line separator and \x00 control",
]


@pytest.mark.parametrize("value", STRICT_VALUES)
def test_stored_json_reads_back_as_the_value(value: Any) -> None:
    assert json.loads(sqlite_store._strict_json(value)) == json.loads(_standard(value))


@pytest.mark.parametrize("orjson_installed", [True, False])
@pytest.mark.parametrize(
    "bad", [{"x": math.nan}, {"x": [math.inf]}, {"x": -math.inf}, {"x": "lone \ud800"}]
)
def test_content_that_is_not_strict_json_is_refused_with_or_without_orjson(
    bad: Any, orjson_installed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not orjson_installed:
        monkeypatch.setattr(sqlite_store, "orjson", None)
    with pytest.raises(ValueError):
        sqlite_store._strict_json(bad)


@pytest.mark.parametrize(
    "value",
    [{"pair": (1, 2)}, {1: "int key"}, {"big": 2**70}],
)
def test_what_orjson_would_write_otherwise_is_written_as_the_standard_library_does(
    value: Any,
) -> None:
    assert sqlite_store._strict_json(value) == _standard(value)


def test_a_value_json_cannot_hold_is_still_a_type_error() -> None:
    with pytest.raises(TypeError):
        sqlite_store._strict_json({"when": object()})


@pytest.mark.parametrize("content", [*STRICT_VALUES, {"big": 2**70}, {1: "int key"}])
def test_the_ticket_response_is_the_same_json_as_jsonresponse(content: Any) -> None:
    fast = _TicketJSONResponse(content, status_code=201, headers={"Location": "/tickets/x"})
    standard = JSONResponse(content, status_code=201, headers={"Location": "/tickets/x"})
    assert json.loads(fast.body) == json.loads(standard.body)
    assert fast.status_code == 201
    assert fast.headers["content-type"] == standard.headers["content-type"]
    assert fast.headers["content-length"] == str(len(fast.body))
    assert fast.headers["location"] == "/tickets/x"


def test_a_worker_over_its_share_closes_one_connection_at_a_time_until_it_holds_its_share() -> None:
    balance = ConnectionBalance(2)
    balance.hold(10, 0)
    balance.hold(6, 1)
    # 16 connections, a share of 8: worker 0 closes two, one decision each.
    assert [balance.should_close() for _ in range(3)] == [True, True, False]
    balance.closed()
    balance.closed()
    balance.hold(8, 0)
    balance.hold(8, 1)
    assert not balance.should_close()

    balance.number = 1
    assert not balance.should_close()  # the one that gained connections keeps them
    balance.hold(9, 0)
    assert not balance.should_close()  # 8 of 17: within a share of 9


def test_an_even_split_or_an_odd_one_by_one_closes_nothing() -> None:
    balance = ConnectionBalance(3)
    for counts in ([0, 0, 0], [1, 0, 0], [3, 3, 2], [1, 1, 0], [2, 1, NOT_SERVING]):
        for number, held in enumerate(counts):
            balance.hold(held, number)
        assert not balance.should_close(), counts


def test_while_the_other_workers_do_not_serve_nothing_is_closed() -> None:
    """Before the others start, or while a dead one is replaced, a closed connection could only
    come back to this worker."""
    balance = ConnectionBalance(2)
    balance.hold(16, 0)
    assert not balance.should_close()  # the other has not started
    balance.hold(0, 1)
    assert balance.should_close()  # it listens now
    balance.closed()
    balance.hold(NOT_SERVING, 1)  # it died
    assert not balance.should_close()


def test_the_counts_are_shared_with_forked_workers() -> None:
    if not hasattr(os, "fork"):
        pytest.skip("workers are forked processes only where os.fork exists")
    balance = ConnectionBalance(2)
    balance.hold(1, 0)
    pid = os.fork()
    if pid == 0:  # the worker: take many connections, in its own slot
        balance.number = 1
        balance.hold(5)
        os._exit(0)
    os.waitpid(pid, 0)
    balance.number = 1
    assert balance.should_close()  # 5 of 6 against a share of 3, as the worker wrote


def _served(balance: ConnectionBalance, connections: int) -> list[_Transport]:
    """``connections`` connections to one worker, each sending one request; their transports."""
    app = FastAPI()

    @app.get("/thing")
    async def thing() -> dict[str, str]:
        return {"answer": "yes"}

    protocol_class = _http_protocol(balance)
    if isinstance(protocol_class, str):
        pytest.skip("httptools is not installed: uvicorn chooses its own protocol")

    async def scenario() -> list[_Transport]:
        config = uvicorn.Config(app, lifespan="off", log_level="warning")
        state = ServerState()
        transports = []
        for _ in range(connections):
            protocol = protocol_class(  # type: ignore[call-arg]
                config=config, server_state=state, app_state={}
            )
            transport = _Transport()
            protocol.connection_made(transport)
            transports.append((protocol, transport))
        for protocol, _ in transports:
            protocol.data_received(b"GET /thing HTTP/1.1\r\nHost: example\r\n\r\n")
        for _ in range(100):
            await asyncio.sleep(0)
        for protocol, transport in transports:
            if transport.closed:
                protocol.connection_lost(None)
        return [transport for _, transport in transports]

    return _run(scenario())


def test_a_busier_worker_answers_with_connection_close_and_closes_one_connection() -> None:
    balance = ConnectionBalance(2)
    balance.hold(0, 1)  # the other worker serves and holds none
    transports = _served(balance, 3)
    # Three connections here against a share of 2: the first request answered closes its
    # connection; the others stay open, since one close is already under way.
    closing = [t for t in transports if t.closed]
    assert len(closing) == 1
    for transport in transports:
        head = transport.writes[0].partition(b"\r\n\r\n")[0].lower()
        assert head.startswith(b"http/1.1 200 ok")
        assert (b"connection: close" in head) == transport.closed
    assert balance.closing == 0  # the closed connection is counted as gone


def test_a_worker_within_its_share_keeps_every_connection() -> None:
    balance = ConnectionBalance(2)
    balance.hold(3, 1)  # the other worker holds as many
    transports = _served(balance, 3)
    assert not any(t.closed for t in transports)
    assert all(b"connection: close" not in t.writes[0].lower() for t in transports)
