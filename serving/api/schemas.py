"""Wire schemas of the meshpilot API (requests and responses), separate from the domain models.

Requests are strict (a number is not a string, `"true"` is not a boolean) and reject text PostgreSQL
cannot store (NUL characters, lone surrogates), so bad input is a 422 here and never a 500 later.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from rag.answers import GroundedAnswer
from rag.ingestion import IngestReport
from rag.products import CLASSIFICATIONS, KnowledgeProduct
from serving.api.github_webhooks import DeliveryStatus

if TYPE_CHECKING:
    from serving.api.copilot_threads import ThreadView


def storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(storable)]
ProductName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")]
GroupName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")]
ShortText = Annotated[Text, StringConstraints(max_length=256)]
Classification = Literal["public", "internal", "confidential", "restricted"]
assert set(get_args(Classification)) == set(CLASSIFICATIONS), "keep in step with rag.products"


class StrictRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


# ---------------------------------------------------------------- /v1/ask
class AskRequest(StrictRequest):
    question: Annotated[Text, StringConstraints(min_length=1, max_length=20_000)] = Field(
        description="The question. Longer than the configured maximum (4,000 characters by default): 400."
    )
    product: ProductName | None = Field(None, description="Only this knowledge product.")
    domain: ShortText | None = Field(None, description="Only products of this domain.")
    stream: bool = Field(
        False, description="Server-Sent Events instead of one JSON body (or send Accept: text/event-stream)."
    )


class CitationOut(BaseModel):
    n: int
    product: str
    source: str
    title: str
    chunk_id: int
    quote: str


class AskResponse(BaseModel):
    answer: str
    grounded: bool
    citations: list[CitationOut]
    retrieval_ms: float
    guard: dict[str, Any] = Field(
        default_factory=dict,
        description="What the guards did: `blocked` (input categories), `dropped_passages`, `redactions`, "
        "and each stage's milliseconds (`input_ms`, `context_ms`, `output_ms`).",
    )

    @classmethod
    def of(cls, result: GroundedAnswer) -> AskResponse:
        return cls.model_validate(result.to_dict())


# ---------------------------------------------------------------- /v1/knowledge-products
class ProductOut(BaseModel):
    name: str
    domain: str | None
    owner: str | None
    classification: str
    groups: list[str]
    version: str | None
    documents: int
    chunks: int
    embedding_model: str

    @classmethod
    def of(cls, product: KnowledgeProduct) -> ProductOut:
        return cls.model_validate(product.public_dict())


class ProductList(BaseModel):
    products: list[ProductOut]


class ProductFields(StrictRequest):
    domain: ShortText | None = None
    owner: ShortText | None = None
    classification: Classification | None = Field(None, description="New products default to internal.")
    groups: Annotated[list[GroupName], Field(max_length=64)] | None = Field(
        None, description="Groups that may read a non-public product."
    )
    version: ShortText | None = None
    description: Annotated[Text, StringConstraints(max_length=2000)] | None = None


class ProductCreate(ProductFields):
    name: ProductName


# ---------------------------------------------------------------- /v1/ingest
class IngestFolderRequest(ProductFields):
    product: ProductName
    path: Annotated[Text, StringConstraints(min_length=1, max_length=4096)] = Field(
        description="A folder on the server, under MESHPILOT_API_INGEST_ROOT."
    )
    reembed: bool = False


class IngestUploadForm(BaseModel):
    """The text fields of a multipart upload (form values are strings, so not strict)."""

    model_config = ConfigDict(extra="forbid")

    product: ProductName
    domain: ShortText | None = None
    owner: ShortText | None = None
    classification: Classification | None = None
    groups: Annotated[Text, StringConstraints(max_length=4096)] | None = Field(
        None, description="Comma-separated groups."
    )
    version: ShortText | None = None
    description: Annotated[Text, StringConstraints(max_length=2000)] | None = None
    reembed: bool = False


class SkippedOut(BaseModel):
    source: str
    reason: str


class IngestReportOut(BaseModel):
    product: str
    documents_added: int
    documents_updated: int
    documents_unchanged: int
    documents_deleted: int
    chunks: int
    embedding_model: str
    chunks_written: int
    skipped: list[SkippedOut]
    seconds: float

    @classmethod
    def of(cls, report: IngestReport) -> IngestReportOut:
        return cls.model_validate(report.to_dict())


# ---------------------------------------------------------------- /v1/copilot/threads
SnakeCase = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
TextFileName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}\.(csv|tsv|txt|jsonl|ndjson|sql|ddl)$")
]
ThreadId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
ThreadStatus = Literal["awaiting_approval", "published", "rejected", "invalid"]


class ThreadFields(StrictRequest):
    """What to draft; as JSON fields, or as the text fields of a multipart upload."""

    name: SnakeCase = Field(description="The data product's name, snake_case, e.g. customer_orders.")
    domain: SnakeCase = Field(description="The owning domain, snake_case, e.g. sales.")
    owner: Annotated[Text, StringConstraints(pattern=r"\S", max_length=256)] = Field(description="The owner's e-mail.")


class ThreadCreate(ThreadFields):
    """The data inline as text: CSV, JSON lines or SQL DDL (binary formats such as Parquet go as multipart)."""

    filename: TextFileName = Field("data.csv", description="The file's name; its suffix says the format.")
    content: Annotated[Text, StringConstraints(min_length=1)] = Field(description="The file's text.")


class CheckOut(BaseModel):
    name: str
    passed: bool
    reason: str


class ThreadState(BaseModel):
    thread: str
    status: ThreadStatus = Field(description="awaiting_approval, then published or rejected; invalid drafts end.")
    valid: bool = Field(description="Every validation check passed.")
    revisions: int
    message: str
    checks: list[CheckOut]
    artifacts: list[str] = Field(description="The files publishing wrote (empty until published).")

    @classmethod
    def of(cls, view: ThreadView) -> ThreadState:
        return cls.model_validate({**view.run.to_dict(), "message": view.message})


class ThreadOut(ThreadState):
    name: str
    domain: str
    owner: str
    source: str = Field(description="The uploaded file's name.")
    created_at: datetime
    files: dict[str, str] = Field(
        description="The draft: path in the product folder -> text (the contract is datacontract.odcs.yaml)."
    )

    @classmethod
    def of(cls, view: ThreadView) -> ThreadOut:
        r = view.record
        fields = {"name": r.name, "domain": r.domain, "owner": r.owner, "source": r.source}
        return cls.model_validate(
            {**ThreadState.of(view).model_dump(), **fields, "created_at": r.created_at, "files": view.run.files}
        )


class ThreadMessage(StrictRequest):
    content: Annotated[Text, StringConstraints(min_length=1, max_length=20_000)] = Field(
        description="`approve`, `reject`, `status`, or a question (answered from the knowledge the key may read)."
    )


class ThreadReply(BaseModel):
    action: Literal["approve", "reject", "status", "answer"]
    reply: str = Field(description="The text to show; an answer lists its sources under it.")
    answer: AskResponse | None = Field(description="The answer with its citations when `action` is answer.")
    thread: ThreadOut


# ---------------------------------------------------------------- /webhooks/github
class WebhookResult(BaseModel):
    delivery: str
    event: str
    action: str | None
    repository: str | None
    pull_request: int | None
    status: DeliveryStatus
    message: str
    comment: str | None = Field(
        description="The PR comment (Markdown) when the PR bot proposed something; null otherwise. Not posted."
    )
    blocking: bool | None = Field(
        None, description="With a comment: true when a change breaks consumers without a major version bump."
    )
    duplicate: bool = Field(False, description="True when this delivery id was received before.")


# ---------------------------------------------------------------- health
class Health(BaseModel):
    status: Literal["ok"]


class ReadinessCheck(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, ReadinessCheck]
