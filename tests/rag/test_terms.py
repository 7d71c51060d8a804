"""Content terms and sentences: what the extractive answerer and the citation check compare."""

from __future__ import annotations

from rag.terms import content_terms, passage_sentences, split_sentences


def test_content_terms_stem_drop_stop_words_and_split_joined_words() -> None:
    assert content_terms("What are the owners of the data products?") == ["owner", "data", "product"]
    # Joined words split on . _ - ; numbers (and versions made only of digits) stay whole.
    assert content_terms("self-serve data_product.owner v1.2 3.14 1.2.3") == [
        "self",
        "serv",
        "data",
        "product",
        "owner",
        "v1",
        "2",
        "3.14",
        "1.2.3",
    ]
    assert content_terms("e.g. x-ray a- _lead") == ["ray", "lead"]


def test_passage_sentences_keep_quotable_sentences_with_their_header_terms() -> None:
    text = "# Access\n- Request access in the portal. Owners approve within 2 days.\n\n| a | b |\n|---|---|\nok."
    got = passage_sentences(text, "Runbooks > Access requests")
    header = content_terms("Runbooks > Access requests")
    expected = [s for s in split_sentences(text) if len(s) >= 12 and any(ch.isalpha() for ch in s)]
    assert [s for s, _ in got] == expected == ["Request access in the portal.", "Owners approve within 2 days."]
    for sentence, terms in got:
        assert list(terms) == content_terms(sentence) + header
    # Remembered: the same passage comes back as the same object, not recomputed.
    assert passage_sentences(text, "Runbooks > Access requests") is got
