"""The public API is what gateway.__all__ says, and every name in it has a docstring."""

import gateway


def test_all_exports_exist_and_are_documented():
    for name in gateway.__all__:
        member = getattr(gateway, name)
        if name.endswith("DB"):  # Annotated[Session, Depends(...)] aliases
            assert member.__metadata__[0].dependency.__module__ == "gateway.database", name
            continue
        if type(member).__name__ == "module":  # gateway.queries: every helper documented
            assert member.__name__ == f"gateway.{name}", name
            for helper in member.__all__:
                assert getattr(member, helper).__doc__, f"gateway.{name}.{helper}: no docstring"
                assert not helper.endswith("_"), f"gateway.{name}.{helper}: trailing underscore"
            continue
        assert member.__module__.startswith("gateway."), name
        assert member.__doc__, f"gateway.{name} has no docstring"


def test_no_private_or_module_names_leak():
    public = {n for n in dir(gateway) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(gateway, n)).__name__ == "module"}
    assert public - modules == set(gateway.__all__) - {"queries"}
