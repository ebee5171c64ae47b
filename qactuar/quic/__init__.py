"""QUIC for Qactuar (the optional `qactuar[h3]` extra, on aioquic).

`endpoint.py` owns a UDP socket's datagrams (the bounded queue, Retry, the
connection table, forwarding to the worker that owns a connection);
`cids.py` the connection IDs that name that worker; HTTP/3 itself is
`qactuar/protocols/http3.py`.  Nothing here is imported unless QUIC_BIND is set.
"""
