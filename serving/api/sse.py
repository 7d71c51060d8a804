"""Server-Sent Events framing and the pieces an answer is streamed in.

Answers are streamed after the citation check has passed the whole answer: streaming tokens before
the check would show text that the check may still remove. The first byte therefore waits for the
answer; the pieces then arrive word by word.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_PIECE = re.compile(r"\S+\s*|\s+")
MEDIA_TYPE = "text/event-stream"
# Proxies (nginx) buffer responses unless told not to; caches must not keep answers.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(data: Any, name: str | None = None) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n"


def pieces(text: str) -> Iterator[str]:
    """The text in word-sized pieces whose concatenation is the text."""
    yield from _PIECE.findall(text)


def wants_stream(accept: str | None) -> bool:
    return bool(accept) and MEDIA_TYPE in (accept or "")
