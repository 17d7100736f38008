"""Admin tokens: parsing, constant-time identification, and never echoing a secret."""

from __future__ import annotations

import pytest

from gateway import Settings
from gateway.admin.auth import AdminTokens
from gateway.exceptions import SettingsError

SECRET = "s3cret-value-0123456789"


def test_parse_pairs_and_identify():
    tokens = AdminTokens.parse(f"ops={SECRET}, deploy-bot = {SECRET[::-1]}")
    assert sorted(tokens.by_name) == ["deploy-bot", "ops"]
    assert tokens.identify(SECRET) == "ops"
    assert tokens.identify(SECRET[::-1]) == "deploy-bot"
    assert tokens.identify(SECRET + "x") is None
    assert tokens.identify("") is None
    assert not AdminTokens.parse("")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (SECRET, "entry 1 is not name=token"),
        (f"ops={SECRET},ops={SECRET}x", "appears twice"),
        ("ops=short-token", "too weak; expected at least 16 characters"),
        (f"bad name={SECRET}", "token name 'bad name' is invalid"),
        (f"={SECRET}", "entry 1 is not name=token"),
    ],
)
def test_bad_tokens_are_named_but_never_echoed(text, words):
    with pytest.raises(SettingsError) as caught:
        AdminTokens.parse(text)
    assert words in str(caught.value)
    assert SECRET not in str(caught.value)
    assert "short-token" not in str(caught.value)


def test_tokens_file_adds_names(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# operators\nalice={SECRET}\nbob={SECRET[::-1]}  # on call\n")
    settings = Settings.from_environ({}, admin_tokens=f"ci={SECRET}x", admin_tokens_file=str(path))
    tokens = AdminTokens.from_settings(settings)
    assert sorted(tokens.by_name) == ["alice", "bob", "ci"]
    assert tokens.identify(SECRET[::-1]) == "bob"


def test_tokens_file_errors_name_the_file(tmp_path):
    missing = Settings.from_environ({}, admin_tokens_file=str(tmp_path / "nope"))
    with pytest.raises(SettingsError, match=r"GATEWAY_ADMIN_TOKENS_FILE=.*nope.* cannot be read"):
        AdminTokens.from_settings(missing)
    path = tmp_path / "tokens"
    path.write_text(f"ops={SECRET}\n")
    clash = Settings.from_environ({}, admin_tokens=f"ops={SECRET}", admin_tokens_file=str(path))
    with pytest.raises(SettingsError, match="in both GATEWAY_ADMIN_TOKENS and"):
        AdminTokens.from_settings(clash)


def test_settings_repr_hides_tokens():
    settings = Settings.from_environ({}, admin_tokens=f"ops={SECRET}")
    assert SECRET not in repr(settings)
