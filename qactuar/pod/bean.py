"""What a bean is before it runs: its spec (the config dict, checked) and its three forms.

A bean's `core` is a coroutine object, a coroutine function (called with the
spec's keyword arguments; with the context first when marked `pass_context`)
or a class constructed with the context whose instances are awaited as
`instance(**kwargs)`.  This module imports and checks cores and turns a spec
into a fresh coroutine; it never schedules anything (that is `pod.py`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from qactuar.config import ConfigError

RESTART_POLICIES = ("temporary", "transient", "permanent")
PLACEMENTS = ("each_worker", "one_worker", "supervisor")
# Keys of a bean dict that configure the pod; every other key is a keyword argument.
RESERVED_BEAN_KEYS = ("core", "label", "restart", "max_restarts", "restart_period",
                      "backoff", "gate", "after", "placement")

_PASS_CONTEXT = "__qactuar_pod_pass_context__"
_LABEL = "__qactuar_pod_label__"


def pass_context(func: Any = None, *, label: str | None = None) -> Any:
    """Mark a coroutine function to get the bean's context as its first argument.

    Use as `@pass_context` or `@pass_context(label="name")`; the label is the
    bean's default label (a `label` in its config wins).
    """

    def mark(target: Any) -> Any:
        if not inspect.iscoroutinefunction(target):
            raise TypeError(f"pass_context needs a coroutine function, not {target!r}")
        setattr(target, _PASS_CONTEXT, True)
        setattr(target, _LABEL, label)
        return target

    return mark(func) if func is not None else mark


def describe_core(core: Any) -> str:
    """A bean's core for messages: its dotted path, or the object's module.qualname."""
    if isinstance(core, str):
        return core
    if inspect.ismodule(core):
        return f"module {core.__name__}"
    name = getattr(core, "__qualname__", None) or getattr(core, "__name__", None)
    module = getattr(core, "__module__", None)
    return f"{module}.{name}" if module and name else repr(core)


def import_core(path: str) -> Any:
    """`pkg.mod.attr` or `pkg.mod:attr` -> the object; ConfigError naming what failed.

    Without a colon the longest importable prefix is the module: `a.b.C.method`
    imports `a.b` and then looks up `C.method` on it.
    """
    module_name, colon, attribute = path.partition(":")
    pieces = attribute.split(".") if colon else path.split(".")
    if not module_name or not all(pieces) or (not colon and len(pieces) < 2):
        raise ConfigError(f"bean core {path!r}: expected a dotted path such as "
                          "'package.module.function'")
    if colon:
        return _lookup(path, _import(path, module_name), pieces)
    for at in range(len(pieces) - 1, 0, -1):
        module_name = ".".join(pieces[:at])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
                continue  # that prefix is not a module: try a shorter one
            raise ConfigError(f"bean core {path!r}: importing {module_name} failed: "
                              f"{exc}") from None
        except Exception as exc:  # the module itself raised while importing
            raise ConfigError(f"bean core {path!r}: importing {module_name} failed: "
                              f"{type(exc).__name__}: {exc}") from None
        return _lookup(path, module, pieces[at:])
    raise ConfigError(f"bean core {path!r}: no module named {pieces[0]!r}")


def _import(path: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"bean core {path!r}: importing {module_name} failed: "
                          f"{type(exc).__name__}: {exc}") from None


def _lookup(path: str, target: Any, names: list[str]) -> Any:
    for name in names:
        try:
            target = getattr(target, name)
        except AttributeError:
            raise ConfigError(f"bean core {path!r}: {describe_core(target)} has no "
                              f"attribute {name!r}") from None
    return target


def bean_form(core: Any) -> str:
    """'coroutine', 'function', 'context_function' or 'class'; ConfigError otherwise."""
    if inspect.iscoroutine(core):
        return "coroutine"
    if inspect.isclass(core):
        # Looked up on the class (and its bases), not on `type`, whose __call__ builds it.
        call = next((vars(base)["__call__"] for base in core.__mro__
                     if "__call__" in vars(base)), None)
        if call is not None and inspect.iscoroutinefunction(call):
            return "class"
        raise ConfigError(f"bean core {describe_core(core)}: a class bean needs "
                          "'async def __call__(self, **kwargs)'")
    if inspect.iscoroutinefunction(core):
        return "context_function" if getattr(core, _PASS_CONTEXT, False) else "function"
    raise ConfigError(f"bean core {describe_core(core)}: expected a coroutine, a coroutine "
                      f"function or a class with 'async def __call__', not "
                      f"{type(core).__name__}")


@dataclass
class BeanSpec:
    """One bean's configuration, checked: what to run and how to supervise it."""

    core: Any
    label: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    restart: str = "temporary"
    max_restarts: int = 5
    restart_period: float = 60.0
    backoff: float = 0.1
    gate: bool = False
    after: tuple[str, ...] = ()
    placement: str = "each_worker"
    form: str = ""
    path: str = ""  # the dotted path it was given as, for messages

    def __post_init__(self) -> None:
        if isinstance(self.core, str):
            self.path = self.core
            self.core = import_core(self.core)
        self.form = bean_form(self.core)
        if self.label is None:
            self.label = getattr(self.core, _LABEL, None)
        name = self.name
        if self.form == "coroutine":
            if self.kwargs:
                self.core.close()
                raise ConfigError(f"bean {name}: a coroutine object takes no keyword "
                                  f"arguments (got {', '.join(sorted(self.kwargs))})")
            if self.restart != "temporary":
                self.core.close()  # refused: it will never run, so no "never awaited" warning
                raise ConfigError(f"bean {name}: a coroutine object runs once; restart "
                                  f"{self.restart!r} needs a coroutine function or a class")
        else:
            self._check_keywords()

    @property
    def name(self) -> str:
        core = self.path or describe_core(self.core)
        return f"{core} (label {self.label!r})" if self.label else core

    def _check_keywords(self) -> None:
        """A keyword the core does not take is a config error now, not a crash later."""
        if self.form == "class":
            target, skip = self.core.__call__, 1  # self
        else:
            target, skip = self.core, 1 if self.form == "context_function" else 0
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):
            return  # a builtin or C callable: nothing to check against
        parameters = list(signature.parameters.values())[skip:]
        try:
            signature.replace(parameters=parameters).bind(**self.kwargs)
        except TypeError as exc:
            raise ConfigError(f"bean {self.name}: bad keyword arguments: {exc}") from None

    def coroutine(self, context: Any) -> tuple[Coroutine[Any, Any, Any], Any]:
        """A new coroutine for one run of the bean, and the class instance if any."""
        if self.form == "coroutine":
            return self.core, None
        if self.form == "function":
            return self.core(**self.kwargs), None
        if self.form == "context_function":
            return self.core(context, **self.kwargs), None
        instance = self.core(context)
        return instance(**self.kwargs), instance


def _restart_policy(value: Any, name: str) -> str:
    if value not in RESTART_POLICIES:
        raise ConfigError(f"bean {name}: restart = {value!r}: expected one of "
                          + ", ".join(RESTART_POLICIES))
    return value


def _number(value: Any, key: str, name: str, kind: type, minimum: float,
            strictly: bool = False) -> Any:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        ok = ok and isinstance(value, int)
    if not ok or value < minimum or (strictly and value == minimum):
        what = "an integer" if kind is int else "a number"
        bound = "above" if strictly else "of at least"
        raise ConfigError(f"bean {name}: {key} = {value!r}: expected {what} {bound} {minimum:g}")
    return value


def check_bean_entry(entry: Any, index: int) -> None:
    """Check a bean dict's shape and reserved keys without importing its core."""
    where = f"BEANS[{index}]"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} = {entry!r}: expected an object with a 'core' key")
    core = entry.get("core")
    if core is None:
        raise ConfigError(f"{where}: the 'core' key (the bean's dotted path) is missing")
    if isinstance(core, str) and not core.strip():
        raise ConfigError(f"{where}: core = {core!r}: expected a dotted path such as "
                          "'package.module.function'")
    if not isinstance(core, str) and not (callable(core) or inspect.iscoroutine(core)):
        raise ConfigError(f"{where}: core = {core!r}: expected a dotted path such as "
                          "'package.module.function'")
    name = f"{where} ({describe_core(core)})"
    label = entry.get("label")
    if label is not None and (not isinstance(label, str) or not label):
        raise ConfigError(f"bean {name}: label = {label!r}: expected a non-empty string")
    if "restart" in entry:
        _restart_policy(entry["restart"], name)
    if "max_restarts" in entry:
        _number(entry["max_restarts"], "max_restarts", name, int, 0)
    if "restart_period" in entry:
        _number(entry["restart_period"], "restart_period", name, float, 0, strictly=True)
    if "backoff" in entry:
        _number(entry["backoff"], "backoff", name, float, 0)
    if "gate" in entry and not isinstance(entry["gate"], bool):
        raise ConfigError(f"bean {name}: gate = {entry['gate']!r}: expected true or false")
    after = entry.get("after", ())
    if isinstance(after, str):
        after = (after,)
    if not isinstance(after, list | tuple) or not all(isinstance(a, str) and a for a in after):
        raise ConfigError(f"bean {name}: after = {entry['after']!r}: expected a label or a "
                          "list of labels")
    placement = entry.get("placement", "each_worker")
    if placement not in PLACEMENTS:
        raise ConfigError(f"bean {name}: placement = {placement!r}: expected one of "
                          + ", ".join(PLACEMENTS))


def spec_from_entry(entry: Mapping[str, Any], index: int = 0) -> BeanSpec:
    """A bean dict (from BEANS, the command line or `add_bean`) -> a checked BeanSpec."""
    check_bean_entry(entry, index)
    after = entry.get("after", ())
    return BeanSpec(
        core=entry["core"],
        label=entry.get("label"),
        kwargs={k: v for k, v in entry.items() if k not in RESERVED_BEAN_KEYS},
        restart=entry.get("restart", "temporary"),
        max_restarts=entry.get("max_restarts", 5),
        restart_period=float(entry.get("restart_period", 60.0)),
        backoff=float(entry.get("backoff", 0.1)),
        gate=entry.get("gate", False),
        after=(after,) if isinstance(after, str) else tuple(after),
        placement=entry.get("placement", "each_worker"),
    )


def load_specs(entries: list[Mapping[str, Any]]) -> list[BeanSpec]:
    """Import and check every bean of a BEANS list, in start order; ConfigError (one
    line) for the first bad one."""
    return check_order([spec_from_entry(entry, index) for index, entry in enumerate(entries)])


def check_order(specs: list[BeanSpec]) -> list[BeanSpec]:
    """The specs in start order (`after` first); ConfigError for unknown labels or cycles."""
    labels = {spec.label for spec in specs if spec.label}
    for spec in specs:
        for label in spec.after:
            if label not in labels:
                raise ConfigError(f"bean {spec.name}: after = {label!r}: no bean has that "
                                  "label")
    ordered: list[BeanSpec] = []
    placed: set[int] = set()
    remaining = list(specs)
    while remaining:
        ready = [s for s in remaining
                 if all(all(id(o) in placed for o in specs if o.label == label)
                        for label in s.after)]
        if not ready:
            names = ", ".join(s.name for s in remaining)
            raise ConfigError(f"beans {names}: their 'after' labels form a cycle")
        for spec in ready:
            ordered.append(spec)
            placed.add(id(spec))
            remaining.remove(spec)
    return ordered


def stop_levels(specs: list[BeanSpec]) -> dict[int, int]:
    """id(spec) -> depth in the `after` graph; stopping goes from the deepest level up."""
    by_label: dict[str, list[BeanSpec]] = {}
    for spec in specs:
        if spec.label:
            by_label.setdefault(spec.label, []).append(spec)
    depth: dict[int, int] = {}

    def level(spec: BeanSpec) -> int:
        if id(spec) not in depth:
            depth[id(spec)] = 0  # cycles were refused by check_order
            depth[id(spec)] = max((level(dep) + 1 for label in spec.after
                                   for dep in by_label.get(label, [])), default=0)
        return depth[id(spec)]

    for spec in specs:
        level(spec)
    return depth

