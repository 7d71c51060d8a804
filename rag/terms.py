"""Sentences and content terms for answer extraction and citation checks.

Stems with Snowball English, the algorithm PostgreSQL's `english` configuration uses, so a term the
lexical index matched is the term the answerer sees.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

import snowballstemmer

# PostgreSQL's english stop words plus question words that carry no content.
_STOPWORD_TEXT = """
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves s t don must may might shall also us per via
tell know explain describe give list please need happen happens get
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(`*\[])")
_MARKUP = re.compile(r"^\s*(?:[-*+]\s+|\d+[.)]\s+|#{1,6}\s+|>\s*)")
_PARTS = re.compile(r"[._-]")


_local = threading.local()


def _stemmer() -> snowballstemmer.stemmer:
    """This thread's stemmer: a Snowball stemmer keeps the word it works on in itself, so two threads
    sharing one garbled each other's words (IndexError, or a wrong stem that `_stem` then cached)."""
    stemmer: snowballstemmer.stemmer | None = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    return stemmer


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


def content_terms(text: str) -> list[str]:
    """Stemmed, lower-cased words that are not stop words, in order (repeats kept)."""
    out = []
    for token in _TOKEN.findall(text.lower()):
        # Most tokens hold no separator: no split for them (the answerer calls this ~35 times a question).
        joined = "." in token or "_" in token or "-" in token
        for word in _PARTS.split(token) if joined and not token.replace(".", "").isdigit() else (token,):
            if word and word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
                out.append(_stem(word))
    return out


@lru_cache(maxsize=4096)
def passage_sentences(text: str, header_path: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The sentences of a passage worth quoting, each with its content terms and its header's.

    Remembered per (text, header): popular passages come back question after question, and a
    passage's text never changes under its chunk (a changed document gets new chunks)."""
    header = content_terms(header_path)
    return tuple(
        (sentence, (*content_terms(sentence), *header))
        for sentence in split_sentences(text)
        if len(sentence) >= 12 and any(ch.isalpha() for ch in sentence)
    )


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage: lines first (lists, tables, YAML), then sentence ends within lines."""
    sentences: list[str] = []
    for raw_line in text.splitlines():
        line = _MARKUP.sub("", raw_line).strip()
        if not line or set(line) <= set("|-: "):
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|") if c.strip()]
            line = "; ".join(cells)
        sentences.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return sentences
