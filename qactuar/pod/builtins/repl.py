"""`REPLServer`: a Python prompt inside the running event loop, on a Unix socket.

It is code execution in the server process, so it exists only when this
bean is configured, and only on a Unix socket whose file is created with
mode 0600 (the owner alone may connect; `path` is required).  Each line is
compiled as at the interactive prompt, with top-level `await` allowed; the
namespace has `context` (this bean's), `pod` (the pod's context), `loop` and
`asyncio`.  Expression values and `print` go back to the client.
Connect with e.g. `socat - UNIX-CONNECT:/path/to/repl.sock`.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import codeop
import contextlib
import contextvars
import inspect
import io
import os
import stat
import sys
import traceback
from typing import Any

from qactuar.config import ConfigError
from qactuar.logs import server_logger
from qactuar.pod.context import BeanContext

# The client the current REPL task writes to; the display hook reads it so a
# session's values go to that session and nowhere else.
_session: contextvars.ContextVar[io.StringIO] = contextvars.ContextVar("qactuar_repl")
_original_displayhook = sys.displayhook


def _displayhook(value: Any) -> None:
    out = _session.get(None)
    if out is None:
        _original_displayhook(value)
        return
    if value is not None:
        builtins._ = value  # type: ignore[attr-defined]
        out.write(repr(value) + "\n")


async def _remove_stale_socket(path: str) -> None:
    """Remove a socket file a dead process left at `path`; refuse anything else there.

    Never delete what is not a socket (a mistyped path must not cost a file),
    nor a socket something still listens on (another pod's REPL).
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"REPL path {path} exists and is not a socket: not replacing it")
    try:
        _, writer = await asyncio.open_unix_connection(path)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # stale: nobody listens
        return
    writer.close()
    raise FileExistsError(f"REPL path {path}: another process listens on it")


class REPLServer:
    """The bean: listen on `path` and give each connection its own prompt."""

    def __init__(self, context: BeanContext) -> None:
        self.context = context
        self.sessions = 0

    async def __call__(self, path: str) -> None:
        if not path:
            raise ConfigError("REPLServer needs path: the Unix socket to listen on")
        await _remove_stale_socket(path)
        old_umask = os.umask(0o177)  # the socket file is born 0600: no window for others
        try:
            listener = await asyncio.start_unix_server(self._session, path)
        finally:
            os.umask(old_umask)
        sys.displayhook = _displayhook
        server_logger.info("REPL (bean #%d) on unix:%s (mode 0600)", self.context.id, path)
        stopped = asyncio.Event()
        for sig in ("SIGINT", "SIGTERM"):
            await self.context.add_signal_handler(sig, stopped.set)
        self.context.ready()
        try:
            await stopped.wait()
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        out = io.StringIO()
        _session.set(out)
        namespace: dict[str, Any] = {"context": self.context, "pod": self.context.pod.context,
                                     "loop": asyncio.get_running_loop(), "asyncio": asyncio,
                                     "__name__": "__repl__"}
        namespace["print"] = lambda *args, **kwargs: builtins.print(
            *args, **{**kwargs, "file": kwargs.get("file") or out})
        compiler = codeop.CommandCompiler()
        compiler.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        source: list[str] = []
        writer.write(b"qactuar pod REPL: context, pod, loop, asyncio\n>>> ")
        try:
            while line := await reader.readline():
                source.append(line.decode("utf-8", "replace").rstrip("\r\n"))
                try:
                    code = compiler("\n".join(source), "<repl>", "single")
                except (SyntaxError, OverflowError, ValueError):
                    out.write(traceback.format_exc(limit=0))
                    code, source = None, []
                if code is None and source:
                    writer.write(b"... ")
                    continue
                source = []
                if code is not None:
                    await self._run(code, namespace, out)
                writer.write(out.getvalue().encode() + b">>> ")
                out.seek(0)
                out.truncate()
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _run(self, code: Any, namespace: dict[str, Any], out: io.StringIO) -> None:
        try:
            result = eval(code, namespace)
            if inspect.iscoroutine(result):
                await result
        except SystemExit:
            out.write("SystemExit ignored: this is the server's process\n")
        except BaseException:
            if isinstance(sys.exc_info()[1], asyncio.CancelledError) and \
                    asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
            kind, error, trace = sys.exc_info()
            # Not this module's frame: the user's code starts one level down.
            out.write("".join(traceback.format_exception(kind, error, trace and trace.tb_next)))
