"""Mounting, replacing and unmounting apps while the server runs (GET/POST/DELETE /apps).

An app comes as "module:attr" (importable from the server's path) or from a git
repository: it is cloned into a fresh directory under the releases directory and
imported from there.  Either way it is first imported in a separate Python process,
so an app that does not import is refused with its error before any serving
process touches it.  Then each serving process imports it, runs its lifespan
startup, and swaps in a new router in one step (requests already running keep
the app they started with; none fails).  A failed startup leaves the old router.

Child processes run with `subprocess.Popen` and their output is read from a pipe
in the event loop: a supervisor reaps every child itself (`waitpid(-1)`), so
asyncio's child watchers must not be involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from qactuar.admin.app import HTTPError
from qactuar.asgi.lifespan import Lifespan, LifespanFailure
from qactuar.asgi.loader import AppLoadError, import_app
from qactuar.asgi.router import Mount, Router, normalise_prefix

# Import the app and run its lifespan startup and shutdown, in a process of its own.
IMPORT_CHECK = (
    "import asyncio, sys\n"
    "if sys.argv[2]:\n"
    "    sys.path.insert(0, sys.argv[2])\n"
    "from qactuar.asgi.lifespan import Lifespan\n"
    "from qactuar.asgi.loader import import_app\n"
    "async def check(app):\n"
    "    lifespan = Lifespan(app, sys.argv[3], repr(sys.argv[1]))\n"
    "    await lifespan.startup()\n"
    "    await lifespan.shutdown(10)\n"
    "try:\n"
    "    asyncio.run(check(import_app(sys.argv[1])))\n"
    "except Exception as exc:\n"
    "    print('ERROR ' + (str(exc).splitlines() or [type(exc).__name__])[0])\n"
    "else:\n"
    "    print('OK')\n"
)
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def parse_request(body: dict[str, Any]) -> dict[str, str]:
    """The route, app and optional git source of a POST /apps body; 400 naming the problem."""
    known = {"route", "app", "git", "ref"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise HTTPError(400, f"unknown key {unknown[0]!r}: POST /apps takes "
                             "route, app and optionally git and ref")
    for key in ("route", "app"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise HTTPError(400, f"{key} is required (a string)")
    if not body["route"].startswith("/"):
        raise HTTPError(400, f"route {body['route']!r} must start with /")
    if not _TARGET.match(body["app"]):
        raise HTTPError(400, f'app {body["app"]!r} must be "module:attribute"')
    for key in ("git", "ref"):
        if key in body and not isinstance(body[key], str):
            raise HTTPError(400, f"{key} must be a string")
    if "ref" in body and "git" not in body:
        raise HTTPError(400, "ref is given without git")
    return {"route": normalise_prefix(body["route"]), "app": body["app"],
            "git": body.get("git", ""), "ref": body.get("ref", "")}


async def _run(args: list[str], cwd: str | None = None, timeout: float = 120,
               env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a command; its exit status and its output (stdout and stderr together).

    A shell prints the exit status as the last line: in a supervisor the process
    is reaped by the supervisor's own `waitpid(-1)`, so ours would never see it.
    """
    args = ["/bin/sh", "-c", '"$@"; s=$?; echo; echo "exit status $s"', "sh", *args]
    process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL,
                               env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})})
    assert process.stdout is not None
    fd = process.stdout.fileno()
    os.set_blocking(fd, False)
    loop = asyncio.get_running_loop()
    chunks: list[bytes] = []
    finished = loop.create_future()

    def readable() -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                data = os.read(fd, 65536)
                if not data:
                    if not finished.done():
                        finished.set_result(None)
                    return
                chunks.append(data)

    loop.add_reader(fd, readable)
    try:
        await asyncio.wait_for(finished, timeout)
    except TimeoutError:
        process.kill()
        raise HTTPError(504, f"{args[4]} did not finish within {timeout:g}s") from None
    finally:
        loop.remove_reader(fd)
        process.stdout.close()
    with contextlib.suppress(ChildProcessError):
        process.poll()  # reap it here when nobody else does (the async model)
    output, _, last = b"".join(chunks).decode("utf-8", "replace").rstrip().rpartition("\n")
    status = last.removeprefix("exit status ")
    return (int(status) if status.isdigit() else 1), output


async def check_import(target: str, path: str, lifespan_mode: str) -> None:
    """Import `target` and run its lifespan in a fresh Python process; 422 with the
    error if either fails."""
    # The server's own import path (its --app-dir included), so the check imports
    # what the server would.
    search_path = os.pathsep.join(entry for entry in sys.path if entry)
    _, output = await _run([sys.executable, "-c", IMPORT_CHECK, target, path, lifespan_mode],
                           cwd=os.getcwd(), env={"PYTHONPATH": search_path})
    lines = output.strip().splitlines()
    if not lines or lines[-1] != "OK":
        reason = next((line[len("ERROR "):] for line in lines if line.startswith("ERROR ")),
                      lines[-1] if lines else "the import check printed nothing")
        raise HTTPError(422, f"app refused, the running apps are untouched: {reason}")


async def clone_release(url: str, ref: str, releases: Path, route: str) -> Path:
    """Clone `url` at `ref` into a new directory under `releases`; 422 if git cannot."""
    releases.mkdir(parents=True, exist_ok=True)
    name = (route.strip("/").replace("/", "_") or "root") + time.strftime("-%Y%m%dT%H%M%S")
    target = Path(tempfile.mkdtemp(prefix=name + "-", dir=releases))
    code, output = await _run(["git", "clone", "--quiet", "--no-checkout", "--", url,
                               str(target)])
    if code:
        raise HTTPError(422, f"git clone {url} failed: {_last_line(output)}")
    code, output = await _run(["git", "-c", "advice.detachedHead=false", "checkout", "--quiet",
                               ref or "HEAD", "--"], cwd=str(target))
    if code:
        raise HTTPError(422, f"git checkout {ref!r} of {url} failed: {_last_line(output)}")
    return target


def _last_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def import_fresh(target: str, path: str) -> Any:
    """Import `target`, from `path` first when given (a release: modules of an earlier
    release of the same name are dropped first, so the new code is what runs)."""
    if path:
        top = target.partition(":")[0].split(".")[0]
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
        sys.path.insert(0, path)
    try:
        return import_app(target)
    except AppLoadError as exc:
        raise HTTPError(422, f"app refused, the running apps are untouched: {exc}") from None
    finally:
        if path:
            with contextlib.suppress(ValueError):
                sys.path.remove(path)


def new_mount(route: str, target: str, app: Any, lifespan_mode: str) -> Mount:
    return Mount(route, app, Lifespan(app, lifespan_mode, repr(target)))


async def start_mount(mount: Mount) -> None:
    """Run the new app's lifespan startup; 500 with its reason if it fails."""
    try:
        await mount.lifespan.startup()
    except LifespanFailure as exc:
        mount.lifespan.cancel()
        raise HTTPError(500, f"app refused, the running apps are untouched: {exc}") from None


def replaced(mounts: list[Mount], mount: Mount | None, route: str) -> tuple[list[Mount],
                                                                            Mount | None]:
    """`mounts` with `mount` at `route` (None: nothing there); and the mount it replaces."""
    old = next((m for m in mounts if m.prefix == route), None)
    kept = [m for m in mounts if m.prefix != route]
    return ([*kept, mount] if mount is not None else kept), old


class ProcessApps:
    """Mounting in one serving process (the async server, or one prefork worker)."""

    def __init__(self, state: Any, config: Any) -> None:
        self.state = state
        self.config = config
        self.previous: dict[str, Mount | None] = {}  # route -> what was there before

    async def mount(self, route: str, target: str, path: str) -> None:
        app = import_fresh(target, path)
        mount = new_mount(route, target, app, self.config.LIFESPAN)
        await start_mount(mount)
        mounts, old = replaced(list(self.state.router.mounts), mount, route)
        self.state.router = Router(mounts)  # one assignment: a request sees old or new
        self.previous[route] = old
        if old is not None:
            await old.lifespan.shutdown(self.config.SHUTDOWN_TIMEOUT)

    async def unmount(self, route: str) -> bool:
        mounts, old = replaced(list(self.state.router.mounts), None, route)
        if old is None:
            return False
        self.state.router = Router(mounts)
        await old.lifespan.shutdown(self.config.SHUTDOWN_TIMEOUT)
        return True

    def describe(self) -> list[dict[str, str]]:
        return describe_mounts(self.state.router.mounts)


def describe_mounts(mounts: list[Mount]) -> list[dict[str, str]]:
    return [{"route": m.prefix or "/", "app": m.lifespan.label.strip("'")}
            for m in sorted(mounts, key=lambda m: m.prefix)]


def releases_dir(config: Any) -> Path:
    return Path(config.ADMIN_RELEASES_DIR or os.path.join(tempfile.gettempdir(),
                                                          f"qactuar-releases-{os.getuid()}"))
