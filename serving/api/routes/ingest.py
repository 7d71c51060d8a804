"""`/v1/ingest` (admin keys): sync uploaded files, or a folder on the server, into a knowledge product.

Both are a sync, exactly like `meshpilot ingest`: afterwards the product holds exactly the uploaded
files (or the folder's), so documents not in the upload are deleted. Uploads are bounded by the
request body limit; larger corpora are ingested from a server-side folder under
MESHPILOT_API_INGEST_ROOT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rag.documents import MANIFEST
from rag.errors import UsageError
from rag.ingestion import IngestReport, SkippedFile, ingest_directory
from rag.products import ProductSpec, merge_specs, parse_groups, spec_from_manifest
from serving.api.audit import record_event
from serving.api.deps import AdminDep, StateDep
from serving.api.errors import ApiError, error_responses
from serving.api.keys import Principal
from serving.api.schemas import IngestFolderRequest, IngestReportOut, IngestUploadForm
from serving.api.state import ApiState
from serving.api.uploads import stage

router = APIRouter(prefix="/v1", tags=["ingestion"])

_FORM_FIELDS = IngestUploadForm.model_json_schema()
_UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["product", "files"],
    "properties": {
        **_FORM_FIELDS["properties"],
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1},
    },
}
_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": _UPLOAD_SCHEMA},
        "application/json": {"schema": IngestFolderRequest.model_json_schema()},
    },
}


@router.post(
    "/ingest",
    response_model=IngestReportOut,
    summary="Ingest files into a knowledge product (admin)",
    description=(__doc__ or "").split("\n\n", 1)[1].replace("\n", " "),
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses=error_responses(400, 401, 403, 409, 413, 415, 422, 429, 503),
)
async def ingest(request: Request, principal: AdminDep, state: StateDep) -> IngestReportOut:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        report = await _ingest_upload(request, state)
    elif content_type == "application/json":
        body = _parse(IngestFolderRequest, await request.body())
        report = await run_in_threadpool(_ingest_folder, state, body)
    else:
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data (files) or application/json (a folder)")
    await run_in_threadpool(_audit, state, principal, report)
    return IngestReportOut.of(report)


def _parse(model: type[IngestFolderRequest], raw: bytes) -> IngestFolderRequest:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None


async def _ingest_upload(request: Request, state: ApiState) -> IngestReport:
    async with request.form(max_files=1000, max_fields=32) as form:
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        fields = {k: v for k, v in form.multi_items() if k != "files" and isinstance(v, str)}
        try:
            body = IngestUploadForm.model_validate(fields)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None
        if not files:
            raise RequestValidationError([{"loc": ("body", "files"), "msg": "at least one file", "type": "missing"}])
        staged = await stage(files)
    try:
        spec = ProductSpec(
            name=body.product,
            domain=body.domain,
            owner=body.owner,
            classification=body.classification,
            groups=parse_groups(body.groups) if body.groups is not None else None,
            version=body.version,
            description=body.description,
        )
        report = await run_in_threadpool(
            ingest_directory,
            state.db,
            state.settings,
            spec,
            staged.folder,
            embedder=state.embedder,
            reembed=body.reembed,
        )
    finally:
        staged.close()
    report.skipped.extend(SkippedFile(name, "unsupported file type") for name in staged.unsupported)
    return report


def _ingest_folder(state: ApiState, body: IngestFolderRequest) -> IngestReport:
    root = state.settings.api_ingest_root
    if root is None:
        raise ApiError(403, "ingest_folder_disabled", "server-side folders are disabled: set MESHPILOT_API_INGEST_ROOT")
    root = root.expanduser().resolve()
    folder = (root / body.path).resolve()  # an absolute `path` replaces root; the check below catches it
    if not folder.is_relative_to(root):
        raise ApiError(403, "path_not_allowed", f"only folders under {root} may be ingested")
    spec = ProductSpec(
        name=body.product,
        domain=body.domain,
        owner=body.owner,
        classification=body.classification,
        groups=body.groups,
        version=body.version,
        description=body.description,
    )
    shown = body.path if len(body.path) <= 200 else body.path[:200] + "…"
    try:
        if not folder.is_dir():
            raise UsageError(f"folder not found: {shown}")
        if (folder / MANIFEST).is_file():
            manifest = spec_from_manifest(folder)
            if manifest.name == spec.name:
                spec = merge_specs(spec, manifest)
    except OSError as exc:  # a name too long for the file system, a permission denied
        raise UsageError(f"cannot read the folder {shown}: {exc.strerror or exc}") from None
    return ingest_directory(state.db, state.settings, spec, Path(folder), reembed=body.reembed)


def _audit(state: ApiState, principal: Principal, report: IngestReport) -> None:
    counts = {k: v for k, v in report.to_dict().items() if k.startswith("documents_") or k == "chunks"}
    with state.db.transaction() as conn:
        record_event(conn, actor=principal.name, action="ingest", target=report.product, details=counts)
