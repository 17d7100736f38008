"""A translated function's header: `async def`, its session parameter retyped (`AsyncDB`
in a route, `AsyncSession` in a helper), and the whole-function fallback that calls the
original through `await db.run_sync(...)`.

    edit = signature_edit(function, param, needed)   # def get_user(db: Session, ...) ->
    new = edit(function)                             # async def get_user(db: AsyncSession, ...)
"""

from __future__ import annotations

from typing import Any

import libcst as cst

from gateway.translate.edits import Edit
from gateway.translate.source import is_route
from gateway.translate.summary import mark_lines

__all__ = ["async_signature", "legacy_delegate", "signature_edit", "whole_fallback"]


def signature_edit(
    function: cst.FunctionDef,
    param: cst.Param | None,
    needed: set[str],
    body: list[Any] | None = None,
) -> Edit:
    """The edit making `function` async (its body replaced by `body` when given); the names
    its header needs are added to `needed` when the edit runs."""
    route = is_route(function)

    def edit(updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.FunctionDef)
        if body is not None:
            updated = updated.with_changes(body=updated.body.with_changes(body=body))
        return async_signature(updated, param, route, needed)

    return edit


def whole_fallback(
    function: cst.FunctionDef,
    qualname: str,
    param: cst.Param | None,
    reason: str,
    needed: set[str],
    response: str | None = None,
) -> Edit:
    """The edit making `function` (`qualname` in its module) an async wrapper that runs the
    original on the session; a route's answer validated into `response` (its response
    model's code) inside the session's greenlet, so what it serialises loads."""
    session = param.name.value if param else "db"
    args = _call_arguments(function)
    needed.add("legacy")
    call = f"_legacy.{qualname}({args})"
    value = f"await {session}.run_sync(lambda {session}: {call})"
    if response is not None:
        needed.add("queries")
        value = f"await queries.as_response({session}, {value}, {response})"
    statement = cst.parse_statement(f"return {value}\n").with_changes(leading_lines=_marks(reason))
    body: list[Any] = []
    if function.get_docstring(clean=False) is not None:
        body.append(function.body.body[0])
    body.append(statement)
    return signature_edit(function, param, needed, body)


def legacy_delegate(function: cst.FunctionDef, qualname: str, reason: str) -> Edit:
    """The edit keeping `function` as it is declared (its parameters, their dependencies),
    its body calling (or awaiting) the legacy original."""
    call = f"_legacy.{qualname}({_call_arguments(function)})"
    awaited = "await " if function.asynchronous else ""
    statement = cst.parse_statement(f"return {awaited}{call}\n").with_changes(
        leading_lines=_marks(reason)
    )
    body: list[Any] = []
    if function.get_docstring(clean=False) is not None:
        body.append(function.body.body[0])
    body.append(statement)

    def edit(updated: cst.CSTNode) -> cst.CSTNode:
        if not isinstance(updated, cst.FunctionDef):  # pragma: no cover - keyed by a def
            return updated
        return updated.with_changes(body=updated.body.with_changes(body=body))

    return edit


def _marks(reason: str) -> list[cst.EmptyLine]:
    return [cst.EmptyLine(comment=cst.Comment(line)) for line in mark_lines(reason)]


def async_signature(
    function: cst.FunctionDef, param: cst.Param | None, route: bool, needed: set[str]
) -> cst.FunctionDef:
    """`function` as `async def`, its session parameter `param` typed for an AsyncSession."""
    function = function.with_changes(asynchronous=cst.Asynchronous())
    if param is None:
        return function
    name = param.name.value
    params = function.params
    positional = list(params.params)
    kwonly = list(params.kwonly_params)
    where = "params" if any(p.name.value == name for p in positional) else "kwonly"
    current = positional if where == "params" else kwonly
    index = next(i for i, p in enumerate(current) if p.name.value == name)
    old = current[index]
    if route and old.default is not None:
        needed.add("AsyncDB")
        new = old.with_changes(
            annotation=cst.Annotation(cst.Name("AsyncDB")),
            default=None,
            equal=cst.MaybeSentinel.DEFAULT,
        )
        current[index] = new
        earlier_default = any(p.default is not None for p in positional[:index])
        if where == "params" and earlier_default:
            # A parameter without a default cannot follow ones with defaults; FastAPI
            # calls endpoints by keyword, so the route's parameters become keyword-only.
            kwonly = [*positional, *kwonly]
            positional = []
            return function.with_changes(
                params=params.with_changes(
                    params=positional, kwonly_params=kwonly, star_arg=cst.ParamStar()
                )
            )
    elif old.default is not None:
        needed.add("get_async_session")
        new = old.with_changes(
            annotation=cst.Annotation(cst.Name("AsyncSession")),
            default=cst.parse_expression("Depends(get_async_session)"),
        )
        needed.add("AsyncSession")
        current[index] = new
    else:
        needed.add("AsyncSession")
        current[index] = old.with_changes(annotation=cst.Annotation(cst.Name("AsyncSession")))
    if where == "params":
        positional = current
    else:
        kwonly = current
    return function.with_changes(
        params=params.with_changes(params=positional, kwonly_params=kwonly)
    )


def _call_arguments(function: cst.FunctionDef) -> str:
    params = function.params
    parts = [p.name.value for p in params.params]
    if isinstance(params.star_arg, cst.Param):
        parts.append(f"*{params.star_arg.name.value}")
    parts += [f"{p.name.value}={p.name.value}" for p in params.kwonly_params]
    if params.star_kwarg is not None:
        parts.append(f"**{params.star_kwarg.name.value}")
    return ", ".join(parts)
