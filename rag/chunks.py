"""Splitting documents into `Chunk`s with llama-index node parsers.

Markdown (and HTML, converted to Markdown headings) is split by headers first so each chunk keeps
its header path ("Title > Section > Subsection"); sections longer than the chunk size are split
again on sentence boundaries. Sizes are llama-index tokens, kept under MiniLM's 256 word pieces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rag.documents import SourceDocument

READER_VERSION = "1"
_HEADING = re.compile(r"^\s*(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Chunk:
    position: int
    header_path: str
    text: str


def pipeline_id(chunk_size: int, chunk_overlap: int) -> str:
    """Identifies how a document was chunked; a change re-chunks documents whose bytes did not change."""
    return f"reader={READER_VERSION};md+sentence;size={chunk_size};overlap={chunk_overlap}"


@lru_cache(maxsize=8)
def _parsers(chunk_size: int, chunk_overlap: int) -> tuple[Any, Any]:
    from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter

    return (
        MarkdownNodeParser(include_metadata=True, include_prev_next_rel=False),
        SentenceSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            include_metadata=False,
            include_prev_next_rel=False,
        ),
    )


def _section_path(parent_path: str, text: str, title: str) -> tuple[str, str]:
    """The section's full header path and its body without the heading line."""
    parts = [p for p in parent_path.strip("/").split("/") if p]
    first, _, rest = text.lstrip().partition("\n")
    heading = _HEADING.match(first)
    if heading:
        parts.append(heading.group(2).strip())
        body = rest.strip()
    else:
        body = text.strip()
    if not parts:
        parts = [title]
    return " > ".join(parts), body


def chunk_document(doc: SourceDocument, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    from llama_index.core import Document

    if not doc.text.strip():
        return []
    markdown_parser, splitter = _parsers(chunk_size, chunk_overlap)
    sections: list[tuple[str, str]] = []
    if doc.markdown:
        for node in markdown_parser.get_nodes_from_documents([Document(text=doc.text)]):
            path, body = _section_path(node.metadata.get("header_path", "/"), node.get_content(), doc.title)
            if body:
                sections.append((path, body))
    else:
        sections.append((doc.title, doc.text.strip()))

    chunks: list[Chunk] = []
    for path, body in sections:
        for piece in splitter.split_text(body):
            piece = piece.strip()
            if piece:
                chunks.append(Chunk(position=len(chunks), header_path=path, text=piece))
    return chunks
