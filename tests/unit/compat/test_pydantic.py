"""The gateway under either pydantic major: what differs lives in gateway._compat.pydantic."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from fastapi import _compat as fastapi_compat
from pydantic import BaseModel
from typer.testing import CliRunner

from gateway._compat import PYDANTIC_V1, Undefined, prepare_response_content
from gateway._compat.pydantic import normalize_errors, response_validator
from gateway.cli import translate as translate_cli
from gateway.cli.commands import cli


class Out(BaseModel):
    name: str
    note: str = "none"


OPTIONS = {"exclude_unset": True, "exclude_defaults": False, "exclude_none": False}


def test_the_installed_major_is_known() -> None:
    assert PYDANTIC_V1 is version("pydantic").startswith("1.")
    assert Undefined is fastapi_compat.Undefined  # the sentinel FastAPI's own fields use


def test_a_returned_model_is_prepared_as_fastapi_does() -> None:
    prepared = prepare_response_content(Out(name="a"), OPTIONS)
    if PYDANTIC_V1:  # validated from a dict, as FastAPI 0.100-0.125 do on pydantic 1
        assert prepared == {"name": "a"}
    else:
        assert prepared == Out(name="a")


def test_errors_are_normalized_to_fastapis_dicts() -> None:
    if PYDANTIC_V1:  # pydantic 1's validators return ErrorWrappers; the bodies show dicts
        from pydantic.error_wrappers import ErrorWrapper
        from pydantic.errors import IntegerError

        wrapped = [ErrorWrapper(IntegerError(), loc=("path", "n"))]
        assert normalize_errors(wrapped) == [
            {
                "loc": ("path", "n"),
                "msg": "value is not a valid integer",
                "type": "type_error.integer",
            }
        ]
    else:
        error = {"type": "int_parsing", "loc": ("path", "n"), "msg": "m", "input": "x"}
        assert normalize_errors([error]) == [error]


def test_translate_on_pydantic_1_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(translate_cli, "PYDANTIC_V1", True)
    monkeypatch.setattr(translate_cli, "PYDANTIC", (1, 10, 27))
    result = CliRunner().invoke(cli, ["translate", "missing.py"])
    assert result.exit_code != 0
    assert "gateway translate needs pydantic 2 (found 1.10.27)" in result.output


class Row:  # an ORM object as a route returns it
    def __init__(self, name: str) -> None:
        self.name = name
        self.note = "n"


if PYDANTIC_V1:

    class RowOut(BaseModel):
        name: str
        note: str

        class Config:
            orm_mode = True

else:

    class RowOut(BaseModel):  # type: ignore[no-redef]
        name: str
        note: str


def test_a_response_model_reads_orm_objects_as_fastapi_does() -> None:
    validate = response_validator(list[RowOut])
    assert validate([Row("a"), Row("b")]) == [
        RowOut(name="a", note="n"),
        RowOut(name="b", note="n"),
    ]
    with pytest.raises(ValueError):  # pydantic's ValidationError, on either major
        validate([object()])
