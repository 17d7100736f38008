"""Routes whose templates overlap but do not pair: found at build, each with its fix.

    for note in overlap_notes(layout):     # layout: what routing.pair returns, in order
        log.warning("%s", note)

Two cases a migration runs into. Same method and the same path apart from parameter
names (legacy `/books/{book_id}`, async `/books/{id}`): the keys differ, so the routes do
not pair and one of them is never reached. And a static path that a template of the other
side, earlier in matching order, also matches (async-only `/books/latest` behind legacy
`/books/{book_id}`, or an async-only template placed before a legacy static path): the
static route is never reached, or no longer answers as the legacy app alone did. Overlaps
within one side are left alone: the app alone has them too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from starlette.routing import BaseRoute

from gateway.routing.dispatch import Endpoint, RouteEntry, RouteSlot

__all__ = ["overlap_notes"]

_PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")


def _shape(path: str) -> str:
    # Parameter names out, convertors kept: {id:int} and {id} match different paths.
    return _PARAM.sub(lambda m: "{" + (m.group(2) or "") + "}", path)


def _sides(entry: RouteEntry) -> str:
    return "+".join(i.value for i in entry.implementations)


def _named(endpoint: Endpoint) -> str:
    return f"{endpoint.key} ({endpoint.side.value}, {endpoint.where})"


def _endpoints(layout: Iterable[RouteSlot | BaseRoute]) -> Iterator[tuple[int, Endpoint]]:
    """Every endpoint with its position in matching order."""
    for position, item in enumerate(layout):
        if isinstance(item, RouteSlot):
            for entry in item.entries.values():
                for endpoint in (entry.legacy, entry.async_):
                    if endpoint is not None:
                        yield position, endpoint


def overlap_notes(layout: list[RouteSlot | BaseRoute]) -> list[str]:
    """One line per overlap that does not pair, saying which route wins and what to change."""
    return [*_renamed_parameters(layout), *_shadowed_static_paths(layout)]


def _renamed_parameters(layout: list[RouteSlot | BaseRoute]) -> Iterator[str]:
    by_shape: dict[tuple[str, str], dict[str, tuple[int, Endpoint]]] = {}
    for position, endpoint in _endpoints(layout):
        if "{" in endpoint.path:
            found = by_shape.setdefault((endpoint.method, _shape(endpoint.path)), {})
            found.setdefault(endpoint.side.value, (position, endpoint))
    for sides in by_shape.values():
        if set(sides) != {"legacy", "async"}:
            continue
        (_, legacy), (_, migrated) = sides["legacy"], sides["async"]
        if legacy.key == migrated.key:
            continue  # paired
        first = min(sides.values(), key=lambda found: found[0])[1]
        yield (
            f"{_named(legacy)} and {_named(migrated)} differ only in parameter names, so "
            f"they do not pair and {first.side.value} serves every request to both; rename "
            f"the async route's path to {legacy.path} (and its parameters to match) to pair them"
        )


def _shadowed_static_paths(layout: list[RouteSlot | BaseRoute]) -> Iterator[str]:
    templates: list[RouteSlot] = []
    for item in layout:
        if not isinstance(item, RouteSlot):
            continue
        if "{" in item.context.path:
            templates.append(item)
            continue
        for method, entry in item.entries.items():
            for earlier in templates:
                shadow = earlier.entries.get(method)
                # Only across sides: with a legacy side on both, the app alone has it too.
                if shadow is None or (shadow.legacy is None) == (entry.legacy is None):
                    continue
                if earlier.context.path_regex.match(item.context.path):
                    yield _shadow_note(item.context.path, entry, shadow)
                    break


def _shadow_note(path: str, entry: RouteEntry, shadow: RouteEntry) -> str:
    template = shadow.legacy or shadow.async_
    if template is None:
        raise LookupError(f"{shadow.key}: a route entry with no implementation")
    if entry.legacy is None and entry.async_ is not None:
        # An async-only static path behind a template the legacy app has.
        if shadow.async_ is not None:
            fix = (
                f"declare it in its router before the async twin of {template.key}, so "
                "it is placed ahead of that template"
            )
        else:
            fix = f"give it a legacy twin declared before {template.key}"
        return (
            f"{_named(entry.async_)} is never reached: {template.key} ({_sides(shadow)}) "
            f"comes first in matching order and matches {path}; {fix}, or move it to a "
            "path the template does not match"
        )
    return (
        f"{entry.key} ({_sides(entry)}) no longer answers as the legacy app alone: the "
        f"async-only {_named(template)} is placed before it and matches {path}; declare "
        "that route after the async twins of the routes the legacy app has before "
        f"{path} (an async-only route goes just before the legacy route of the next "
        "paired one in its router), or give it a legacy twin"
    )
