"""The composed app's `dependency_overrides`, seen by the legacy app's routes too.

FastAPI looks overrides up on the app that made a route. A mounted legacy app's routes were
made by it, so without this an override set on the composed app (as a test suite does for
`get_db`) never reaches them. Giving the legacy app a layered view makes one lookup find
both, the composed app's first, as for the twins:

    share_overrides(composed, [legacy, twins_host])  # what Gateway.build does
    composed.dependency_overrides[get_db] = fake     # reaches legacy routes and twins
    legacy.dependency_overrides[get_db] = own_fake   # the app's own: used where composed has none
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any

__all__ = ["LayeredOverrides", "share_overrides"]


class LayeredOverrides(MutableMapping[Any, Any]):
    """`composed.dependency_overrides` (read live, so reassigning it is seen) over `own`.

    Writes and deletions go to `own`, the dict the app had.
    """

    def __init__(self, composed: Any, own: MutableMapping[Any, Any] | None = None) -> None:
        self.composed = composed
        self.own: MutableMapping[Any, Any] = {} if own is None else own

    def _first(self) -> MutableMapping[Any, Any]:
        overrides: MutableMapping[Any, Any] = self.composed.dependency_overrides
        return overrides

    def __bool__(self) -> bool:  # FastAPI asks this for every dependency of every request
        return bool(self.composed.dependency_overrides) or bool(self.own)

    def __getitem__(self, key: Any) -> Any:
        first = self._first()
        return first[key] if key in first else self.own[key]

    def __contains__(self, key: object) -> bool:
        return key in self._first() or key in self.own

    def get(self, key: Any, default: Any = None) -> Any:
        first = self._first()
        return first[key] if key in first else self.own.get(key, default)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.own[key] = value

    def __delitem__(self, key: Any) -> None:
        del self.own[key]

    def __iter__(self) -> Iterator[Any]:
        first = self._first()
        yield from first
        yield from (key for key in self.own if key not in first)

    def __len__(self) -> int:
        first = self._first()
        return len(first) + sum(1 for key in self.own if key not in first)

    def __repr__(self) -> str:
        return f"LayeredOverrides({dict(self)!r})"


def share_overrides(composed: Any, hosts: Iterable[Any]) -> None:
    """Give each host app a LayeredOverrides: `composed`'s overrides over the host's own."""
    for host in hosts:
        # FastAPI types it as a dict; its solver asks only what a mapping answers.
        host.dependency_overrides = LayeredOverrides(composed, host.dependency_overrides)
