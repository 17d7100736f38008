"""The translation table: one legacy `Query` chain in, the `select()` code that keeps its
meaning out, or the reason it cannot be translated with certainty.

    chain = read_chain(node, session="db", resolve=namespace_resolver(module), code=code_of)
    chain.render_terminal()   # "await queries.first(db, select(User).where(User.id == 1))"

What each terminal keeps (SQLAlchemy 2.0+ semantics of the legacy `Query`):

- `.all()` / iteration / `q[a:b]`: a Query with a full ORM entity de-duplicates rows by
  identity, so joined queries get `.unique()`; one entity gives `.scalars()`, anything else
  rows;
- `.first()`: LIMIT 1 (replacing any limit, as `Query.first()` does);
- `.one()` / `.one_or_none()`: their exceptions, after the same uniquing;
- `.scalar()`: `one()` then the first column: MultipleResultsFound on several rows, None
  on none (`Session.scalar` would return the first row instead);
- `.count()`: `SELECT count(*) FROM (the query) AS anon_1`, never a count of the table;
- `.get(id)` / `.options(...).get(id)`: `Session.get` (identity map first), options kept;
- `.update(values, synchronize_session=...)` / `.delete(...)`: ORM-enabled UPDATE/DELETE of
  the query's criteria, returning the rowcount;
- `.exists()`: `EXISTS (SELECT 1 FROM <entity> WHERE ...)`, as the Query renders it.

Anything else raises `Untranslatable` with the reason, and the caller falls back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import libcst as cst
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper, RelationshipProperty
from sqlalchemy.orm.attributes import QueryableAttribute

__all__ = [
    "Chain",
    "Entity",
    "InstanceModels",
    "Untranslatable",
    "read_chain",
]

# Query methods with a Select method of the same meaning (Select names on the right).
SAME_STEPS = {
    "filter": "where",
    "where": "where",
    "filter_by": "filter_by",
    "join": "join",
    "outerjoin": "outerjoin",
    "order_by": "order_by",
    "group_by": "group_by",
    "having": "having",
    "distinct": "distinct",
    "limit": "limit",
    "offset": "offset",
    "options": "options",
    "select_from": "select_from",
    "with_entities": "with_only_columns",
    "add_columns": "add_columns",
    "with_for_update": "with_for_update",
    "slice": "slice",
}
TERMINALS = {"all", "first", "one", "one_or_none", "scalar", "count", "get", "update", "delete"}
EAGER_LOADERS = {"joinedload", "selectinload", "subqueryload", "immediateload"}
# Loader options that change which columns load but never make a relationship lazy.
COLUMN_LOADERS = {"load_only", "defer", "undefer", "defaultload"}
JOINING = {"join", "outerjoin"}


@dataclass(frozen=True)
class InstanceModels:
    """`self` in a generic base's method: `self.model` holds a class known at run time."""

    attributes: frozenset[str]


class Untranslatable(Exception):
    """A chain the table has no certain translation for; the message is the reason."""


@dataclass(frozen=True)
class Entity:
    """One thing the query selects: a mapped class (`kind="entity"`) or a column."""

    code: str
    kind: str
    mapped: type | None = None


@dataclass
class Step:
    name: str
    args: str  # the call's argument source, as written
    node: cst.Call | cst.Subscript


@dataclass
class Chain:
    """A `db.query(...)` chain read from source: the entities, steps and terminal."""

    session: str
    entities: list[Entity]  # what rows hold (with_entities replaces them)
    steps: list[Step]
    terminal: Step | None = None
    base_code: str | None = None  # a tracked query variable the chain starts from
    eager: list[str] = field(default_factory=list)  # selectinload(...) options added
    loaded: set[tuple[str, ...]] = field(default_factory=set)  # paths the options load
    unknown_options: bool = False
    inherited_unique: bool = False  # the tracked variable it starts from needs .unique()
    selected: list[Entity] = field(default_factory=list)  # db.query(...)'s own arguments

    @property
    def single_entity(self) -> bool:
        return len(self.entities) == 1 and self.entities[0].kind == "entity"

    @property
    def has_mapper(self) -> bool:
        return any(e.kind == "entity" for e in self.entities)

    @property
    def primary(self) -> Entity:
        return self.entities[0]

    @property
    def needs_unique(self) -> bool:
        """Rows a legacy Query would de-duplicate: ORM entities through a join, or a joined
        eager load (which 2.0 refuses to return without `.unique()`)."""
        joined = any(s.name in JOINING for s in self.steps) or self.unknown_options
        eager_join = any("joinedload" in s.args for s in self.steps if s.name == "options")
        return self.has_mapper and (joined or eager_join or self.inherited_unique)

    def statement(self, *, with_options: bool = True) -> str:
        """The `select()` code of everything before the terminal."""
        selected = self.selected or self.entities
        code = self.base_code or f"select({', '.join(e.code for e in selected)})"
        for step in self.steps:
            if step.name == "options" and not with_options:
                continue
            if step.name == "__slice__":
                code += f".slice({step.args})"
            else:
                code += f".{SAME_STEPS[step.name]}({step.args})"
        if self.eager and with_options:
            code += f".options({', '.join(self.eager)})"
        return code

    def render_terminal(self) -> str:
        """The async expression for the whole chain, terminal included."""
        terminal = self.terminal
        if terminal is None:
            raise Untranslatable("a query without a terminal call")
        name, db = terminal.name, self.session
        if name in ("update", "delete"):
            return self._render_write(name, terminal.args)
        if name == "get":
            return self._render_get(terminal.args)
        if name == "count":
            if terminal.args:
                raise Untranslatable(".count() with arguments")
            inner = self.statement()
            count = f"select(func.count()).select_from({inner}.subquery())"
            return f"(await {db}.execute({count})).scalar_one()"
        if terminal.args:
            raise Untranslatable(f".{name}() with arguments")
        stmt = self.statement()
        if name == "first":
            stmt += ".limit(1)"
        helper = {"all": "fetch_all", "first": "first", "one": "one", "one_or_none": "one_or_none"}
        if self.single_entity and not self.needs_unique and name in helper:
            # The gateway's helpers add LIMIT 1 themselves for first().
            plain = self.statement()
            return f"await queries.{helper[name]}({db}, {plain})"
        result = f"(await {db}.execute({stmt}))"
        if self.needs_unique:
            result += ".unique()"
        if name == "scalar":
            return f"{result}.scalar_one_or_none()"
        if self.single_entity:
            result += ".scalars()"
        return f"{result}.{name}()"

    def render_slice(self, start: int, stop: int | None) -> str:
        """`q[start:stop]` with literal bounds: OFFSET/LIMIT, a list as the Query gives."""
        self.steps.append(Step("__slice__", f"{start}, {stop}", self.steps[-1].node))
        self.terminal = Step("all", "", self.steps[-1].node)
        return self.render_terminal()

    def _render_get(self, args: str) -> str:
        if any(s.name != "options" for s in self.steps) or not self.single_entity:
            raise Untranslatable(".get() on a query with criteria or several entities")
        options = [s.args for s in self.steps if s.name == "options"] + self.eager
        extra = f", options=[{', '.join(options)}]" if options else ""
        return f"await {self.session}.get({self.primary.code}, {args}{extra})"

    def _render_write(self, name: str, args: str) -> str:
        if self.base_code is not None:
            raise Untranslatable(
                f".{name}() of query {self.base_code!r} built in steps: which criteria it "
                "holds is known at run time only"
            )
        if not self.single_entity:
            raise Untranslatable(f".{name}() on a query that is not one entity's")
        if any(s.name not in ("filter", "where", "filter_by") for s in self.steps):
            raise Untranslatable(f".{name}() after steps other than filter/filter_by")
        target = self.primary.code
        maker = "sa_update" if name == "update" else "sa_delete"
        code = f"{maker}({target})"
        for step in self.steps:
            code += f".{SAME_STEPS[step.name]}({step.args})"
        values, options = _split_write_args(name, args)
        if name == "update":
            code += f".values({values})"
        if options:
            code += f".execution_options({options})"
        return f"(await {self.session}.execute({code})).rowcount"

    def render_exists(self) -> str:
        """`q.exists()`: the Query's own EXISTS (SELECT 1 FROM entity WHERE ...)."""
        if self.entities[0].kind != "entity":
            raise Untranslatable(".exists() of a query whose first entity is not a class")
        stmt = self.statement(with_options=False)
        only = 'with_only_columns(literal_column("1"))'
        return f"{stmt}.{only}.select_from({self.primary.code}).exists()"


def _arg_code(arg: cst.Arg, code: Callable[[cst.CSTNode], str]) -> str:
    keyword = f"{arg.keyword.value}=" if arg.keyword else ""
    star = arg.star if isinstance(arg.star, str) else ""
    return f"{star}{keyword}{code(arg.value)}"


def _split_write_args(name: str, args: str) -> tuple[str, str]:
    """("values", "synchronize_session=...") from `.update(...)`'s or `.delete(...)`'s
    argument source; anything else is not certain."""
    tree = cst.parse_expression(f"f({args})")
    if not isinstance(tree, cst.Call):  # pragma: no cover - parse_expression of a call
        raise Untranslatable(f"cannot read the arguments of .{name}()")
    values: list[str] = []
    options: list[str] = []
    for arg in tree.args:
        code = cst.Module([]).code_for_node(arg.value)
        keyword = arg.keyword.value if arg.keyword else None
        if keyword == "synchronize_session":
            options.append(f"synchronize_session={code}")
        elif keyword is None and not arg.star and name == "update" and not values:
            values.append(code)
        else:
            raise Untranslatable(f".{name}() argument {cst.Module([]).code_for_node(arg)!r}")
    if name == "update" and not values:
        raise Untranslatable(".update() without values")
    return (values[0] if values else ""), ", ".join(options)


def classify(node: cst.BaseExpression, code: str, resolve: Callable[[str], Any]) -> Entity:
    """What `db.query(<node>)` selects, from the module's real mapper registry."""
    root = node
    while isinstance(root, cst.Call | cst.Attribute):
        root = root.func if isinstance(root, cst.Call) else root.value
    if not isinstance(root, cst.Name):
        raise Untranslatable(f"query entity {code!r} is not a name the module imports")
    value = resolve(root.value)
    if isinstance(value, InstanceModels):
        direct = isinstance(node, cst.Attribute) and node.value is root
        if direct and node.attr.value in value.attributes:  # type: ignore[attr-defined]
            return Entity(code, "entity")
        raise Untranslatable(f"query entity {code!r} is not a model attribute set in __init__")
    if isinstance(node, cst.Attribute) and isinstance(value, ModuleType):
        # models.User / models.User.name: look the dotted name up in the module imported.
        dotted: cst.BaseExpression = node
        hops: list[str] = []
        while isinstance(dotted, cst.Attribute):
            hops.insert(0, dotted.attr.value)
            dotted = dotted.value
        for hop in hops[:-1]:
            value = getattr(value, hop, None)
        if isinstance(value, ModuleType):
            found = getattr(value, hops[-1], None)
            if isinstance(sa_inspect(found, raiseerr=False), Mapper):
                return Entity(code, "entity", found)
            raise Untranslatable(f"query entity {code!r} is not a mapped class")
        attribute = getattr(value, hops[-1], None)
        if isinstance(attribute, QueryableAttribute) and not isinstance(
            attribute.property, RelationshipProperty
        ):
            return Entity(code, "column")
        raise Untranslatable(f"query entity {code!r} is neither a mapped class nor a column")
    if isinstance(node, cst.Name):
        if isinstance(sa_inspect(value, raiseerr=False), Mapper):
            return Entity(code, "entity", value)
        if _is_sql(value):  # a local built from func/literal/...: a column
            return Entity(code, "column")
        raise Untranslatable(f"query entity {code!r} is not a mapped class")
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
        attribute = getattr(value, node.attr.value, None)
        if isinstance(attribute, QueryableAttribute):
            if isinstance(attribute.property, RelationshipProperty):
                raise Untranslatable(f"query of a relationship {code!r}")
            return Entity(code, "column")
    if _is_sql(value):
        # func.count(...), exists(), literal(...): SQL expressions, selected as columns.
        return Entity(code, "column")
    raise Untranslatable(f"query entity {code!r} is neither a mapped class nor a column")


def _is_sql(value: Any) -> bool:
    if isinstance(value, QueryableAttribute) and isinstance(value.property, RelationshipProperty):
        return False
    module = getattr(value, "__module__", None) or type(value).__module__
    return isinstance(module, str) and module.startswith("sqlalchemy")


def read_chain(
    node: cst.BaseExpression,
    *,
    session: str,
    resolve: Callable[[str], Any],
    code: Callable[[cst.CSTNode], str],
    variables: dict[str, Chain] | None = None,
    nested: Callable[[cst.BaseExpression], Entity | None] | None = None,
) -> Chain | None:
    """The chain `node` is (`db.query(...)...` or a tracked query variable's steps), or None
    when it is no query chain at all. Raises Untranslatable for a chain with unknown parts."""
    steps: list[Step] = []
    current = node
    while True:
        if isinstance(current, cst.Call) and isinstance(current.func, cst.Attribute):
            owner, name = current.func.value, current.func.attr.value
            args = ", ".join(_arg_code(a, code) for a in current.args)
            if isinstance(owner, cst.Name) and owner.value == session and name == "query":
                return _finish(current, steps, session, resolve, code, nested)
            if isinstance(owner, cst.Name) and variables and owner.value in variables:
                base = variables[owner.value]
                chain = Chain(session, list(base.entities), [], base_code=owner.value)
                chain.unknown_options = base.unknown_options
                chain.inherited_unique = base.needs_unique
                chain.loaded = set(base.loaded)
                return _with_steps(chain, [Step(name, args, current), *steps], resolve, code)
            steps.insert(0, Step(name, args, current))
            current = owner
            continue
        if isinstance(current, cst.Name) and variables and current.value in variables and steps:
            base = variables[current.value]
            chain = Chain(session, list(base.entities), [], base_code=current.value)
            chain.unknown_options = base.unknown_options
            chain.inherited_unique = base.needs_unique
            chain.loaded = set(base.loaded)
            return _with_steps(chain, steps, resolve, code)
        return None


def _finish(
    query: cst.Call,
    steps: list[Step],
    session: str,
    resolve: Callable[[str], Any],
    code: Callable[[cst.CSTNode], str],
    nested: Callable[[cst.BaseExpression], Entity | None] | None,
) -> Chain:
    if not query.args or any(a.keyword or a.star for a in query.args):
        raise Untranslatable(f"{session}.query() without plain entity arguments")
    entities = []
    for arg in query.args:
        inner = nested(arg.value) if nested else None
        entities.append(inner or classify(arg.value, code(arg.value), resolve))
    chain = Chain(session, entities, [], selected=list(entities))
    return _with_steps(chain, steps, resolve, code)


def _with_steps(
    chain: Chain,
    steps: Sequence[Step],
    resolve: Callable[[str], Any],
    code: Callable[[cst.CSTNode], str],
) -> Chain:
    for index, step in enumerate(steps):
        last = index == len(steps) - 1
        if (last and step.name in TERMINALS) or (step.name == "exists" and last):
            chain.terminal = step
        elif step.name in SAME_STEPS:
            if step.name == "with_entities":
                chain.entities = _reclassify(step, resolve, code)
            chain.steps.append(step)
            if step.name == "options":
                _read_options(chain, step)
        else:
            raise Untranslatable(f"Query.{step.name}() has no certain select() translation")
    return chain


def _reclassify(
    step: Step, resolve: Callable[[str], Any], code: Callable[[cst.CSTNode], str]
) -> list[Entity]:
    call = step.node
    if not isinstance(call, cst.Call) or any(a.keyword or a.star for a in call.args):
        raise Untranslatable(f"with_entities({step.args}) with keyword or star arguments")
    return [classify(a.value, code(a.value), resolve) for a in call.args]


def _read_options(chain: Chain, step: Step) -> None:
    """Which relationship paths `.options(...)` loads eagerly; anything it cannot read makes
    later eager loads uncertain."""
    tree = cst.parse_expression(f"f({step.args})")
    if not isinstance(tree, cst.Call):  # pragma: no cover
        chain.unknown_options = True
        return
    for arg in tree.args:
        path = _loader_path(arg.value)
        if path is None:
            chain.unknown_options = True
        elif path:
            chain.loaded.add(path)


def _loader_path(node: cst.BaseExpression) -> tuple[str, ...] | None:
    """`joinedload(A.b).selectinload(B.c)` -> ("b", "c"); () for column-only options; None
    for options whose effect on relationships is not known."""
    calls: list[cst.Call] = []
    current: cst.BaseExpression = node
    while isinstance(current, cst.Call):
        calls.insert(0, current)
        func = current.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call):
            current = func.value
        else:
            break
    path: list[str] = []
    for call in calls:
        func = call.func
        if isinstance(func, cst.Name):
            name = func.value
        elif isinstance(func, cst.Attribute):
            name = func.attr.value
        else:
            return None
        if name in COLUMN_LOADERS and len(calls) == 1:
            return ()
        if name not in EAGER_LOADERS or len(call.args) != 1:
            return None
        target = call.args[0].value
        if not isinstance(target, cst.Attribute):
            return None
        path.append(target.attr.value)
    return tuple(path)
