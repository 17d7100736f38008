"""A translated route's answer, validated into its `response_model` inside the session's
greenlet: FastAPI reads every relationship the model nests (`owner`, `Post.owner` of a
`(Post, votes)` row, the object a helper created and refreshed), and under an AsyncSession
each unloaded one would raise MissingGreenlet while the response is serialised.

    edits = response_edits(function, "db", needed)   # return X -> return await
                                                     #   queries.as_response(db, X, PostOut)
"""

from __future__ import annotations

import typing
from types import ModuleType
from typing import Any

import libcst as cst

from gateway.translate.edits import Edit
from gateway.translate.models import model_in

__all__ = ["nested_response_model", "response_edits"]


def response_edits(
    function: cst.FunctionDef, module: ModuleType, session: str, needed: set[str]
) -> dict[cst.CSTNode, Edit]:
    """The edits wrapping each `return value` of a route whose response model nests
    another model; none for other functions."""
    code = nested_response_model(function, module)
    if code is None:
        return {}
    finder = _Returns()
    function.body.visit(finder)
    if not finder.found:
        return {}
    needed.add("queries")

    def edit(updated: cst.CSTNode) -> cst.CSTNode:
        if not isinstance(updated, cst.Return) or updated.value is None:
            return updated
        value = cst.Module([]).code_for_node(updated.value)
        call = f"await queries.as_response({session}, {value}, {code})"
        return updated.with_changes(value=cst.parse_expression(call))

    return {node: edit for node in finder.found}


def nested_response_model(function: cst.FunctionDef, module: ModuleType) -> str | None:
    """The code of the route's `response_model` when it nests another model, else None."""
    code = _response_model_code(function)
    if code is None or not _nests_models(_evaluate(code, module)):
        return None
    return code


def _response_model_code(function: cst.FunctionDef) -> str | None:
    for decorator in function.decorators:
        call = decorator.decorator
        if isinstance(call, cst.Call):
            for arg in call.args:
                if arg.keyword and arg.keyword.value == "response_model":
                    return cst.Module([]).code_for_node(arg.value)
    return None


def _evaluate(code: str, module: ModuleType) -> Any:
    try:
        return eval(code, dict(module.__dict__))  # the decorator's own expression
    except Exception:
        return None


def _nests_models(annotation: Any, seen: frozenset[type] = frozenset()) -> bool:
    model = model_in(annotation)
    if model is None or model in seen:
        return False
    for info in model.model_fields.values():
        inner = model_in(info.annotation)
        if inner is not None:
            return True
    return any(_nests_models(a, seen | {model}) for a in typing.get_args(annotation))


class _Returns(cst.CSTVisitor):
    """The function's own `return value` statements (not those of nested scopes)."""

    def __init__(self) -> None:
        self.found: list[cst.Return] = []

    def visit_Return(self, node: cst.Return) -> None:
        value = node.value
        if value is None or isinstance(value, cst.Dict):
            return
        if isinstance(value, cst.Name) and value.value == "None":
            return
        self.found.append(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False
