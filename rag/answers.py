"""Grounded answers with citations (`GroundedAnswer`), or an honest "I don't know".

Two answerers share one contract: the offline `ExtractiveAnswerer` (default, no model needed) and
the `LLMAnswerer` (any OpenAI-compatible chat model, versioned prompt). Both cite passages as [n];
citation 1 is the best supporting passage, and every citation's quote is text of that passage.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import prompts
from rag.chat_models import ChatModel, Message
from rag.citations import CITATION, check_sentence
from rag.retrieval import RetrievedPassage
from rag.terms import content_terms, passage_sentences, split_sentences

REFUSAL = "I don't know: the knowledge available to you does not answer this question."

# Support = DENSE_SHARE * (cosine similarity of the best passage to the question)
#         + (1 - DENSE_SHARE) * (IDF-weighted share of the question's terms in the best sentence).
# Calibrated with `meshpilot eval calibrate` on the 60 golden questions of the bundled knowledge base
# (evals/golden/sample_kb.yaml: answerable ones asked with groups that may read the answer,
# unanswerable ones with every group): a grid over the share and the threshold, best accuracy
# 52/60 (every off-topic question refused; the misses are near-miss questions such as a product
# that does not exist), and the middle of the best region. An AND of two thresholds did no better
# and refused fewer unanswerable questions. Re-run it when the embedding model changes.
DENSE_SHARE = 0.7
MIN_SUPPORT = 0.48
MAX_SENTENCES = 3


def support_score(dense: float, coverage: float, share: float = DENSE_SHARE) -> float:
    return share * dense + (1 - share) * coverage


@dataclass(frozen=True)
class Citation:
    n: int
    product: str
    source: str
    title: str
    chunk_id: int
    quote: str


@dataclass
class GroundedAnswer:
    answer: str
    grounded: bool
    citations: list[Citation] = field(default_factory=list)
    retrieval_ms: float = 0.0
    notes: list[str] = field(default_factory=list)
    guard: dict[str, Any] = field(default_factory=dict)
    """What the guards did: `blocked` (input categories), `dropped_passages`, `redactions`, stage timings."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "grounded": self.grounded,
            "citations": [asdict(c) for c in self.citations],
            "retrieval_ms": round(self.retrieval_ms, 2),
            "guard": self.guard,
        }


class Answerer(Protocol):
    def answer(self, question: str, passages: list[RetrievedPassage]) -> GroundedAnswer: ...


def refusal(note: str) -> GroundedAnswer:
    return GroundedAnswer(answer=REFUSAL, grounded=False, notes=[note])


@dataclass(frozen=True)
class _Candidate:
    passage_index: int
    sentence: str
    coverage: float
    score: float


def _weights(question_terms: list[str], sentences: list[tuple[str, ...]]) -> dict[str, float]:
    """IDF of each question term over the candidate sentences: rare terms decide, common ones don't."""
    df = Counter(t for terms in sentences for t in set(terms))
    n = max(len(sentences), 1)
    return {t: math.log(1 + n / (1 + df[t])) for t in set(question_terms)}


def support_features(question: str, passages: list[RetrievedPassage]) -> tuple[float, list[_Candidate]]:
    """The best passage's dense similarity and the candidate sentences ranked by score."""
    if not passages:
        return 0.0, []
    q_terms = content_terms(question)
    rows = [
        (i, sentence, terms)
        for i, p in enumerate(passages)
        for sentence, terms in passage_sentences(p.text, p.header_path)
    ]
    weights = _weights(q_terms, [r[2] for r in rows])
    total = sum(weights.values()) or 1.0
    candidates = []
    for i, sentence, terms in rows:
        present = set(terms)
        coverage = sum(w for t, w in weights.items() if t in present) / total
        # Passage rank and similarity break ties between sentences that cover the question alike.
        score = coverage + 0.3 * passages[i].dense - 0.02 * i
        candidates.append(_Candidate(i, sentence, coverage, score))
    candidates.sort(key=lambda c: -c.score)
    return max(p.dense for p in passages), candidates


def _cite(chosen: list[tuple[int, str]], passages: list[RetrievedPassage]) -> tuple[str, list[Citation]]:
    """Number passages by first use, write the answer with [n] markers, quote what each supports."""
    numbers: dict[int, int] = {}
    quotes: dict[int, list[str]] = {}
    parts = []
    for index, sentence in chosen:
        n = numbers.setdefault(index, len(numbers) + 1)
        quotes.setdefault(index, []).append(sentence)
        body = sentence.rstrip()
        end = body[-1] if body[-1] in ".!?" else "."
        parts.append(f"{body.rstrip('.!?')} [{n}]{end}")
    citations = [
        Citation(
            n=n,
            product=passages[i].product,
            source=passages[i].source,
            title=passages[i].title,
            chunk_id=passages[i].chunk_id,
            quote=" … ".join(quotes[i]),
        )
        for i, n in sorted(numbers.items(), key=lambda kv: kv[1])
    ]
    return " ".join(parts), citations


class ExtractiveAnswerer:
    """Offline: selects the retrieved sentences that answer the question and cites their passages."""

    def __init__(self, min_support: float = MIN_SUPPORT, dense_share: float = DENSE_SHARE) -> None:
        self.min_support = min_support
        self.dense_share = dense_share

    def answer(self, question: str, passages: list[RetrievedPassage]) -> GroundedAnswer:
        best_dense, candidates = support_features(question, passages)
        if not candidates:
            return refusal("no passage the caller may read matches the question")
        top = candidates[0]
        support = support_score(best_dense, top.coverage, self.dense_share)
        if support < self.min_support:
            return refusal(
                f"support {support:.2f} < {self.min_support} (similarity {best_dense:.2f}, coverage {top.coverage:.2f})"
            )
        chosen = [(top.passage_index, top.sentence)]
        for c in candidates[1:]:
            if len(chosen) >= MAX_SENTENCES:
                break
            strong = c.coverage >= 0.6 * top.coverage and c.score >= 0.75 * top.score
            if strong and all(c.sentence != s for _, s in chosen):
                chosen.append((c.passage_index, c.sentence))
        text, citations = _cite(chosen, passages)
        return GroundedAnswer(answer=text, grounded=True, citations=citations)


def render_context(passages: list[RetrievedPassage]) -> str:
    """Passages as quoted, numbered data blocks (the prompt tells the model they are not instructions)."""
    blocks = []
    for n, p in enumerate(passages, start=1):
        # A passage cannot close its own quote block and talk to the model outside it.
        body = p.text.replace("<<<", "< < <").replace(">>>", "> > >")
        blocks.append(f"[{n}] source: {p.product}/{p.source} ({p.header_path})\n<<<\n{body}\n>>>")
    return "\n\n".join(blocks)


def protected_texts(prompt: prompts.PromptTemplate) -> list[str]:
    """Lines of a system prompt (its canary included) that a reply must never repeat."""
    return [line.strip(" -") for line in prompt.system.splitlines() if len(line.strip(" -")) >= 24]


class LLMAnswerer:
    """A chat model writes the answer from the same passages; the citation check decides what stays."""

    prompt_id = "rag_answer"

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.prompt = prompts.load(self.prompt_id)

    def protected_texts(self) -> list[str]:
        return protected_texts(self.prompt)

    def answer(self, question: str, passages: list[RetrievedPassage]) -> GroundedAnswer:
        if not passages:
            return refusal("no passage the caller may read matches the question")
        system, user = self.prompt.render(context=render_context(passages), question=question)
        messages: list[Message] = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        reply = self.model.complete(messages).strip()
        if not reply or (not CITATION.search(reply) and "don't know" in reply.lower()):
            return refusal("the model said it does not know")

        texts = [p.text for p in passages]
        kept: list[tuple[str, list[int]]] = []
        notes = []
        for sentence in split_sentences(reply):
            check = check_sentence(sentence, texts)
            if check.supported:
                kept.append((check.sentence, check.valid))
            else:
                notes.append(f"removed {check.sentence[:60]!r}: {check.reason}")
        if not kept:
            result = refusal("no sentence of the model's answer is supported by a cited passage")
            result.notes.extend(notes)
            return result

        numbers: dict[int, int] = {}
        parts = []
        for sentence, cited in kept:
            marks = "".join(f"[{numbers.setdefault(i - 1, len(numbers) + 1)}]" for i in cited)
            body = sentence.rstrip()
            end = body[-1] if body and body[-1] in ".!?" else "."
            parts.append(f"{body.rstrip('.!?').rstrip()} {marks}{end}")
        citations = []
        for index, n in sorted(numbers.items(), key=lambda kv: kv[1]):
            p = passages[index]
            claims = set(content_terms(" ".join(s for s, c in kept if index + 1 in c)))
            quote = max(split_sentences(p.text) or [p.text], key=lambda s: len(claims & set(content_terms(s))))
            citations.append(Citation(n, p.product, p.source, p.title, p.chunk_id, quote))
        return GroundedAnswer(answer=" ".join(parts), grounded=True, citations=citations, notes=notes)
