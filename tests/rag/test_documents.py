from __future__ import annotations

from pathlib import Path

import pytest

from rag.chunks import chunk_document
from rag.documents import SourceFile, UnreadableDocument, parse, read_bytes, scan


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with `text` in Helvetica, with a correct xref table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def read(tmp_path: Path, name: str, data: bytes) -> tuple[SourceFile, bytes]:
    (tmp_path / name).write_bytes(data)
    (file,) = [f for f in scan(tmp_path) if f.source == name]
    return file, read_bytes(file)


def test_scan_lists_supported_files_sorted_and_skips_hidden(tmp_path: Path) -> None:
    for name in ["b.md", "a.txt", "c.png", ".hidden.md", "sub/d.yaml", ".git/e.md", "f.JSON"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert [f.source for f in scan(tmp_path)] == ["a.txt", "b.md", "f.JSON", "sub/d.yaml"]


def test_markdown_title_and_header_paths(tmp_path: Path) -> None:
    text = "# Naming\n\nIntro line.\n\n## Columns\n\nTimestamps end with _at.\n\n### Booleans\n\nStart with is_.\n"
    doc = parse(*read(tmp_path, "n.md", text.encode()))
    assert doc.title == "Naming"
    chunks = chunk_document(doc, 200, 20)
    assert [(c.header_path, c.text) for c in chunks] == [
        ("Naming", "Intro line."),
        ("Naming > Columns", "Timestamps end with _at."),
        ("Naming > Columns > Booleans", "Start with is_."),
    ]


def test_long_sections_are_split_under_the_chunk_size(tmp_path: Path) -> None:
    body = " ".join(f"Sentence number {i} explains one rule of the mesh." for i in range(300))
    doc = parse(*read(tmp_path, "long.md", f"# Long\n\n## Part\n\n{body}\n".encode()))
    chunks = chunk_document(doc, 200, 20)
    assert len(chunks) > 5
    assert all(c.header_path == "Long > Part" for c in chunks)
    assert all(len(c.text.split()) < 200 for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_html_keeps_headings_and_drops_scripts(tmp_path: Path) -> None:
    html = (
        b"<html><head><title>Dash</title><script>alert('x')</script></head><body>"
        b"<h1>Dash</h1><p>Refreshes hourly.</p><h2>Access</h2><ul><li>sales</li><li>finance</li></ul></body></html>"
    )
    doc = parse(*read(tmp_path, "d.html", html))
    assert doc.title == "Dash"
    assert "alert" not in doc.text
    chunks = chunk_document(doc, 200, 20)
    assert ("Dash > Access", "- sales\n- finance") in [(c.header_path, c.text) for c in chunks]


def test_pdf_text_is_extracted(tmp_path: Path) -> None:
    doc = parse(*read(tmp_path, "p.pdf", minimal_pdf("Invoices are kept for ten years.")))
    assert "Invoices are kept for ten years." in doc.text


def test_yaml_and_json_titles_come_from_their_name(tmp_path: Path) -> None:
    y = parse(*read(tmp_path, "c.yaml", b"name: orders\nstatus: active\n"))
    j = parse(*read(tmp_path, "c.json", b'{"id": "payments", "columns": ["a"]}'))
    assert (y.title, j.title) == ("orders", "payments")
    assert "columns:" in j.text  # JSON re-rendered as YAML


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("bin.md", b"\x00\x01\x02binary", "binary"),
        ("latin.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("bad.yaml", b"key: [unclosed", "invalid YAML"),
        ("bad.json", b"{nope", "invalid JSON"),
        ("bad.pdf", b"%PDF-1.4 garbage", "PDF"),
    ],
)
def test_unreadable_files_raise_a_clear_reason(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableDocument, match=reason):
        parse(*read(tmp_path, name, data))


def test_utf8_bom_is_not_part_of_the_text(tmp_path: Path) -> None:
    doc = parse(*read(tmp_path, "bom.md", "\ufeff# Title\n\nBody.".encode()))
    assert doc.title == "Title"
