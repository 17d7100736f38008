"""The pairing contract: an async twin checks and requires what its legacy route does.

    contracts = check_contracts(gateway.entries)   # at build; ContractError if a twin is refused

At build, each paired twin is compared with its legacy route (gateway.routing.facts reads
both). A twin that drops a guard (a dependency of a `dependencies=` list, a security scheme,
an OAuth scope) or a required input (a parameter, the body, a required body field) would
answer requests its legacy route refuses: the build stops with one ContractError naming
every such route, what it lacks and the fix. Other differences (types, response model,
status code, optional inputs) are warnings, listed by `gateway routes`, GET {prefix}/routes
and the operator page. A deliberate difference is accepted per route, on the twin:

    @router.get("/items/{item_id}")
    @differs_from_legacy("public since v2: the ingress checks the API key")
    async def read_item(item_id: int): ...

Nothing here runs per request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway._compat import RouteView
from gateway.exceptions import ContractError
from gateway.routing.dispatch import RouteEntry
from gateway.routing.facts import Guard, RouteFacts, openapi_operations, route_facts

__all__ = ["Contract", "Difference", "check_contracts", "compare", "differs_from_legacy"]

log = logging.getLogger("gateway.routing")

REFUSED, WARNING = "refused", "warning"
_MARK = "__gateway_differs_from_legacy__"
F = TypeVar("F", bound=Callable[..., Any])


def differs_from_legacy(reason: str) -> Callable[[F], F]:
    """Accept this twin's differences from its legacy route's contract, for `reason`.

    @router.get("/items/{item_id}")
    @differs_from_legacy("public since v2: the ingress checks the API key")
    async def read_item(item_id: int): ...

    The twin then serves even where it lacks a guard or a required input; `gateway routes`,
    GET {prefix}/routes and the operator page show it as accepted, with the reason and the
    differences.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise TypeError(
            f"differs_from_legacy takes a reason, got {reason!r}; write "
            '@differs_from_legacy("why this twin may differ from its legacy route").'
        )

    def mark(endpoint: F) -> F:
        setattr(endpoint, _MARK, reason.strip())
        return endpoint

    return mark


@dataclass(frozen=True)
class Difference:
    """One way a twin differs from its legacy route: `refused` (a dropped guard or required
    input) or `warning`, what differs (legacy first) and how to make the twin match."""

    severity: str
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class Contract:
    """A paired route's comparison: its differences and, if given, the accepting reason.

    `status`: "same", "warnings", "refused" or "accepted" (differences a reason accepts).
    """

    key: str
    differences: tuple[Difference, ...] = ()
    accepted: str | None = None

    @property
    def status(self) -> str:
        if not self.differences:
            return "same"
        if self.accepted:
            return "accepted"
        return REFUSED if any(d.severity == REFUSED for d in self.differences) else "warnings"

    def as_row(self) -> dict[str, Any]:
        """What a route's row carries (`contract`): status, reason, each difference."""
        return {
            "status": self.status,
            "accepted": self.accepted,
            "differences": [d.as_dict() for d in self.differences],
        }


def check_contracts(entries: Mapping[str, RouteEntry]) -> dict[str, Contract]:
    """Every paired route's Contract, by key; raises ContractError naming each twin refused.

    One OpenAPI document per side is made for the comparison, at build only.
    """
    paired = [e for e in entries.values() if e.paired]
    if not paired:
        return {}
    pairs = [(e.key, e.legacy, e.async_) for e in paired if e.legacy and e.async_]
    legacy_ops = openapi_operations(_unique(legacy.context for _, legacy, _ in pairs))
    async_ops = openapi_operations(_unique(twin.context for _, _, twin in pairs))
    facts: dict[int, RouteFacts] = {}
    contracts: dict[str, Contract] = {}
    for key, legacy, twin in pairs:
        differences = compare(
            _facts(facts, legacy.context),
            _facts(facts, twin.context),
            legacy_ops.get((legacy.context.path_format, legacy.method)),
            async_ops.get((twin.context.path_format, twin.method)),
        )
        reason = getattr(twin.func, _MARK, None)
        contracts[key] = Contract(key, tuple(differences), reason)
    refused = [c for c in contracts.values() if c.status == REFUSED]
    if refused:
        raise ContractError(_refusal(refused, entries))
    _log(contracts)
    return contracts


def _unique(views: Iterable[RouteView]) -> list[RouteView]:
    return list({id(v): v for v in views}.values())


def _facts(cache: dict[int, RouteFacts], view: RouteView) -> RouteFacts:
    found = cache.get(id(view))
    if found is None:
        found = cache[id(view)] = route_facts(view)
    return found


def compare(
    legacy: RouteFacts,
    twin: RouteFacts,
    legacy_op: dict[str, Any] | None = None,
    twin_op: dict[str, Any] | None = None,
) -> list[Difference]:
    """How `twin` differs from `legacy`, refusals first (a pure function of their facts;
    the OpenAPI operations, when both routes have one, add types, bodies and responses)."""
    found, folded = _guards(legacy, twin)
    found += _inputs(legacy, twin, folded)
    if legacy_op is not None and twin_op is not None:
        found += _operations(legacy_op, twin_op)
    if legacy.status_code != twin.status_code:
        found.append(
            Difference(
                WARNING,
                f"status code: legacy answers {legacy.status_code or 200}, "
                f"the twin {twin.status_code or 200}",
                f"status_code={legacy.status_code or 200} on the twin's route",
            )
        )
    if legacy.response_model and not twin.response_model:
        found.append(
            Difference(
                WARNING,
                "legacy filters its answer through a response model; the twin has none, "
                "so it may send fields legacy leaves out",
                "give the twin's route the legacy route's response_model",
            )
        )
    return sorted(found, key=lambda d: d.severity != REFUSED)


def _guards(legacy: RouteFacts, twin: RouteFacts) -> tuple[list[Difference], set[str]]:
    found: list[Difference] = []
    missing: set[str] = set()  # dropped dependencies: what they check is folded into them
    for guard in legacy.guards:
        if guard.kind != "dependency" or _has_call(twin, guard):
            continue
        missing.add(guard.name)
        found.append(_dropped(guard))
    for guard in legacy.guards:
        if guard.kind != "scheme" or missing.intersection(guard.via):
            continue
        same = [g for g in twin.guards if guard.matches(g)]
        if not same:
            found.append(_dropped(guard))
            continue
        lacking = guard.scopes - frozenset().union(*(g.scopes for g in same))
        if lacking:
            via = guard.via[-1] if guard.via else guard.name
            found.append(
                Difference(
                    REFUSED,
                    f"legacy asks {guard.name} for scopes {sorted(guard.scopes)}; the twin "
                    f"does not ask for {sorted(lacking)}",
                    f"Security({via}, scopes={sorted(guard.scopes)}) in the twin",
                )
            )
    return found, missing


def _has_call(twin: RouteFacts, guard: Guard) -> bool:
    return any(call is guard.call for call in twin.calls) or guard.name in twin.call_names


def _dropped(guard: Guard) -> Difference:
    through = f" (through {' -> '.join(guard.via)})" if guard.via else ""
    if guard.kind == "scheme":
        outer = guard.via[0] if guard.via else guard.name
        return Difference(
            REFUSED,
            f"legacy checks the security scheme {guard.name}{through}; the twin checks none "
            "like it",
            f"depend on {outer} (or an async rewrite of it with the same name that uses the "
            f"same {guard.name}) in the twin",
        )
    if guard.declared:
        return Difference(
            REFUSED,
            f"legacy runs {guard.name} from a dependencies= list (router, include, app or "
            "route); the twin does not",
            f"repeat dependencies=[Depends({guard.name})] on the twin's APIRouter (or its "
            "route, or include_async(router, dependencies=[...]))",
        )
    return Difference(
        REFUSED,
        f"legacy runs the dependency {guard.name}{through}; the twin does not",
        f"depend on {guard.via[0] if guard.via else guard.name} in the twin, or on a "
        f"rewrite of it that keeps the dependency {guard.name}",
    )


def _inputs(legacy: RouteFacts, twin: RouteFacts, folded: set[str]) -> list[Difference]:
    found: list[Difference] = []
    for key, given in legacy.inputs.items():
        if given.location == "path":  # the same template on both sides
            continue
        other = twin.inputs.get(key)
        where = f" (asked by {' -> '.join(given.via)})" if given.via else ""
        if other is None and not given.required:
            found.append(Difference(WARNING, f"legacy accepts {given.label}; the twin ignores it"))
        elif other is None:
            if folded.intersection(given.via):
                continue  # the dropped dependency that asks for it is reported already
            found.append(
                Difference(
                    REFUSED,
                    f"legacy requires {given.label}{where}; the twin does not take it",
                    f"take {given.label} in the twin, required as in legacy",
                )
            )
        elif given.required and not other.required:
            found.append(
                Difference(
                    REFUSED,
                    f"legacy requires {given.label}{where}; the twin makes it optional",
                    f"make {given.label} required in the twin (no default)",
                )
            )
    for key, other in twin.inputs.items():
        if other.required and key not in legacy.inputs:
            found.append(
                Difference(
                    WARNING,
                    f"the twin requires {other.label}, which legacy does not take: requests "
                    "legacy serves get a 422 from the twin",
                )
            )
    return found


def _operations(legacy: dict[str, Any], twin: dict[str, Any]) -> list[Difference]:
    found: list[Difference] = []
    twin_params = {(p.get("in"), p.get("name")): p for p in twin.get("parameters", ())}
    for param in legacy.get("parameters", ()):
        other = twin_params.get((param.get("in"), param.get("name")))
        if other is not None:
            what = f"{param.get('in')} {param.get('name')!r}"
            found += _schema_warning(what, param.get("schema"), other.get("schema"))
    legacy_body, twin_body = _body_schema(legacy), _body_schema(twin)
    if legacy_body is not None and twin_body is not None:
        lacking: set[str] = set()
        if "properties" in legacy_body and "properties" in twin_body:  # both objects
            lacking = set(legacy_body.get("required", ())) - set(twin_body.get("required", ()))
        for name in sorted(lacking):
            found.append(
                Difference(
                    REFUSED,
                    f"legacy requires the body field {name!r}; the twin does not",
                    f"make {name!r} required in the twin's body model, as in legacy's",
                )
            )
        if not lacking:
            found += _schema_warning("request body", legacy_body, twin_body)
    legacy_out, twin_out = _response_schema(legacy), _response_schema(twin)
    if legacy_out and twin_out:  # {} is an answer with no response model
        found += _schema_warning("response model", legacy_out, twin_out)
    return found


def _body_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    for media in content.values():
        schema = media.get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def _response_schema(operation: dict[str, Any]) -> Any:
    for code, response in sorted(operation.get("responses", {}).items()):
        if code.startswith("2"):
            for media in response.get("content", {}).values():
                return media.get("schema")
    return None


def _schema_warning(what: str, legacy: Any, twin: Any) -> list[Difference]:
    found = first_difference(legacy, twin)
    if found is None:
        return []
    at, one, other = found
    place = f" at {at}" if at else ""
    return [
        Difference(
            WARNING,
            f"{what} differs{place}: legacy {_brief(one)}, the twin {_brief(other)}",
            f"give the twin legacy's {what}",
        )
    ]


_ABSENT = object()


def first_difference(one: Any, other: Any, at: str = "") -> tuple[str, Any, Any] | None:
    """The first place two JSON values differ, as (dotted path, one's, other's), or None."""
    if isinstance(one, dict) and isinstance(other, dict):
        for key in sorted(set(one) | set(other)):
            found = first_difference(
                one.get(key, _ABSENT), other.get(key, _ABSENT), f"{at}.{key}" if at else key
            )
            if found is not None:
                return found
        return None
    if isinstance(one, list) and isinstance(other, list) and len(one) == len(other):
        for index, (a, b) in enumerate(zip(one, other, strict=True)):
            found = first_difference(a, b, f"{at}[{index}]")
            if found is not None:
                return found
        return None
    return None if one == other else (at, one, other)


def _brief(value: Any, limit: int = 80) -> str:
    if value is _ABSENT:
        return "has none"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refusal(refused: list[Contract], entries: Mapping[str, RouteEntry]) -> str:
    # Grouped by what is missing: a router that forgot its dependencies= is one item.
    grouped: dict[tuple[str, str], list[str]] = {}
    for contract in refused:
        twin = entries[contract.key].async_
        named = f"{contract.key} (twin {twin.where})" if twin else contract.key
        for difference in contract.differences:
            if difference.severity == REFUSED:
                grouped.setdefault((difference.message, difference.fix), []).append(named)
    count = len(refused)
    lines = [
        f"{count} async twin{'s' if count > 1 else ''} would accept requests "
        f"{'their' if count > 1 else 'its'} legacy route refuses; the gateway does not "
        "serve such a twin:"
    ]
    for (message, fix), routes in grouped.items():
        lines.append(f"  - {message}:")
        lines.extend(f"      {route}" for route in routes)
        lines.append(f"    Fix: {fix}.")
    lines.append(
        "If a difference is deliberate, accept it on the twin: "
        '@differs_from_legacy("why") (from gateway import differs_from_legacy).'
    )
    return "\n".join(lines)


def _log(contracts: Mapping[str, Contract]) -> None:
    # A line per kind per build, however many routes; `gateway routes` lists the details.
    by_status: dict[str, list[str]] = {}
    for key, contract in contracts.items():
        by_status.setdefault(contract.status, []).append(key)
        if contract.accepted and not contract.differences:
            log.info("%s is marked @differs_from_legacy but matches its legacy route", key)
    if by_status.get("accepted"):
        keys = by_status["accepted"]
        log.warning(
            "%d twin(s) serve with differences from legacy accepted by @differs_from_legacy: "
            "%s (gateway routes shows them)",
            len(keys),
            ", ".join(keys),
        )
    if by_status.get("warnings"):
        keys = by_status["warnings"]
        log.warning(
            "%d twin(s) differ from their legacy route (gateway routes shows how): %s",
            len(keys),
            ", ".join(keys),
        )
