"""``/create/``: a new environment (or a new build of one) from an editor, an upload or a
lockfile, checked line by line before anything is submitted."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from services.ui.client import segment
from services.ui.deps import api_for, viewer_for
from services.ui.guided import (
    GuidedError,
    GuidedModel,
    field_errors,
    load_for_guided,
    spec_from_model,
    spec_to_yaml,
)
from services.ui.render import render
from services.ui.validate import check_lockfile, check_specification

router = APIRouter()

EXAMPLE = """name: my-environment
channels:
  - conda-forge
dependencies:
  - python >=3.11
  - numpy
"""


async def namespace_names(request: Request) -> list[str]:
    listing = await api_for(request).all_data("/api/v1/namespace/", sort_by="name")
    return [n["name"] for n in listing]


@router.get("/create/", response_class=HTMLResponse)
async def create_page(request: Request, namespace: str = "", environment: str = "") -> HTMLResponse:
    api = api_for(request)
    viewer, names = await asyncio.gather(viewer_for(request, api), namespace_names(request))
    text, editing = EXAMPLE, None
    if namespace and environment:
        env = await api.data(f"/api/v1/environment/{segment(namespace)}/{segment(environment)}/")
        editing = env
        if env.get("current_build_id"):
            build = await api.data(f"/api/v1/build/{env['current_build_id']}/")
            spec = (build.get("specification") or {}).get("spec")
            if spec and "lockfile" not in spec:
                # the description may have been edited since that build (no rebuild needed)
                text = spec_to_yaml({**spec, "description": env.get("description") or ""})
    choices = viewer.creatable_namespaces(names)
    selected = namespace or (choices[0] if choices else viewer.primary_namespace)
    return render(
        request,
        "create.html",
        viewer=viewer,
        namespaces=choices,
        selected=selected,
        text=text,
        editing=editing,
    )


class ValidateBody(BaseModel):
    text: str
    namespace: str = ""
    is_lockfile: bool = False
    environment_name: str = ""


@router.post("/create/validate")
async def validate(request: Request, body: ValidateBody) -> JSONResponse:
    """Check a specification as the API would; the namespace's settings add channel rules."""
    if body.is_lockfile:
        verdict = check_lockfile(body.text, body.environment_name)
        return JSONResponse(verdict.as_json())
    settings = None
    if body.namespace:
        settings = await api_for(request).data_or_none(
            f"/api/v1/setting/{segment(body.namespace)}/"
        )
    return JSONResponse(check_specification(body.text, settings).as_json())


class GuidedBody(BaseModel):
    text: str


@router.post("/create/guided")
async def to_guided(body: GuidedBody) -> JSONResponse:
    """The guided editor's model of a YAML text, or why the form cannot show it."""
    try:
        model = load_for_guided(body.text)
    except GuidedError as exc:
        return JSONResponse({"ok": False, "message": str(exc)})
    return JSONResponse({"ok": True, "model": model.model_dump(mode="json")})


@router.post("/create/yaml")
async def to_yaml(model: GuidedModel) -> JSONResponse:
    """The YAML the guided editor's fields describe, and the fields that are wrong."""
    text = spec_to_yaml(spec_from_model(model))
    return JSONResponse({"text": text, "errors": field_errors(model)})
