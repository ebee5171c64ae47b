"""Datagrams: UDP sockets for QUIC_BIND and UDP_BINDS, and ASGI apps on UDP.

`binding.py` binds the sockets before any fork (a lane per prefork worker);
`counters.py` counts what is dropped; `app_endpoint.py` serves the `udp`
scope (a Qactuar extension of ASGI, docs/http3-udp.md); `serving.py` starts
both kinds of endpoint in a serving process.
"""
