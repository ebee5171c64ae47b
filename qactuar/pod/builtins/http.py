"""`HTTPServer`: Qactuar's own HTTP server as a bean, serving ASGI apps beside other beans.

Keyword arguments: `app` ("module:attr" or the app) and any Config key in
lower case (`host`, `port`, `apps`, `access_log`...).  It runs the async
model's serving loop in the pod's event loop; the apps reach the pod
through `scope["state"]["pod"]` and `qactuar.pod.current_pod()`.  The bean is
ready once it listens; SIGINT/SIGTERM from the pod start its graceful stop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qactuar.config import load_config
from qactuar.pod.context import BeanContext


class HTTPServer:
    """The bean: serve `app` (or the `apps` setting) until the pod stops it."""

    def __init__(self, context: BeanContext) -> None:
        self.context = context
        self.config: Any = None

    async def __call__(self, app: Any = None, **settings: Any) -> int:
        from qactuar.models.aio import ProcessRole, serve
        from qactuar.server import build_mounts
        from qactuar.sockets import bind_all, close_all, tls_context

        overrides = {key.upper(): value for key, value in settings.items()}
        config = self.config = load_config(overrides, environ={})
        mounts = build_mounts(config, app)
        for mount in mounts:
            mount.lifespan.state["pod"] = self.context.pod.context
        stops: list[Callable[[], None]] = []

        def stop(**kwargs: Any) -> None:
            for stop_now in stops:
                stop_now()

        for sig in ("SIGINT", "SIGTERM"):
            await self.context.add_signal_handler(sig, stop)
        role = ProcessRole(model="async", stop_signals=(),
                           on_start=lambda state, stop_now: stops.append(stop_now),
                           on_listening=self.context.ready)
        ssl_context = tls_context(config)
        sockets = bind_all(config)
        try:
            return await serve(config, mounts, sockets, ssl_context, role)
        finally:
            close_all(sockets)
