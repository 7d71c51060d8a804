# ruff: noqa: RUF002  (the homoglyphs are the point of this module)
"""Undoing the cheap evasions before any detector looks at a text.

Threat model: an attacker hides an instruction from pattern matching and from the classifier by
spelling it with zero-width characters, homoglyphs (Cyrillic 'о' for Latin 'o'), mixed case,
full-width forms, or by encoding it (base64, hex, rot13) and asking the model to decode it. Every
detector sees the normalised text plus every payload decoded from it.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad"))
# The Cyrillic and Greek letters that render like Latin ones (NFKC leaves them alone).
_HOMOGLYPHS = str.maketrans(
    "АВЕКМНОРСТУХаеорсуххіјѕԁԛԝΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοριυνεκ",
    "ABEKMHOPCTYXaeopcyxxijsdqwABEZHIKMNOPTYXaopiuvek",
)
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[\s:]?){12,}(?![0-9A-Fa-f])")
_ROT13_HINT = re.compile(r"\brot-?13\b", re.IGNORECASE)


def normalise(text: str) -> str:
    """NFKC, no zero-width characters, Latin look-alikes, collapsed whitespace, lower case."""
    # Look-alikes mapped before and after lower-casing: a capital's own lower case may not look Latin.
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH).translate(_HOMOGLYPHS).lower()
    text = text.translate(_HOMOGLYPHS)
    return re.sub(r"\s+", " ", text).strip()


def _printable(raw: bytes) -> str | None:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(ch.isalpha() or ch.isspace() for ch in decoded)
    return decoded if decoded and letters / len(decoded) > 0.8 else None


def decoded_payloads(text: str) -> list[str]:
    """Readable text hidden in base64 or hex runs, and the rot13 reading when rot13 is mentioned."""
    found = []
    for match in _BASE64.finditer(text):
        chunk = match.group(0)
        try:
            raw = base64.b64decode(chunk + "=" * (-len(chunk) % 4), validate=False)
        except (binascii.Error, ValueError):
            continue
        if (plain := _printable(raw)) is not None:
            found.append(plain)
    for match in _HEX.finditer(text):
        try:
            raw = bytes.fromhex(re.sub(r"[\s:]", "", match.group(0)))
        except ValueError:
            continue
        if (plain := _printable(raw)) is not None:
            found.append(plain)
    if _ROT13_HINT.search(text):
        found.append(codecs.decode(text, "rot13"))
    return found


def views(text: str) -> list[str]:
    """Every reading of `text` a detector must check: the normalised text, the same without the
    look-alike mapping (for text really written in Cyrillic or Greek), and its decoded payloads."""
    native = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH).lower()).strip()
    return [normalise(text), native, *(normalise(p) for p in decoded_payloads(text))]
