"""HTTP/3's endpoint and sessions in the test's own event loop (asyncio's, whose timer
heap a test can see): one timer per connection, and no task made by the server but the
request's own."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest

from conftest import write_tls_files
from qactuar.asgi.router import Router
from qactuar.config import Config
from qactuar.server import build_mounts
from qactuar.server_state import ServerState

pytest.importorskip("aioquic")
from h3_client import h3_connect

from apps.h3_app import app
from qactuar.protocols.http3 import H3Session
from qactuar.udp.binding import bind_datagrams
from qactuar.udp.serving import start_datagrams


def test_one_timer_per_connection_and_no_task_but_the_request(tmp_path: Path) -> None:
    tls = write_tls_files(tmp_path)
    config = Config(SSL_CERT_PATH=str(tls["cert"]), SSL_KEY_PATH=str(tls["key"]),
                    QUIC_BIND="127.0.0.1:0", ACCESS_LOG=False, LIFESPAN="off")
    binds = bind_datagrams(config)
    assert binds is not None
    problems: list[str] = []
    server_tasks: list[str] = []
    timers_set = 0

    async def main() -> None:
        nonlocal timers_set
        loop = asyncio.get_running_loop()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task:
            code = getattr(coro, "cr_code", None)
            where = code.co_filename if code is not None else type(coro).__module__ or ""
            if "qactuar" in where or "HTTPStream" in coro.__qualname__:
                server_tasks.append(coro.__qualname__)
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)
        last: dict[H3Session, asyncio.TimerHandle] = {}
        call_at = loop.call_at

        def watched_call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal timers_set
            handle = call_at(when, callback, *args, **kwargs)
            session = getattr(callback, "__self__", None)
            if isinstance(session, H3Session):
                timers_set += 1
                previous = last.get(session)
                # the previous timer of this connection is gone: fired or cancelled
                if previous is not None and previous._scheduled and not previous.cancelled():
                    problems.append("two live timers for one connection")
                last[session] = handle
            return handle

        loop.call_at = watched_call_at  # type: ignore[method-assign]
        mounts = build_mounts(config, app)
        state = ServerState(config, Router(mounts), loop, "https")
        serving, problem = await start_datagrams(state, binds, 0, mounts,
                                                 logging.getLogger("test"))
        assert problem is None
        port = binds.quic_port()
        size = 2 * 1024 * 1024
        async with h3_connect("127.0.0.1", port, ca=str(tls["ca"])) as client:
            answer = await client.request("GET", f"/download?n={size}")
            assert hashlib.sha256(answer.body).hexdigest().encode() == answer.header(b"x-sha256")
            answer = await client.request("POST", "/echo", body=[b"a" * 1000] * 5)
            assert answer.body == b"a" * 5000
        serving.stop_receiving()
        serving.close()

    try:
        asyncio.run(main())
    finally:
        binds.close()
    assert problems == []
    assert timers_set > 0
    # the two requests' tasks, nothing else: no task per timer, datagram or stream
    assert server_tasks == ["HTTPStream._run", "HTTPStream._run"]
