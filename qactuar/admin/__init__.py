"""The admin plane: a control API, Prometheus metrics, health probes and a dashboard.

Off unless `ADMIN` is set.  It is an ASGI app (`app.py`) served by Qactuar's own
HTTP/1.1 stack on `ADMIN_HOST:ADMIN_PORT` and/or `ADMIN_SOCKET` (`listen.py`): in
the one process of the async model, in the supervisor of prefork and postfork
(`plane.py`).  Serving processes only bump counters (`stats.py`); the supervisor
asks its workers for them when someone asks it (`channel.py`).  Only `listen.py`
(stdlib only) is imported by the models when the plane is off.
"""
