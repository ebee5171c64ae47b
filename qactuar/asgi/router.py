"""APPS: which app serves a path, by the longest matching route prefix.

Each mounted app keeps its own lifespan and `state`.  `root_path` becomes the
mount prefix while `path` stays the full path, as Starlette's `Mount` expects.
"""

from __future__ import annotations

from typing import Any

from qactuar.asgi.lifespan import Lifespan


class Mount:
    """One app of APPS: its route prefix, the app and the app's lifespan.

    Compiled (router.pxd) it is an extension type, so the protocols read its
    fields per request without a dictionary look-up.
    """

    __slots__ = ("app", "lifespan", "prefix", "state")

    def __init__(self, prefix: str, app: Any, lifespan: Lifespan) -> None:
        self.prefix = prefix  # "" for the root, else "/api" (no trailing slash)
        self.app = app
        self.lifespan = lifespan
        # The lifespan's own dict (it never replaces it): each request's scope
        # gets a copy, filled by the app's startup.
        self.state: dict[str, Any] = lifespan.state

    def __repr__(self) -> str:
        return f"Mount(prefix={self.prefix!r}, app={self.app!r})"


def normalise_prefix(route: str) -> str:
    route = "/" + route.strip("/")
    return "" if route == "/" else route


class Router:
    def __init__(self, mounts: list[Mount]) -> None:
        # Longest prefix first so the first match is the most specific one.
        self.mounts = sorted(mounts, key=lambda m: len(m.prefix), reverse=True)
        only_root = len(self.mounts) == 1 and not self.mounts[0].prefix
        # The one mount that serves every path, if that is the whole table.
        self.only = self.mounts[0] if only_root else None

    def resolve(self, path: str) -> Mount | None:
        if self.only is not None:
            return self.only
        for mount in self.mounts:
            prefix = mount.prefix
            if not prefix or path == prefix or path.startswith(prefix + "/"):
                return mount
        return None
