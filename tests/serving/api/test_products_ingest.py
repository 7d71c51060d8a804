"""Admins create products and ingest uploads or server-side folders; everyone lists what they may read."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from tests.serving.api.conftest import Keys, bearer


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_admin_creates_a_product_once(client: httpx.Client, keys: Keys) -> None:
    name = unique("api-created")
    body = {"name": name, "classification": "restricted", "groups": ["legal"], "domain": "legal", "owner": "legal-team"}
    r = client.post("/v1/knowledge-products", json=body, headers=bearer(keys.admin))
    assert r.status_code == 201, r.text
    product = r.json()
    assert (product["classification"], product["groups"], product["documents"]) == ("restricted", ["legal"], 0)
    assert product["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    again = client.post("/v1/knowledge-products", json=body, headers=bearer(keys.admin))
    assert again.status_code == 409 and again.json()["error"]["code"] == "product_exists"
    assert name in {
        p["name"] for p in client.get("/v1/knowledge-products", headers=bearer(keys.admin)).json()["products"]
    }
    assert name not in {
        p["name"] for p in client.get("/v1/knowledge-products", headers=bearer(keys.sales)).json()["products"]
    }


def test_upload_syncs_files_and_answers_only_the_allowed_group(client: httpx.Client, keys: Keys) -> None:
    name = unique("api-upload")
    files = [
        (
            "files",
            (
                "retention.md",
                b"# Retention\n\nAudit logs of the lakehouse are retained for 400 days.\n",
                "text/markdown",
            ),
        ),
        (
            "files",
            (
                "sub/escalation.txt",
                b"Escalate data quality incidents to the quality guild within 2 hours.\n",
                "text/plain",
            ),
        ),
        ("files", ("image.png", b"\x89PNG not really", "image/png")),
    ]
    form = {"product": name, "classification": "internal", "groups": "sre"}
    r = client.post("/v1/ingest", data=form, files=files, headers=bearer(keys.admin))
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["product"], report["documents_added"]) == (name, 2)
    assert report["skipped"] == [{"source": "image.png", "reason": "unsupported file type"}]

    question = {"question": "How long are lakehouse audit logs retained?", "product": name}
    answer = client.post("/v1/ask", json=question, headers=bearer(keys.sre)).json()
    assert "400 days" in answer["answer"] and answer["citations"][0]["source"] == "retention.md"
    refused = client.post("/v1/ask", json=question, headers=bearer(keys.sales))
    assert refused.status_code == 404 and "400 days" not in refused.text

    # A second upload is a sync: the product now holds exactly these files.
    r = client.post("/v1/ingest", data=form, files=files[:1], headers=bearer(keys.admin))
    assert (r.json()["documents_unchanged"], r.json()["documents_deleted"]) == (1, 1)


def test_upload_rejects_unsafe_names_and_empty_uploads(client: httpx.Client, keys: Keys) -> None:
    for bad in ("../escape.md", "/etc/passwd.md", "a/../../b.md", ".hidden.md"):
        r = client.post(
            "/v1/ingest",
            data={"product": unique("unsafe")},
            files=[("files", (bad, b"x", "text/plain"))],
            headers=bearer(keys.admin),
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", bad
    r = client.post(
        "/v1/ingest", data={"product": "empty"}, files={"other": ("a.md", b"x")}, headers=bearer(keys.admin)
    )
    assert r.status_code == 422
    r = client.post("/v1/ingest", content=b"plain", headers={**bearer(keys.admin), "Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"


def test_server_side_folder_under_the_ingest_root_only(client: httpx.Client, keys: Keys, ingest_root: Path) -> None:
    folder = ingest_root / "glossary"
    folder.mkdir()
    (folder / "terms.md").write_text("# Terms\n\nA golden record is the deduplicated master copy of an entity.\n")
    name = unique("api-folder")
    r = client.post(
        "/v1/ingest", json={"product": name, "path": "glossary", "classification": "public"}, headers=bearer(keys.admin)
    )
    assert r.status_code == 200, r.text
    assert r.json()["documents_added"] == 1
    for outside in ("/etc", "../", "glossary/../.."):
        r = client.post("/v1/ingest", json={"product": name, "path": outside}, headers=bearer(keys.admin))
        assert r.status_code == 403 and r.json()["error"]["code"] == "path_not_allowed", outside
    r = client.post("/v1/ingest", json={"product": name, "path": "missing"}, headers=bearer(keys.admin))
    assert r.status_code == 400 and "folder not found" in r.json()["error"]["message"]
