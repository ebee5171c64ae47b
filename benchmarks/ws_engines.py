"""`python -m benchmarks.ws_engines`: the WebSocket framing libraries side by side, in-process.

Issue 5 asked for the WebSocket framing to come from a maintained library's
sans-IO core, chosen by measuring the candidates.  This micro-benchmark is
that measurement, reproducible: for each library it runs the server side of
an echo on an already open connection (no sockets, no event loop, no ASGI),
one masked client text frame in, the decoded message out, the echo frame
back, and counts messages per second of CPU.  Rounds alternate between the
libraries (A B A B ...) so machine noise falls on both alike; the median is
reported.

- `websockets`: `websockets.protocol.Protocol` (what `protocols/websocket.py`
  uses); the text is decoded from UTF-8 here, as the server does.
- `wsproto`: `wsproto.connection.Connection` (what hypercorn and uvicorn's
  `--ws wsproto` use); it decodes text itself.

This module owns that measurement only; the end-to-end echo against other
servers is the `ws-echo` scenario of `python -m benchmarks`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

try:
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import Message, TextMessage
except ImportError:  # not a Qactuar dependency: only this comparison needs it
    raise SystemExit("benchmarks.ws_engines needs wsproto: pip install wsproto==1.3.2 "
                     "(pinned in benchmarks/requirements.txt)") from None

MAX_SIZE = 16 * 1024 * 1024
# (receive one client frame, return the bytes of its echo): one per library.
Echo = Callable[[bytes], bytes]


def websockets_echo() -> Echo:
    engine = Protocol(Side.SERVER, state=State.OPEN, max_size=MAX_SIZE)

    def echo(data: bytes) -> bytes:
        engine.receive_data(data)
        for frame in engine.events_received():
            engine.send_text(str(frame.data, "utf-8").encode())
        return b"".join(engine.data_to_send())

    return echo


def wsproto_echo() -> Echo:
    connection = Connection(ConnectionType.SERVER)

    def echo(data: bytes) -> bytes:
        connection.receive_data(data)
        out = b""
        for event in connection.events():
            if isinstance(event, TextMessage):
                out += connection.send(Message(data=event.data))
        return out

    return echo


ENGINES: dict[str, Callable[[], Echo]] = {"websockets": websockets_echo,
                                          "wsproto": wsproto_echo}


def client_frame(size: int) -> bytes:
    """One masked client text frame of `size` ASCII bytes."""
    return Frame(Opcode.TEXT, b"m" * size).serialize(mask=True, extensions=[])


def one_round(make_echo: Callable[[], Echo], frame: bytes, seconds: float) -> float:
    """Messages echoed per CPU-second over about `seconds`."""
    echo = make_echo()
    expected = len(echo(frame))  # the first echo also checks the engine answers
    if expected < len(frame) - 4:
        raise RuntimeError(f"{make_echo.__name__}: echo of {expected} bytes")
    count = 0
    started = time.process_time()
    deadline = started + seconds
    while True:
        for _ in range(1000):
            echo(frame)
        count += 1000
        now = time.process_time()
        if now >= deadline:
            return count / (now - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ws_engines",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="64,4096",
                        help="text message sizes in bytes (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per library (default 5)")
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="CPU seconds per round (default 0.5)")
    args = parser.parse_args(argv)
    for size in (int(text) for text in args.sizes.split(",")):
        frame = client_frame(size)
        rates: dict[str, list[float]] = {name: [] for name in ENGINES}
        for _ in range(args.rounds):
            for name, make_echo in ENGINES.items():
                rates[name].append(one_round(make_echo, frame, args.seconds))
        medians = {name: statistics.median(values) for name, values in rates.items()}
        for name, median in medians.items():
            print(f"{size:>6} B  {name:<10} {median:>10,.0f} msg/CPU-s  "
                  f"(rounds: {', '.join(f'{rate:,.0f}' for rate in rates[name])})")
        print(f"{size:>6} B  websockets / wsproto = "
              f"{medians['websockets'] / medians['wsproto']:.2f}")


if __name__ == "__main__":
    main()
