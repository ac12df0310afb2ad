"""/api/v1/namespace/…: list, get, create, update, delete, v1 and v2 role mappings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from shared.auth import InvalidArnError, InvalidRoleError, Permission, is_valid_name
from shared.auth.arn import validate_binding_key
from shared.auth.permissions import storable_role
from shared.events import (
    NamespaceCreated,
    NamespaceDeleted,
    NamespaceMetadataSet,
    NamespaceRoleSet,
    RoleBindingsChanged,
    stream_of_namespace,
)

from ..cleanup import delete_builds_files
from ..commands import emit
from ..deps import Caller, api_state, get_caller
from ..envelopes import APIError, Paging, ack, ok, paging
from ..queries import builds, namespaces
from ..startup import is_live
from ..state import ApiState

P = Permission
router = APIRouter(prefix="/api/v1/namespace")
NOT_FOUND = "namespace does not exist"


async def _live(state: ApiState, name: str) -> Any:
    row = await namespaces.get_live(state.pool, name)
    if row is None:
        raise APIError(404, NOT_FOUND)
    return row


@router.get("/")
async def list_namespaces(
    page: Paging = Depends(paging),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    data, count = await namespaces.list_page(state.pool, caller.patterns(), page)
    return page.envelope(data, count, message_key=False)


@router.get("/{namespace}/")
async def get_namespace(
    namespace: str, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    caller.require(namespace, P.NAMESPACE_READ)
    return ok(namespaces.namespace_shape(await _live(state, namespace)))


async def create_namespace_events(
    state: ApiState, namespace: str, actor: str, *, exist_ok: bool = False
) -> None:
    """Append NamespaceCreated unless the namespace exists (409).

    Its own stream is asked too, not only the read model, which may not have the creation
    of a concurrent request yet; the expected version makes the append lose any race.
    ``exist_ok``: a namespace that exists, or was created meanwhile, is fine (concurrent first
    submissions to a new namespace all go ahead; one of them creates it).
    """
    if not is_valid_name(namespace):
        raise APIError(400, f"Namespace name={namespace!r} is not valid")
    stream = stream_of_namespace(namespace)
    history = await state.store.read_stream(stream)
    if is_live(history) or await namespaces.get_live(state.pool, namespace) is not None:
        if exist_ok:
            return
        raise APIError(409, "namespace already exists")
    try:
        await emit(
            state,
            stream,
            NamespaceCreated(namespace=namespace),
            actor=actor,
            expected_version=history[-1].version if history else 0,
            conflict="namespace already exists",
        )
    except APIError as exc:
        if not (exist_ok and exc.status_code == 409):
            raise


@router.post("/{namespace}/")
async def create_namespace(
    namespace: str, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    caller.require(namespace, P.NAMESPACE_CREATE)
    await create_namespace_events(state, namespace, caller.actor)
    return ack()


class NamespaceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metadata: dict[str, Any] | None = None
    role_mappings: dict[str, list[str]] | None = None


def _validated_mappings(mappings: dict[str, list[str]]) -> dict[str, list[str]]:
    try:
        return {
            validate_binding_key(arn): [storable_role(r) for r in roles]
            for arn, roles in mappings.items()
        }
    except InvalidRoleError as exc:
        raise APIError(400, str(exc)) from exc
    except (InvalidArnError, ValueError) as exc:
        raise APIError(400, str(exc)) from exc


@router.put("/{namespace}/")
async def update_namespace(
    namespace: str,
    body: NamespaceUpdate,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    caller.require(
        namespace,
        P.NAMESPACE_UPDATE,
        P.NAMESPACE_ROLE_MAPPING_CREATE,
        P.NAMESPACE_ROLE_MAPPING_DELETE,
    )
    await _live(state, namespace)
    events: list[Any] = []
    if body.metadata is not None:
        events.append(NamespaceMetadataSet(namespace=namespace, metadata=body.metadata))
    if body.role_mappings is not None:
        mappings = _validated_mappings(body.role_mappings)
        events.append(RoleBindingsChanged(namespace=namespace, role_mappings=mappings))
    if events:
        await emit(state, stream_of_namespace(namespace), *events, actor=caller.actor)
    return ack()


@router.put("/{namespace}/metadata")
async def update_metadata(
    namespace: str,
    body: dict[str, Any] = Body(...),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    caller.require(namespace, P.NAMESPACE_UPDATE)
    await _live(state, namespace)
    await emit(
        state,
        stream_of_namespace(namespace),
        NamespaceMetadataSet(namespace=namespace, metadata=body),
        actor=caller.actor,
    )
    return ack()


@router.get("/{namespace}/roles")
async def list_roles(
    namespace: str, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    caller.require(namespace, P.NAMESPACE_READ, P.NAMESPACE_ROLE_MAPPING_READ)
    return ok(namespaces.v2_roles(await _live(state, namespace)))


@router.delete("/{namespace}/roles")
async def delete_roles(
    namespace: str, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    caller.require(namespace, P.NAMESPACE_READ, P.NAMESPACE_ROLE_MAPPING_DELETE)
    row = await _live(state, namespace)
    events = [
        NamespaceRoleSet(namespace=namespace, other_namespace=m["other_namespace"], role=None)
        for m in namespaces.v2_roles(row)
    ]
    if events:
        await emit(state, stream_of_namespace(namespace), *events, actor=caller.actor)
    return ack()


async def _other(state: ApiState, other: str) -> None:
    if await namespaces.get_live(state.pool, other) is None:
        raise APIError(400, f"Namespace='{other}' not found")


def _find(row: Any, other: str) -> dict[str, Any] | None:
    return next((m for m in namespaces.v2_roles(row) if m["other_namespace"] == other), None)


@router.get("/{namespace}/role")
async def get_role(
    namespace: str,
    other_namespace: str,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    caller.require(namespace, P.NAMESPACE_READ, P.NAMESPACE_ROLE_MAPPING_READ)
    row = await _live(state, namespace)
    await _other(state, other_namespace)
    found = _find(row, other_namespace)
    if found is None:
        raise APIError(404, "failed to find role")
    return ok(found)


class RoleBody(BaseModel):
    other_namespace: str
    role: str


class RoleDelete(BaseModel):
    other_namespace: str


async def _set_role(
    state: ApiState, caller: Caller, namespace: str, other: str, role: str | None, exists: bool
) -> Response:
    row = await _live(state, namespace)
    await _other(state, other)
    stored = None
    if role is not None:
        try:
            stored = storable_role(role, mapping_version=2)
        except InvalidRoleError as exc:
            raise APIError(400, str(exc)) from exc
    found = _find(row, other)
    if exists and found is None:
        raise APIError(404, "failed to find role")
    if not exists and found is not None:
        raise APIError(409, "role mapping already exists")
    await emit(
        state,
        stream_of_namespace(namespace),
        NamespaceRoleSet(namespace=namespace, other_namespace=other, role=stored),
        actor=caller.actor,
    )
    return ack()


@router.post("/{namespace}/role")
async def create_role(
    namespace: str,
    body: RoleBody,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    caller.require(namespace, P.NAMESPACE_ROLE_MAPPING_CREATE)
    return await _set_role(state, caller, namespace, body.other_namespace, body.role, False)


@router.put("/{namespace}/role")
async def update_role(
    namespace: str,
    body: RoleBody,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    caller.require(namespace, P.NAMESPACE_ROLE_MAPPING_UPDATE)
    return await _set_role(state, caller, namespace, body.other_namespace, body.role, True)


@router.delete("/{namespace}/role")
async def delete_role(
    namespace: str,
    body: RoleDelete,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    caller.require(namespace, P.NAMESPACE_ROLE_MAPPING_DELETE)
    return await _set_role(state, caller, namespace, body.other_namespace, None, True)


@router.delete("/{namespace}/")
async def delete_namespace(
    namespace: str, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    caller.require(namespace, P.NAMESPACE_DELETE)
    await _live(state, namespace)
    build_ids = await builds.ids_in_namespace(state.pool, namespace)
    await emit(
        state,
        stream_of_namespace(namespace),
        NamespaceDeleted(namespace=namespace),
        actor=caller.actor,
    )
    await delete_builds_files(state, build_ids)
    return ack()
