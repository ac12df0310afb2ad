"""/api/v1/webhook/: register, list, delete and replay webhooks (our extension; admins only).

Registrations are events on the ``webhooks`` stream, read back by folding that stream (a
handful of events), so a registration is listed the moment it is recorded. Delivery states
come from the dispatcher's tables through ``webhooks.deliveries``. The secret is in the answer
to the registration only: it is derived again by the dispatcher, and stored nowhere.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response

from shared.auth import Permission
from shared.auth_store import jwt_secret
from shared.events import EventData, RecordedEvent, WebhookDeleted, WebhookReplayRequested
from shared.webhooks import (
    SIGNATURE_HEADER,
    STREAM,
    Webhook,
    WebhookError,
    fold_webhooks,
    registration_from,
    webhook_secret,
)
from shared.wire import Int64

from ..commands import decide, emit
from ..deps import Caller, api_state, get_caller
from ..envelopes import APIError, ok
from ..state import ApiState
from ..webhooks import deliveries

router = APIRouter(prefix="/api/v1/webhook")
GLOBAL = ""
"""Webhooks see every namespace's events: managing them takes ``setting::update`` on the
global ARN, which only an admin of everything holds (as for the global settings)."""


def require_admin(caller: Caller) -> None:
    caller.require(GLOBAL, Permission.SETTING_UPDATE)


async def _webhooks(state: ApiState) -> dict[str, Webhook]:
    return fold_webhooks(await state.store.read_stream(STREAM))


async def _with_state(state: ApiState, hooks: list[Webhook]) -> list[dict[str, Any]]:
    states = await deliveries.states(state.pool, [h.webhook_id for h in hooks])
    return [{**h.summary(), "delivery": states[h.webhook_id]} for h in hooks]


def _known(hooks: dict[str, Webhook], webhook_id: str) -> Webhook:
    hook = hooks.get(webhook_id)
    if hook is None:
        raise APIError(404, f"webhook {webhook_id} does not exist")
    return hook


@router.post("/")
async def register(
    body: Any = Body(None),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    require_admin(caller)
    webhook_id = str(uuid.uuid4())
    try:
        event = registration_from(body, webhook_id)
    except WebhookError as exc:
        raise APIError(400, exc.message) from exc
    await emit(state, STREAM, event, actor=caller.actor, wait=False)
    hook = _known(await _webhooks(state), webhook_id)
    data = (await _with_state(state, [hook]))[0]
    data["secret"] = webhook_secret(
        jwt_secret(state.settings.secret, state.settings.data_dir), webhook_id
    )
    data["signature_header"] = SIGNATURE_HEADER
    return ok(data, "keep the secret now: it is not shown again")


@router.get("/")
async def list_webhooks(
    caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    require_admin(caller)
    hooks = sorted((await _webhooks(state)).values(), key=lambda h: h.registered_position)
    return ok(await _with_state(state, hooks))


@router.get("/{webhook_id}/")
async def get_webhook(
    webhook_id: str, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    require_admin(caller)
    hook = _known(await _webhooks(state), webhook_id)
    return ok((await _with_state(state, [hook]))[0])


@router.get("/{webhook_id}/deliveries/")
async def list_deliveries(
    webhook_id: str,
    limit: int = Query(50, ge=1, le=100),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    """The delivery state and the latest attempts, newest first."""
    require_admin(caller)
    hook = _known(await _webhooks(state), webhook_id)
    current = (await _with_state(state, [hook]))[0]["delivery"]
    attempts = await deliveries.recent_attempts(state.pool, webhook_id, limit)
    return ok({"delivery": current, "attempts": attempts})


@router.delete("/{webhook_id}/")
async def delete_webhook(
    webhook_id: str, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    require_admin(caller)

    def decision(history: list[RecordedEvent]) -> list[EventData]:
        _known(fold_webhooks(history), webhook_id)
        return [WebhookDeleted(webhook_id=webhook_id)]

    await decide(state, STREAM, decision, actor=caller.actor)
    return ok(None, f"webhook {webhook_id} deleted")


@router.post("/{webhook_id}/replay/")
async def replay(
    webhook_id: str,
    after: Annotated[Int64, Query(ge=0)],
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    """Deliver again every wanted event after global position ``after``, in order."""
    require_admin(caller)
    head = await state.store.last_position()
    if after > head:
        raise APIError(400, f"after={after} is beyond the end of the log (position {head})")

    def decision(history: list[RecordedEvent]) -> list[EventData]:
        _known(fold_webhooks(history), webhook_id)
        return [WebhookReplayRequested(webhook_id=webhook_id, after=after)]

    await decide(state, STREAM, decision, actor=caller.actor)
    return ok({"id": webhook_id, "after": after}, f"deliveries restart after position {after}")
