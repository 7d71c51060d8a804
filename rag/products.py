"""Knowledge products: owner, domain, classification, allowed groups, version, embedding model.

Visibility rule, applied inside every SQL query that reads knowledge: a `public` product is visible
to everyone; any other product only to callers sharing at least one of its groups.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text
from sqlalchemy.engine import Connection

from rag.documents import MANIFEST
from rag.errors import EmbeddingModelMismatch, NotFound, UsageError

CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")

# The SQL predicate every read goes through; :groups is the caller's groups (text[]).
VISIBLE = "(p.classification = 'public' OR p.groups && CAST(:groups AS text[]))"


def parse_groups(raw: str | list[str] | None) -> list[str]:
    """'a, b' or ['a', 'b'] -> ['a', 'b'], validated and de-duplicated (order kept)."""
    if raw is None:
        return []
    items = raw.split(",") if isinstance(raw, str) else raw
    groups: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if not _GROUP.match(item):
            raise UsageError(f"invalid group name {item!r}: letters, digits and . _ : @ - only")
        if item not in groups:
            groups.append(item)
    return groups


@dataclass(frozen=True)
class ProductSpec:
    """What the operator states about a product; None keeps the stored value (or the default)."""

    name: str
    domain: str | None = None
    owner: str | None = None
    classification: str | None = None
    groups: list[str] | None = None
    version: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise UsageError(
                f"invalid product name {self.name!r}: lower-case letters, digits, '.', '_' and '-', "
                "starting with a letter or digit, at most 128 characters"
            )
        if self.classification is not None and self.classification not in CLASSIFICATIONS:
            raise UsageError(f"invalid classification {self.classification!r}: one of {', '.join(CLASSIFICATIONS)}")


@dataclass
class KnowledgeProduct:
    name: str
    domain: str | None
    owner: str | None
    classification: str
    groups: list[str]
    version: str | None
    embedding_model: str
    description: str | None = None
    embedding_dim: int = 0
    documents: int = 0
    chunks: int = 0
    id: int = field(default=0, repr=False)

    def public_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for private in ("id", "embedding_dim", "description"):
            data.pop(private)
        return data


_SELECT = """
    SELECT p.id, p.name, p.domain, p.owner, p.classification, p.groups, p.version, p.description,
           p.embedding_model, p.embedding_dim,
           (SELECT count(*) FROM documents d WHERE d.product_id = p.id) AS documents,
           (SELECT coalesce(sum(d.chunk_count), 0) FROM documents d WHERE d.product_id = p.id) AS chunks
    FROM knowledge_products p
"""


def _row(row: Any) -> KnowledgeProduct:
    m = row._mapping
    return KnowledgeProduct(
        id=m["id"],
        name=m["name"],
        domain=m["domain"],
        owner=m["owner"],
        classification=m["classification"],
        groups=list(m["groups"]),
        version=m["version"],
        description=m["description"],
        embedding_model=m["embedding_model"],
        embedding_dim=m["embedding_dim"],
        documents=int(m["documents"]),
        chunks=int(m["chunks"]),
    )


def list_products(conn: Connection, groups: list[str] | None = None) -> list[KnowledgeProduct]:
    """All products (operator view), or those visible to `groups`."""
    if groups is None:
        rows = conn.execute(text(_SELECT + " ORDER BY p.name"))
    else:
        rows = conn.execute(text(_SELECT + f" WHERE {VISIBLE} ORDER BY p.name"), {"groups": groups})
    return [_row(r) for r in rows]


def get_product(conn: Connection, name: str, *, lock: bool = False) -> KnowledgeProduct | None:
    sql = _SELECT + " WHERE p.name = :name" + (" FOR UPDATE OF p" if lock else "")
    row = conn.execute(text(sql), {"name": name}).first()
    return _row(row) if row else None


def require_product(conn: Connection, name: str) -> KnowledgeProduct:
    product = get_product(conn, name)
    if product is None:
        raise NotFound(f"no knowledge product named {name!r}; `meshpilot products` lists them")
    return product


def upsert_product(
    conn: Connection, spec: ProductSpec, model_id: str, dim: int, *, reembed: bool = False
) -> tuple[KnowledgeProduct, bool]:
    """Create or update the product row. Returns it and whether its embedding model changed.

    A product indexed with another model is an error unless `reembed`: mixing vectors of two
    models in one index would silently return nonsense.
    """
    existing = get_product(conn, spec.name, lock=True)
    if existing is None:
        conn.execute(
            text(
                "INSERT INTO knowledge_products (name, domain, owner, classification, groups, version,"
                " description, embedding_model, embedding_dim)"
                " VALUES (:name, :domain, :owner, :classification, :groups, :version, :description,"
                " :model, :dim)"
            ),
            {
                "name": spec.name,
                "domain": spec.domain,
                "owner": spec.owner,
                "classification": spec.classification or "internal",
                "groups": spec.groups or [],
                "version": spec.version,
                "description": spec.description,
                "model": model_id,
                "dim": dim,
            },
        )
        created = get_product(conn, spec.name)
        assert created is not None
        return created, False

    model_changed = (existing.embedding_model, existing.embedding_dim) != (model_id, dim)
    if model_changed and not reembed and existing.documents:
        raise EmbeddingModelMismatch(
            f"product {spec.name!r} was indexed with {existing.embedding_model} ({existing.embedding_dim} "
            f"dimensions) but the configured model is {model_id} ({dim}); pass --reembed to rebuild it "
            "with the configured model, or configure the original one"
        )
    conn.execute(
        text(
            "UPDATE knowledge_products SET domain = coalesce(:domain, domain), owner = coalesce(:owner, owner),"
            " classification = coalesce(:classification, classification),"
            " groups = coalesce(CAST(:groups AS text[]), groups), version = coalesce(:version, version),"
            " description = coalesce(:description, description), embedding_model = :model,"
            " embedding_dim = :dim, updated_at = now() WHERE id = :id"
        ),
        {
            "id": existing.id,
            "domain": spec.domain,
            "owner": spec.owner,
            "classification": spec.classification,
            "groups": spec.groups,
            "version": spec.version,
            "description": spec.description,
            "model": model_id,
            "dim": dim,
        },
    )
    updated = get_product(conn, spec.name)
    assert updated is not None
    return updated, model_changed


def delete_product(conn: Connection, name: str) -> bool:
    return bool(conn.execute(text("DELETE FROM knowledge_products WHERE name = :n"), {"n": name}).rowcount)


def spec_from_manifest(product_dir: Path) -> ProductSpec:
    """A product folder's `product.yaml` as a ProductSpec."""
    try:
        meta = yaml.safe_load((product_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read {product_dir / MANIFEST}: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise UsageError(f"{product_dir / MANIFEST} must be a mapping with at least a `name`")
    return ProductSpec(
        name=meta["name"],
        domain=meta.get("domain"),
        owner=meta.get("owner"),
        classification=meta.get("classification"),
        groups=parse_groups(meta.get("groups") or []),
        version=str(meta["version"]) if meta.get("version") is not None else None,
        description=meta.get("description"),
    )


def merge_specs(stated: ProductSpec, manifest: ProductSpec) -> ProductSpec:
    """What the operator stated wins; the folder's manifest fills the rest."""
    return ProductSpec(
        **{
            f: getattr(stated, f) if getattr(stated, f) is not None else getattr(manifest, f)
            for f in ProductSpec.__dataclass_fields__
        }
    )
