"""Citation checks: does a cited passage support a sentence?

Support is measured as the share of the sentence's content terms found in the cited passages. It is
lexical on purpose: cheap, deterministic and strict about numbers and names, which is where models
invent facts. A sentence that cites nothing, or cites a passage that was not in the context, has no
support at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.terms import content_terms

CITATION = re.compile(r"\[(\d{1,3})\]")
MIN_SUPPORT = 0.6


@dataclass(frozen=True)
class SentenceCheck:
    sentence: str  # without citation markers
    cited: list[int]  # 1-based passage numbers as written, valid or not
    valid: list[int]
    support: float
    supported: bool
    reason: str


def check_sentence(sentence: str, passages: list[str], min_support: float = MIN_SUPPORT) -> SentenceCheck:
    cited = [int(n) for n in CITATION.findall(sentence)]
    plain = CITATION.sub("", sentence).strip()
    valid = [n for n in dict.fromkeys(cited) if 1 <= n <= len(passages)]
    terms = set(content_terms(plain))
    if not cited:
        return SentenceCheck(plain, cited, valid, 0.0, False, "cites no passage")
    if not valid:
        return SentenceCheck(plain, cited, valid, 0.0, False, "cites a passage that was not in the context")
    if not terms:
        return SentenceCheck(plain, cited, valid, 1.0, True, "no content words")
    evidence: set[str] = set()
    for n in valid:
        evidence |= set(content_terms(passages[n - 1]))
    support = len(terms & evidence) / len(terms)
    ok = support >= min_support
    return SentenceCheck(
        plain, cited, valid, support, ok, "supported" if ok else f"support {support:.2f} < {min_support}"
    )
