"""The interface process models use, in process: ServerObserver and ProtocolFactory.

A model sets `ServerState.observer` to hear of each request and each closed
connection, and `ServerState.protocols` to choose the protocol a connection is
handed over to (protocols/handover.py).  These tests pin what each is told, for
a plain HTTP/1.1 exchange, a refusal, a WebSocket upgrade and HTTP/2 by prior
knowledge and by h2c upgrade; the models' own tests (test_prefork.py,
test_postfork.py) check the same end to end.
"""

from __future__ import annotations

import base64
from typing import Any

from conftest import parse_responses
from inprocess import serving
from qactuar.protocols.handover import ProtocolFactory
from qactuar.protocols.http2 import H2Protocol
from qactuar.protocols.websocket import WebSocketProtocol
from qactuar.server_state import ServerObserver, ServerState
from ws_client import handshake

GET = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"


class Recorder(ServerObserver):
    def __init__(self) -> None:
        self.events: list[str] = []

    def request_started(self) -> None:
        self.events.append("request_started")

    def response_started(self) -> None:
        self.events.append("response_started")

    def request_finished(self) -> None:
        self.events.append("request_finished")

    def connection_closed(self) -> None:
        self.events.append("connection_closed")


class RecordingProtocols(ProtocolFactory):
    def __init__(self) -> None:
        self.made: list[str] = []

    def http2(self, state: ServerState, *args: Any) -> H2Protocol:
        self.made.append("http2")
        return super().http2(state, *args)

    def websocket(self, state: ServerState, scope: dict[str, Any], app: Any
                  ) -> WebSocketProtocol:
        self.made.append("websocket " + scope["path"])
        return super().websocket(state, scope, app)


def test_an_observer_hears_each_request_and_the_close() -> None:
    with serving("apps.basic:app") as server:
        recorder = server.state.observer = Recorder()
        connection = server.connect()
        responses, _ = parse_responses(connection.send(GET + GET), [False, False],
                                       closed=False)
        assert [status[:12] for status, _, _ in responses] == [b"HTTP/1.1 200"] * 2
        assert server.state.in_flight == 0
        connection.disconnect()
        assert recorder.events == ["request_started", "response_started",
                                   "request_finished"] * 2 + ["connection_closed"]


def test_a_refusal_starts_no_request() -> None:
    with serving("apps.basic:app") as server:
        recorder = server.state.observer = Recorder()
        connection = server.connect()
        connection.feed(b"GET /hello HTTP/1.1\r\nHost: x y\r\n\r\n")
        assert connection.read_until_closed().startswith(b"HTTP/1.1 400")
        assert recorder.events == ["connection_closed"]


def test_a_websocket_is_made_by_the_factory_and_its_close_is_heard() -> None:
    with serving("apps.ws_app:app") as server:
        recorder = server.state.observer = Recorder()
        protocols = server.state.protocols = RecordingProtocols()
        connection = server.connect()
        answer = connection.send(handshake("/echo"))
        assert answer.startswith(b"HTTP/1.1 101"), answer
        assert protocols.made == ["websocket /echo"]
        assert isinstance(connection.protocol, WebSocketProtocol)
        connection.disconnect()
        assert recorder.events[-1] == "connection_closed"
        assert recorder.events.count("connection_closed") == 1


def test_prior_knowledge_and_h2c_are_made_by_the_factory() -> None:
    with serving("apps.h2_app:app") as server:
        recorder = server.state.observer = Recorder()
        protocols = server.state.protocols = RecordingProtocols()
        h2c = server.h2_connect()
        assert h2c.get("/hello").body == b"Hello, world!"
        assert protocols.made == ["http2"]
        assert recorder.events == ["request_started", "response_started", "request_finished"]
        # h2c upgrade: the 101, then the same request answered as HTTP/2 stream 1.
        settings = base64.urlsafe_b64encode(b"").rstrip(b"=")
        connection = server.connect()
        answer = connection.send(b"GET /hello HTTP/1.1\r\nHost: test\r\n"
                                 b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                                 b"HTTP2-Settings: " + settings + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), answer
        assert protocols.made == ["http2", "http2"]
        assert isinstance(connection.protocol, H2Protocol)
        h2c.connection.disconnect()
        connection.disconnect()
        assert recorder.events.count("connection_closed") == 2
