"""APPS: which app serves a path, by the longest matching route prefix.

Each mounted app keeps its own lifespan and `state`.  `root_path` becomes the
mount prefix while `path` stays the full path, as Starlette's `Mount` expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qactuar.asgi.lifespan import Lifespan


@dataclass(slots=True)
class Mount:
    prefix: str  # "" for the root, else "/api" (no trailing slash)
    app: Any
    lifespan: Lifespan

    @property
    def state(self) -> dict[str, Any]:
        return self.lifespan.state


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
