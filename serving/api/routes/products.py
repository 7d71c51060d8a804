"""`/v1/knowledge-products`: list the products a key may read; admins create them."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, status
from starlette.concurrency import run_in_threadpool

from rag.database import Database
from rag.embeddings import Embedder
from rag.products import KnowledgeProduct, ProductSpec, get_product, list_products, upsert_product
from serving.api.audit import record_event
from serving.api.deps import AdminDep, DatabaseDep, PrincipalDep, StateDep
from serving.api.errors import ApiError, error_responses
from serving.api.keys import Principal
from serving.api.schemas import ProductCreate, ProductList, ProductOut

router = APIRouter(prefix="/v1", tags=["knowledge products"])


@router.get(
    "/knowledge-products",
    response_model=ProductList,
    summary="List knowledge products",
    description="Products the key's groups may read (every product for admin keys).",
    responses=error_responses(401, 429, 503),
)
async def products(principal: PrincipalDep, db: DatabaseDep) -> ProductList:
    items = await run_in_threadpool(_list, db, principal)
    return ProductList(products=[ProductOut.of(p) for p in items])


def _list(db: Database, principal: Principal) -> list[KnowledgeProduct]:
    with db.engine.connect() as conn:
        return list_products(conn, None if principal.admin else principal.groups)


@router.post(
    "/knowledge-products",
    response_model=ProductOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a knowledge product (admin)",
    description="An empty product; `/v1/ingest` fills it. Its embedding model is the service's.",
    responses=error_responses(400, 401, 403, 409, 413, 422, 429, 503),
)
async def create_product(body: ProductCreate, principal: AdminDep, state: StateDep) -> ProductOut:
    spec = ProductSpec(
        name=body.name,
        domain=body.domain,
        owner=body.owner,
        classification=body.classification or "internal",
        groups=body.groups or [],
        version=body.version,
        description=body.description,
    )
    product = await run_in_threadpool(_create, state.db, state.embedder, spec, principal)
    return ProductOut.of(product)


def _create(db: Database, embedder: Embedder, spec: ProductSpec, principal: Principal) -> KnowledgeProduct:
    try:
        with db.transaction() as conn:
            if get_product(conn, spec.name) is not None:
                raise ApiError(409, "product_exists", f"a knowledge product named {spec.name!r} exists")
            product, _ = upsert_product(conn, spec, embedder.model_id, embedder.dimension)
            record_event(
                conn,
                actor=principal.name,
                action="product.create",
                target=spec.name,
                details={"classification": product.classification, "groups": product.groups},
            )
    except sa.exc.IntegrityError:  # created by a concurrent request between the check and the insert
        raise ApiError(409, "product_exists", f"a knowledge product named {spec.name!r} exists") from None
    return product
