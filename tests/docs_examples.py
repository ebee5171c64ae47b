"""The fenced code blocks of a docs page, so tests run the examples users read."""

from __future__ import annotations

import re
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"


def code_blocks(page: str, language: str) -> list[str]:
    """The ```<language> blocks of docs/<page>, in order."""
    text = (DOCS_DIR / page).read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)
