"""The eager loads a translation adds: relationships a function reads after its query (in
its body, or through its route's `response_model`) would be lazy loads, which raise
`MissingGreenlet` under an AsyncSession, so the query gets `selectinload` for each path.

    reads = [(chain, ("items",), "user.items")]    # user.items read after its query
    eager_loads(reads, [], None, module, needed)   # chain.eager == ["selectinload(User.items)"]
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from pydantic import BaseModel

from gateway.translate.chains import Chain
from gateway.translate.models import relationship_paths, relationship_target

__all__ = ["Read", "Result", "eager_loads"]


@dataclass
class Result:
    """A local name holding ORM objects: which query loaded them, their class, the path."""

    chain: Chain | None
    mapped: type
    path: tuple[str, ...] = ()
    many: bool = False


Read = tuple[Chain | None, tuple[str, ...], str]  # the query, the relationship path, the code


def eager_loads(
    reads: list[Read],
    returns: list[Result],
    model: type[BaseModel] | None,
    module: ModuleType,
    needed: set[str],
) -> list[str]:
    """Add to each chain the loads its function's reads need; the reasons it cannot, if any
    (the function then falls back as a whole). Adds to `needed` the names to import."""
    problems: list[str] = []
    wanted: dict[int, tuple[Chain, set[tuple[str, ...]]]] = {}
    for chain, path, _code in reads:
        if chain is not None:
            wanted.setdefault(id(chain), (chain, set()))[1].add(path)
    for result in returns:
        if result.chain is None or model is None:
            continue
        for path in relationship_paths(model, result.mapped):
            wanted.setdefault(id(result.chain), (result.chain, set()))[1].add((*result.path, *path))
    for chain, paths in wanted.values():
        maximal = {p for p in paths if not any(q != p and q[: len(p)] == p for q in paths)}
        for path in sorted(maximal):
            if path in chain.loaded or any(q[: len(path)] == path for q in chain.loaded):
                continue
            if chain.unknown_options or any(path[: len(q)] == q for q in chain.loaded):
                problems.append(
                    f"relationship path {'.'.join(path)} needs an eager load "
                    "next to loader options the translator cannot combine with certainty"
                )
                continue
            option = _selectinload(chain, path, module, needed)
            if option is None:
                problems.append(
                    f"relationship path {'.'.join(path)} crosses a class the module does not import"
                )
                continue
            chain.eager.append(option)
    return problems


def _selectinload(
    chain: Chain, path: tuple[str, ...], module: ModuleType, needed: set[str]
) -> str | None:
    mapped = chain.primary.mapped
    if mapped is None:
        return None
    parts = []
    for hop in path:
        owner = _name_of(mapped, module)
        if owner is None:
            return None
        parts.append(f"selectinload({owner}.{hop})")
        target = relationship_target(mapped, hop)
        if target is None:
            return None
        mapped = target
    needed.add("selectinload")
    return ".".join(parts)


def _name_of(mapped: type, module: ModuleType) -> str | None:
    for key, value in module.__dict__.items():
        if value is mapped and not key.startswith("__"):
            return key
    return None
