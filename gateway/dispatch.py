"""Calling hooks: always through pluggy's hook callers, awaiting what may be async.

Every call goes through a :class:`pluggy.HookCaller` (``pm.hook.<name>``, or one made by
``pm.subset_hook_caller``), so pluggy's order (``tryfirst``, then the newest registration
first, then ``trylast``), its wrappers (``wrapper=True`` and old-style
``hookwrapper=True``) and its tracing (``GATEWAY_TRACE_HOOKS=1``) apply to every call.

pluggy is synchronous and its ``firstresult`` stops at the first value that is not
``None``, which an async implementation's coroutine always is. So the core adapts each
implementation once, when its plugin is registered (:func:`adapt_implementations`):

- A **registration hook** (``register_*``) runs while the app is created and must
  return data. Its adapter calls the function, refuses a coroutine, and notes which
  plugin returned which object, so that every registered item is attributed to its
  plugin (duplicate names and wrong types are reported naming it). The hook is called
  once; a wrapper sees and may change the whole list, exactly as pluggy documents.
- A **runtime hook** (every other hook: ``authenticate``, ``lookup_contact``,
  ``startup``, ``shutdown``, ...) may be ``async def``. Its adapter does not run the
  function: it returns a :class:`HookCall`, an awaitable that runs the implementation
  (plain or async) when awaited and names its plugin. Calling the hook therefore only
  collects one pending call per implementation, in pluggy's call order (wrappers see and
  may reorder, drop or add to that list; a plain value they add counts as an answer).
  The core then awaits the calls one after another: :func:`call_each` awaits all of
  them; :func:`first_result` stops at the first answer other than ``None``, and the
  later implementations never run, plain functions included, because nothing ran at
  call time. One implementation failing is its own exception, so shutdown can log it
  and go on with the others.

What a wrapper cannot see on a runtime hook is the awaited answer: its code after
``yield`` runs when the pending calls are collected, before any of them ran. To act on
the answer, return the list with your own awaitable around one of its items.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import pluggy

from gateway.errors import StartupError

# Items a hook wrapper added (no implementation returned them) are reported under this.
WRAPPER = "a hook wrapper"

_CAPTURED: contextvars.ContextVar[list[tuple[str, Any]] | None] = contextvars.ContextVar(
    "gateway_hook_results", default=None
)


async def await_me_maybe(value: Any) -> Any:
    """Await ``value`` if it is awaitable; hook implementations may be sync or async."""
    if inspect.isawaitable(value):
        return await value
    return value


def is_registration_hook(hook_name: str) -> bool:
    return hook_name.startswith("register_")


class HookCall:
    """One runtime hook implementation, not yet run. Awaiting it runs it once."""

    __slots__ = ("args", "function", "kwargs", "plugin")

    def __init__(
        self, plugin: str, function: Callable[..., Any], args: tuple[Any, ...], kwargs: Any
    ) -> None:
        self.plugin, self.function, self.args, self.kwargs = plugin, function, args, kwargs

    def __await__(self) -> Any:
        return self._run().__await__()

    async def _run(self) -> Any:
        return await await_me_maybe(self.function(*self.args, **(self.kwargs or {})))

    def __repr__(self) -> str:  # what hook tracing prints for a call's results
        return f"<HookCall {self.plugin}>"


def _registration_adapter(hook: str, plugin: str, function: Callable[..., Any]) -> Any:
    @functools.wraps(function)
    def registration(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if inspect.isawaitable(result):
            close = getattr(result, "close", None)
            if close is not None:
                close()
            raise StartupError(f"plugin '{plugin}': {hook} must return data, not a coroutine")
        captured = _CAPTURED.get()
        if captured is not None:
            captured.append((plugin, result))
        return result

    return registration


def _runtime_adapter(plugin: str, function: Callable[..., Any]) -> Any:
    @functools.wraps(function)
    def runtime(*args: Any, **kwargs: Any) -> HookCall:
        return HookCall(plugin, function, args, kwargs)

    return runtime


def adapt_implementations(pm: pluggy.PluginManager, plugin: object) -> None:
    """Adapt the just-registered ``plugin``'s implementations (see the module docstring).
    Wrappers are left alone: pluggy drives them itself."""
    for caller in pm.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin or impl.wrapper or impl.hookwrapper:
                continue
            if is_registration_hook(caller.name):
                adapted = _registration_adapter(caller.name, impl.plugin_name, impl.function)
            else:
                adapted = _runtime_adapter(impl.plugin_name, impl.function)
            # pluggy calls ``HookImpl.function``; the arguments it passes were worked out
            # from the original function when the plugin was registered.
            impl.function = adapted  # type: ignore[misc]


def hook_caller(pm: pluggy.PluginManager, hook: str | pluggy.HookCaller) -> pluggy.HookCaller:
    """``pm.hook.<hook>``, or ``hook`` itself when it already is a caller (for example
    one from ``pm.subset_hook_caller``)."""
    return getattr(pm.hook, hook) if isinstance(hook, str) else hook


def _wrapper_names(caller: pluggy.HookCaller) -> str:
    names = [i.plugin_name for i in caller.get_hookimpls() if i.wrapper or i.hookwrapper]
    return f"{WRAPPER} ({', '.join(names)})" if names else WRAPPER


def _as_list(caller: pluggy.HookCaller, results: Any) -> list[Any]:
    if not isinstance(results, list):
        raise StartupError(
            f"{_wrapper_names(caller)}: {caller.name} must give back a list of results, "
            f"not {type(results).__name__}"
        )
    return results


def call_each_sync(
    pm: pluggy.PluginManager, hook: str | pluggy.HookCaller, **kwargs: Any
) -> list[tuple[str, Any]]:
    """Call a registration hook once (no event loop needed) and say who returned what.

    :return: ``[(plugin_name, result)]`` in pluggy's call order, ``None`` results left out.
    :raises StartupError: an implementation returned a coroutine.
    """
    caller = hook_caller(pm, hook)
    token = _CAPTURED.set([])
    try:
        results = _as_list(caller, caller(**kwargs))
        captured = _CAPTURED.get() or []
    finally:
        _CAPTURED.reset(token)
    return _attributed(captured, results, _wrapper_names(caller))


def _attributed(
    captured: list[tuple[str, Any]], results: list[Any], unknown: str
) -> list[tuple[str, Any]]:
    """Pair each result with the plugin that returned it, by identity. A wrapper may have
    rebuilt a list: its items are then attributed one by one, and what no implementation
    returned is put down to the wrapper."""
    owners: dict[int, str] = {}
    for plugin, result in captured:
        owners[id(result)] = plugin
        if isinstance(result, list | tuple):
            owners.update((id(item), plugin) for item in result)
    out: list[tuple[str, Any]] = []
    for result in results:
        if result is None:
            continue
        if id(result) in owners or not isinstance(result, list | tuple):
            out.append((owners.get(id(result), unknown), result))
            continue
        for item in result:
            owner = owners.get(id(item), unknown)
            if out and out[-1][0] == owner and isinstance(out[-1][1], _Items):
                out[-1][1].append(item)
            else:
                out.append((owner, _Items([item])))
    return out


class _Items(list):
    """Part of a list a wrapper rebuilt, regrouped by the plugin of each item."""


def pending_calls(
    pm: pluggy.PluginManager, hook: str | pluggy.HookCaller, **kwargs: Any
) -> list[tuple[str, Any]]:
    """Call a runtime hook: ``[(plugin_name, awaitable or value)]`` in call order, none of
    them run yet (plain values were put there by a wrapper)."""
    caller = hook_caller(pm, hook)
    results = _as_list(caller, caller(**kwargs))
    return [(getattr(r, "plugin", None) or _wrapper_names(caller), r) for r in results]


def discard(pending: Iterable[tuple[str, Any]]) -> None:
    """Drop calls that will not be awaited (a wrapper may have added bare coroutines)."""
    for _plugin, item in pending:
        if inspect.iscoroutine(item):
            item.close()


async def call_each(
    pm: pluggy.PluginManager, hook: str | pluggy.HookCaller, **kwargs: Any
) -> list[tuple[str, Any]]:
    """Call a runtime hook and await every implementation in turn (each finishes before
    the next starts). An exception stops the rest, and propagates.

    :return: ``[(plugin_name, result)]``, ``None`` results left out.
    """
    out: list[tuple[str, Any]] = []
    pending = pending_calls(pm, hook, **kwargs)
    for index, (plugin, item) in enumerate(pending):
        try:
            result = await await_me_maybe(item)
        except BaseException:
            discard(pending[index + 1 :])
            raise
        if result is not None:
            out.append((plugin, result))
    return out


async def first_result(
    pm: pluggy.PluginManager, hook: str | pluggy.HookCaller, **kwargs: Any
) -> Any:
    """The first answer other than ``None``, in call order; later implementations do not
    run. An exception ends the call (and propagates), as an answer would."""
    pending = pending_calls(pm, hook, **kwargs)
    for index, (_plugin, item) in enumerate(pending):
        try:
            result = await await_me_maybe(item)
        except BaseException:
            discard(pending[index + 1 :])
            raise
        if result is not None:
            discard(pending[index + 1 :])
            return result
    return None
