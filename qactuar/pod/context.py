"""The contexts through which beans and apps reach the pod, and signal dispatch.

`PodContext` is the pod as the rest of the process sees it (find beans by id
or label, wait for them, send signals, add and remove beans at run time);
`current_pod()` returns the running one.  `BeanContext` is one bean's view:
the same, plus its own id, label, class instance, readiness and signal
callbacks.  `SignalHub` delivers a signal to the callbacks beans registered.
Scheduling and supervision live in `pod.py`; this module only forwards.
"""

from __future__ import annotations

import asyncio
import inspect
import signal as _signal
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from qactuar.logs import exception_logger

if TYPE_CHECKING:
    from qactuar.pod.pod import Bean, Pod

_current: PodContext | None = None


class UnknownBean(LookupError):
    """No bean has the id or label asked for."""


def current_pod() -> PodContext:
    """The context of the pod running in this process (raises LookupError if none)."""
    if _current is None:
        raise LookupError("no pod runs in this process (no BEANS configured here)")
    return _current


def set_current_pod(context: PodContext | None) -> None:
    global _current
    _current = context


def signal_name(sig: Any) -> Any:
    """signal.SIGTERM, 15 and "SIGTERM" are one signal; other keys are used as given."""
    if isinstance(sig, _signal.Signals):
        return sig.name
    if isinstance(sig, int) and not isinstance(sig, bool):
        try:
            return _signal.Signals(sig).name
        except ValueError:
            return sig
    return sig


def _accepted_kwargs(callback: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Only the keyword arguments a callback can take (`def on_stop(self)` gets none)."""
    try:
        parameters = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return kwargs
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = {p.name for p in parameters if p.kind in named}
    return {k: v for k, v in kwargs.items() if k in names}


class SignalHub:
    """Signal name -> the callbacks beans registered for it, each with its bean's id."""

    def __init__(self) -> None:
        self.handlers: dict[Any, list[tuple[int | None, Callable[..., Any]]]] = {}

    def connect(self, sig: Any, callback: Callable[..., Any], owner: int | None) -> None:
        self.handlers.setdefault(signal_name(sig), []).append((owner, callback))

    def disconnect(self, sig: Any, callback: Callable[..., Any], owner: int | None) -> None:
        entries = self.handlers.get(signal_name(sig), [])
        if (owner, callback) in entries:
            entries.remove((owner, callback))

    def drop_owner(self, owner: int) -> None:
        for entries in self.handlers.values():
            entries[:] = [entry for entry in entries if entry[0] != owner]

    def owners(self, sig: Any) -> set[int | None]:
        return {owner for owner, _ in self.handlers.get(signal_name(sig), [])}

    async def dispatch(self, sig: Any, owners: set[int] | None = None, **kwargs: Any) -> int:
        """Call every callback for `sig` (of the `owners` beans, or all); return how many.

        Callbacks get `signal`, `keys` (the signals delivered) and `senders`
        (the bean ids addressed, None for all) besides the sender's keyword
        arguments; async callbacks run concurrently.  A callback that raises
        is logged with its traceback and does not stop the others.
        """
        name = signal_name(sig)
        targets = [callback for owner, callback in list(self.handlers.get(name, []))
                   if owners is None or owner in owners]
        arguments = {"signal": name, "keys": [name], "senders": owners, **kwargs}
        pending = []
        for callback in targets:
            try:
                result = callback(**_accepted_kwargs(callback, arguments))
            except Exception:
                exception_logger.exception("signal %s: callback %r raised", name, callback)
                continue
            if inspect.isawaitable(result):
                pending.append(asyncio.ensure_future(result))
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(outcome, Exception):
                exception_logger.error("signal %s: a callback raised", name, exc_info=outcome)
        return len(targets)


class PodContext:
    """The pod as beans and apps see it."""

    def __init__(self, pod: Pod) -> None:
        self.pod = pod

    @property
    def config(self) -> Any:
        """The settings the pod was started with (the config file's names, or the server's
        Config)."""
        return self.pod.settings

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.pod.loop

    @property
    def beans(self) -> list[Bean]:
        """Every bean the pod knows, in start order."""
        return list(self.pod.beans.values())

    def get_beans(self, bid_or_label: int | str) -> list[Bean]:
        """The beans with this id (int) or label (str); UnknownBean if there are none."""
        return self.pod.get_beans(bid_or_label)

    def get_bean(self, bid_or_label: int | str) -> Bean:
        """The first bean with this id or label; UnknownBean if there is none."""
        return self.pod.get_beans(bid_or_label)[0]

    async def wait_beans_done(self, bid_or_label: int | str) -> None:
        """Wait until every bean with this id or label has finished for good."""
        for bean in self.pod.get_beans(bid_or_label):
            await bean.done_event.wait()

    async def send_signal(self, sig: Any, labels: str | Iterable[str] | None = None,
                          **kwargs: Any) -> int:
        """Deliver `sig` to the callbacks of the beans with these labels (all if None)."""
        owners = None
        if labels is not None:
            if isinstance(labels, str):
                labels = [labels]
            owners = {bean.id for label in labels for bean in self.pod.get_beans(label)}
        return await self.pod.signals.dispatch(sig, owners, **kwargs)

    def add_bean(self, core: Any, label: str | None = None, **kwargs: Any) -> Bean:
        """Start a new bean now: `core` as in BEANS (a dotted path or the object), `label`,
        and its keyword arguments (the reserved keys `restart`, `after`... included)."""
        return self.pod.add_bean(core, label, **kwargs)

    async def remove_bean(self, bid_or_label: int | str) -> list[Bean]:
        """Cancel the beans with this id or label, wait for them, forget them."""
        return await self.pod.remove_beans(bid_or_label)

    async def cancel_bean(self, bid_or_label: int | str) -> list[Bean]:
        """Cancel the beans with this id or label and wait for them; they stay listed
        (state `cancelled`) and are not restarted."""
        return await self.pod.cancel_beans(bid_or_label)

    async def restart_bean(self, bid_or_label: int | str) -> list[Bean]:
        """Cancel the beans with this id or label and start them again (their `restarts`
        count goes up by one; ValueError for a coroutine-object bean, which runs once)."""
        return await self.pod.restart_beans(bid_or_label)

    def __repr__(self) -> str:
        return f"<PodContext {len(self.pod.beans)} bean(s)>"


class BeanContext(PodContext):
    """One bean's context: the pod's, plus what belongs to this bean."""

    def __init__(self, pod: Pod, bean: Bean) -> None:
        super().__init__(pod)
        self._bean = bean

    @property
    def id(self) -> int:
        return self._bean.id

    @property
    def label(self) -> str | None:
        return self._bean.label

    @property
    def bean(self) -> Bean:
        return self._bean

    @property
    def instance(self) -> Any:
        """The class bean's current instance (None for the function forms)."""
        return self._bean.instance

    def ready(self) -> None:
        """Say this bean is ready: `gate` beans hold the listening socket until then,
        and beans started `after` this one wait for it."""
        self._bean.mark_ready()

    async def add_signal_handler(self, sig: Any, callback: Callable[..., Any]) -> None:
        """Call `callback` (sync or async) when `sig` is sent to this bean; SIGINT and
        SIGTERM are sent when the process is asked to stop."""
        self.pod.signals.connect(sig, callback, self._bean.id)

    async def remove_signal_handler(self, sig: Any, callback: Callable[..., Any]) -> None:
        self.pod.signals.disconnect(sig, callback, self._bean.id)

    def __repr__(self) -> str:
        return f"<BeanContext id={self.id} label={self.label!r}>"
