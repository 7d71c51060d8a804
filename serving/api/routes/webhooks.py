"""`/webhooks/github`: verified GitHub deliveries, the PR bot, stored with the response sent (see github_webhooks)."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool

from serving.api.deps import StateDep
from serving.api.errors import ApiError, error_responses
from serving.api.github_webhooks import Delivery, SignatureError, outcome, store, stored_response, verify_signature
from serving.api.schemas import WebhookResult
from serving.api.state import ApiState

router = APIRouter(tags=["webhooks"])
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9-]{1,128}$")
_EVENT = re.compile(r"^[a-z_]{1,64}$")
_KNOWN_EVENTS = {"ping", "pull_request", "push", "pull_request_review", "issue_comment"}


@router.post(
    "/webhooks/github",
    response_model=WebhookResult,
    summary="GitHub webhook",
    description=(
        "Verifies `X-Hub-Signature-256` (HMAC-SHA256 of the body with MESHPILOT_GITHUB_WEBHOOK_SECRET), "
        "stores the delivery and returns what was done. On a pull_request (opened, synchronize, reopened, "
        "ready_for_review) of a repository in MESHPILOT_GITHUB_REPOSITORIES, the PR bot compares "
        "pull_request.base.sha with head.sha in the local clone (never fetched): status `comment_ready` with "
        "the Markdown `comment` and `blocking` (a breaking change without a major version bump), or "
        "`no_data_changes`, `repository_not_configured`, `commits_not_found`, `proposal_failed`. The comment is "
        "returned and stored, not posted to GitHub: a CI step or a GitHub App posts it. A delivery id seen "
        "before returns the stored response with `duplicate: true`."
    ),
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}},
    responses=error_responses(400, 401, 413, 503),
)
async def github(
    request: Request,
    state: StateDep,
    x_github_event: Annotated[str | None, Header()] = None,
    x_github_delivery: Annotated[str | None, Header()] = None,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
) -> WebhookResult:
    secret = state.settings.github_webhook_secret
    if secret is None:
        raise ApiError(503, "webhook_not_configured", "set MESHPILOT_GITHUB_WEBHOOK_SECRET to receive GitHub webhooks")
    body = await request.body()
    try:
        verify_signature(secret.get_secret_value(), body, x_hub_signature_256)
    except SignatureError as exc:
        state.metrics.webhooks.labels("unverified", "bad_signature").inc()
        raise ApiError(401, "bad_signature", str(exc)) from None
    if not x_github_event or not _EVENT.match(x_github_event):
        raise ApiError(400, "bad_request", "missing or invalid X-GitHub-Event header")
    delivery_id = x_github_delivery if x_github_delivery and _DELIVERY_ID.match(x_github_delivery) else None
    try:
        delivery = Delivery.parse(delivery_id or "sha256-" + hashlib.sha256(body).hexdigest(), x_github_event, body)
    except ValueError as exc:
        raise ApiError(400, "malformed_json", str(exc)) from None
    result = await run_in_threadpool(_handle, state, delivery, body)
    state.metrics.webhooks.labels(
        delivery.event if delivery.event in _KNOWN_EVENTS else "other",
        "duplicate" if result.duplicate else result.status,
    ).inc()
    return result


def _handle(state: ApiState, delivery: Delivery, body: bytes) -> WebhookResult:
    with state.db.engine.connect() as conn:  # a redelivery does not run the PR bot again
        previous = stored_response(conn, delivery.id)
    if previous is not None:
        return WebhookResult.model_validate({**previous, "duplicate": True})
    done = outcome(delivery, state.settings.github_repositories)
    result = WebhookResult(
        delivery=delivery.id,
        event=delivery.event,
        action=delivery.action,
        repository=delivery.repository,
        pull_request=delivery.pull_number,
        status=done.status,
        message=done.message,
        comment=done.comment,
        blocking=done.blocking,
    )
    response: dict[str, Any] = result.model_dump(mode="json")
    with state.db.transaction() as conn:
        if store(conn, delivery, done.status, done.comment, response, body):
            return result
        previous = stored_response(conn, delivery.id)  # the same delivery arrived meanwhile
    return WebhookResult.model_validate({**(previous or response), "duplicate": True})
