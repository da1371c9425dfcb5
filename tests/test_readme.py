"""README's generated parts match the code they are generated from.

The configuration reference in README is ``pyekka.config.reference_markdown()`` with
every heading two levels deeper. Run with ``PYEKKA_UPDATE_README=1`` to rewrite it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyekka.config import reference_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- config-reference:start (generated; see tests/test_readme.py) -->"
END = "<!-- config-reference:end -->"


def readme_reference() -> str:
    """The reference as README embeds it: headings demoted by two levels."""
    lines = reference_markdown().strip().splitlines()
    return "\n".join("##" + line if line.startswith("#") else line for line in lines)


def test_readme_embeds_the_generated_configuration_reference() -> None:
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text, "README lacks the configuration reference markers"
    head, rest = text.split(START, 1)
    block, tail = rest.split(END, 1)
    expected = "\n" + readme_reference() + "\n"
    if block != expected and os.environ.get("PYEKKA_UPDATE_README") == "1":
        README.write_text(head + START + expected + END + tail, encoding="utf-8")
        block = expected
    assert block == expected, (
        "README's configuration reference is out of date: "
        "run PYEKKA_UPDATE_README=1 python3 -m pytest tests/test_readme.py"
    )
