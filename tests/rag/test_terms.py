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


def test_threads_stem_words_as_one_thread_does() -> None:
    """The API answers on several threads; a stemmer they shared garbled its words (IndexError under
    load, or a wrong stem cached for good)."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    import snowballstemmer

    from rag.terms import _stem

    roots = ["connect", "generaliz", "national", "relat", "condition", "operat", "format", "argu", "happi", "sensit"]
    suffixes = ["ing", "ed", "ions", "ational", "ization", "fulness", "ously", "ities", "ers", "ability"]
    words = [f"{root}{suffix}{'x' * n}" for n in range(12) for root in roots for suffix in suffixes]
    serial = snowballstemmer.stemmer("english")
    expected = [serial.stemWord(w) for w in words]
    _stem.cache_clear()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows: a shared stemmer fails at once
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: [content_terms(w)[0] for w in words[i::8]], range(8)))
    finally:
        sys.setswitchinterval(interval)
        _stem.cache_clear()
    got = [None] * len(words)
    for i, stems in enumerate(results):
        got[i::8] = stems
    assert got == expected
