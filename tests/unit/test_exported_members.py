"""The public API: the front door (gateway.__all__) and the public submodules, all pinned here.

Everything else under gateway/ is internal and may move between releases.
"""

import importlib

import gateway

# The public submodules and exactly what each exports: the one list of them (the generated
# docs/reference/python-api.md documents the same, from gateway.cli.reference.PUBLIC_MODULES).
PUBLIC_MODULES = {
    "gateway.queries": [
        "as_response",
        "delete",
        "fetch_all",
        "first",
        "get",
        "one",
        "one_or_none",
        "update",
    ],
    "gateway.testing": ["free_port", "serve_in_subprocess", "wait_until_ready"],
    "gateway.legacy": ["fast_path_blocker", "keep_fastapi_handler"],
}


def test_all_exports_exist_and_are_documented():
    for name in gateway.__all__:
        member = getattr(gateway, name)
        if name.endswith("DB"):  # Annotated[Session, Depends(...)] aliases
            assert member.__metadata__[0].dependency.__module__ == "gateway.db.database", name
            continue
        if type(member).__name__ == "module":  # gateway.queries: every helper documented
            assert member.__name__ == f"gateway.{name}", name
            assert f"gateway.{name}" in PUBLIC_MODULES, name
            continue
        assert member.__module__.startswith("gateway."), name
        assert member.__doc__, f"gateway.{name} has no docstring"


def test_no_private_or_module_names_leak():
    public = {n for n in dir(gateway) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(gateway, n)).__name__ == "module"}
    assert public - modules == set(gateway.__all__) - {"queries"}


def test_public_submodules_export_exactly_their_pinned_names_each_documented():
    for module_name, names in PUBLIC_MODULES.items():
        module = importlib.import_module(module_name)
        assert sorted(module.__all__) == sorted(names), module_name
        assert module.__doc__, f"{module_name} has no docstring"
        for name in names:
            member = getattr(module, name)
            assert member.__doc__, f"{module_name}.{name}: no docstring"
            assert not name.endswith("_"), f"{module_name}.{name}: trailing underscore"


def test_the_python_api_reference_documents_every_public_name():
    from pathlib import Path

    from gateway.cli.reference import PUBLIC_MODULES as DOCUMENTED

    assert sorted(DOCUMENTED) == sorted(PUBLIC_MODULES)
    page = Path(__file__).resolve().parents[2] / "docs" / "reference" / "python-api.md"
    text = page.read_text(encoding="utf-8")
    for name in gateway.__all__:
        assert f"### `gateway.{name}`" in text, name
    for module_name, names in PUBLIC_MODULES.items():
        assert f"## `{module_name}`" in text, module_name
        for name in names:
            assert f"### `{module_name}.{name}`" in text, f"{module_name}.{name}"
