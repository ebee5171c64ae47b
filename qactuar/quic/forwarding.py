"""Passing a QUIC packet to the prefork worker that owns its connection.

Each worker binds a Unix datagram socket in Linux's abstract namespace, named
by its supervisor's random `namespace` and its slot, and reads packets other
workers forward to it; a packet carries the client's address before its
bytes.  Nothing is written to the file system, and a restarted worker in the
same slot binds the same name again.  Linux only, as SO_REUSEPORT's
load balancing of UDP sockets is.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any

_HEAD = struct.Struct("!BH")  # host length, port


def inbox_name(namespace: str, slot: int) -> str:
    return f"\0qactuar-quic-{namespace}-{slot}"


class Forwarder:
    """A worker's inbox for packets forwarded to it, and its way of forwarding them on."""

    def __init__(self, namespace: str, slot: int) -> None:
        self.namespace = namespace
        self.inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.inbox.bind(inbox_name(namespace, slot))
        self.inbox.setblocking(False)
        self.outbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.outbox.setblocking(False)
        self._loop: asyncio.AbstractEventLoop | None = None

    def send(self, owner: int, data: bytes, addr: Any) -> bool:
        """Forward one packet; False when the owner is not there (or not keeping up)."""
        host = str(addr[0]).encode()
        try:
            self.outbox.sendto(_HEAD.pack(len(host), int(addr[1])) + host + data,
                               inbox_name(self.namespace, owner))
        except OSError:
            return False
        return True

    def start(self, loop: asyncio.AbstractEventLoop,
              deliver: Callable[[bytes, tuple[str, int]], None]) -> None:
        """Hand each forwarded packet to `deliver(data, client address)`."""
        self._loop = loop

        def read() -> None:
            for _ in range(64):  # a batch, then the loop's other work
                try:
                    message = self.inbox.recv(65536)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                if len(message) < _HEAD.size:
                    continue
                size, port = _HEAD.unpack_from(message)
                start = _HEAD.size + size
                deliver(message[start:], (message[_HEAD.size:start].decode(), port))

        loop.add_reader(self.inbox.fileno(), read)

    def close(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.inbox.fileno())
        self.inbox.close()
        self.outbox.close()
