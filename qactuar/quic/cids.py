"""Connection IDs that name the worker owning a QUIC connection.

Every connection ID this server hands out (the ones aioquic makes for a
connection, and the source ID of a Retry) starts with two bytes: the serving
process's slot (0 in the async model, the prefork worker's slot otherwise),
then random bytes.  A packet that reaches a worker other than its connection's
owner (a prefork worker restarted, a client whose address changed) is read by
its destination ID and forwarded to the owner (endpoint.py).  Only the
client's first Initial carries an ID of the client's choosing: whoever reads it
owns the new connection, and with Retry (the default) even that is the issuer's.
"""

from __future__ import annotations

import os

from aioquic.quic.connection import QuicConnection, QuicConnectionId

CID_LENGTH = 8
TAG_LENGTH = 2


def tag_of(slot: int) -> bytes:
    return slot.to_bytes(TAG_LENGTH, "big")


def new_cid(tag: bytes) -> bytes:
    return tag + os.urandom(CID_LENGTH - TAG_LENGTH)


def owner_of(cid: bytes) -> int | None:
    """The slot named by one of our connection IDs (None: not one of ours by its size)."""
    if len(cid) != CID_LENGTH:
        return None
    return int.from_bytes(cid[:TAG_LENGTH], "big")


class OwnedQuicConnection(QuicConnection):
    """An aioquic server connection whose every host connection ID carries `tag`."""

    def __init__(self, *, tag: bytes, **kwargs: object) -> None:
        self._owner_tag = tag
        super().__init__(**kwargs)  # type: ignore[arg-type]
        # aioquic picks the first ID at random in its constructor: replaced before any
        # packet is built, so the handshake's transport parameters carry ours.
        first = self._host_cids[0]
        first.cid = new_cid(tag)
        self.host_cid = first.cid
        self._local_initial_source_connection_id = first.cid

    def _replenish_connection_ids(self) -> None:
        # The same loop as aioquic's, with our IDs (aioquic 1.x, pinned in pyproject.toml).
        while len(self._host_cids) < min(8, self._remote_active_connection_id_limit):
            self._host_cids.append(QuicConnectionId(
                cid=new_cid(self._owner_tag), sequence_number=self._host_cid_seq,
                stateless_reset_token=os.urandom(16)))
            self._host_cid_seq += 1
