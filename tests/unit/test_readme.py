"""The README stays a landing page: small, the two commands first, every link alive."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def test_the_readme_is_a_landing_page_of_at_most_10_kb():
    size = README.stat().st_size
    assert size <= 10 * 1024, f"README.md is {size} bytes; expected at most 10240: move it to docs/"


def test_the_readme_shows_scripts_run_and_scripts_test_first():
    text = README.read_text(encoding="utf-8")
    first_block = text[text.index("```") : text.index("```", text.index("```") + 3)]
    commands = [line.split()[0] for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["scripts/run", "scripts/test"], first_block
    assert text.index("```") < text.index("\n## "), "the two commands come before any section"


def test_every_relative_link_of_the_readme_reaches_a_file():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    relative = [link for link in links if "://" not in link]
    assert relative, "the README links into the docs"
    for link in relative:
        assert (ROOT / link).exists(), f"README.md links to {link}, which does not exist"
