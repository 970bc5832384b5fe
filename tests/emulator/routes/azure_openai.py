"""Emulates Azure OpenAI (images on deployments, Sora 2 on the v1 API) under /azure-openai.

The prefix plays the resource endpoint (``https://{resource}.openai.azure.com``).
Route names:

- ``azure-openai.images_generations`` POST /openai/deployments/{deployment}/images/generations?api-version=...
- ``azure-openai.images_edits``       POST /openai/deployments/{deployment}/images/edits?api-version=...
- ``azure-openai.videos_create``      POST /openai/v1/videos (multipart only)
- ``azure-openai.videos_retrieve``    GET  /openai/v1/videos/{id}
- ``azure-openai.videos_content``     GET  /openai/v1/videos/{id}/content
- ``azure-openai.videos_remix``       POST /openai/v1/videos/{id}/remix (JSON ``{"prompt"}``)

The video routes also answer without ``/v1`` (``/openai/videos...?api-version=...``): that
is what ``openai.AzureOpenAI(azure_endpoint=..., api_version=...)`` sends (its base URL is
``{endpoint}/openai`` and ``/videos`` is not a deployments endpoint); there the
``api-version`` query is required like on the deployment routes.

Auth: the ``api-key`` header everywhere (what ``AzureOpenAI`` sends); on the ``/openai/v1``
routes also ``Authorization: Bearer <key>``, which is what ``openai.OpenAI(base_url=
"{endpoint}/openai/v1/", api_key=key)`` sends (the form Microsoft Learn shows for the v1
API). Azure's 401 body otherwise. Deployment routes need
an ``api-version`` query: missing -> 404 ``Resource not found`` (Azure's answer for a
route it cannot resolve), malformed -> 400 ``API version not supported``. The
deployment name picks the image family (``dall-e-3...`` -> DALL-E 3, else GPT-image)
unless the body names a model. The v1 routes take no api-version (``preview`` is
tolerated). A ``moderation`` fault answers Azure's content filter: 400
``content_filter`` with ``innererror.code = ResponsibleAIPolicyViolation``.
Request validation and job behaviour are OpenAI's (see ``routes/openai.py``).
"""

from __future__ import annotations

import re

from tests.emulator import EmuRequest, EmuResponse, Fault, ProviderEmulator
from tests.emulator.routes.openai import ImageRoutes, VideoRoutes

P = "azure-openai"
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_V1_VERSIONS = ("", "preview", "latest", "v1")


def azure_error(status: int, code: str, message: str) -> EmuResponse:
    return EmuResponse.error(status, {"error": {"code": code, "message": message}})


def content_filter(fault: Fault, family: str) -> EmuResponse:
    """Azure's prompt filter refusal (the same shape for every model family)."""
    message = fault.message or (
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
        "Please modify your prompt and retry."
    )
    body = {
        "error": {
            "message": message,
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    "hate": {"filtered": False, "severity": "safe"},
                    "self_harm": {"filtered": False, "severity": "safe"},
                    "sexual": {"filtered": False, "severity": "safe"},
                    "violence": {"filtered": True, "severity": "medium"},
                },
            },
        }
    }
    return EmuResponse.error(400, body)


def register(emu: ProviderEmulator) -> None:
    def authorize(req: EmuRequest) -> EmuResponse | None:
        if emu.key_matches(req, "api-key", emu.key_for(P)):
            return None
        on_v1 = req.path.startswith("/openai/v1/")
        if on_v1 and emu.key_matches(req, "Authorization", f"Bearer {emu.key_for(P)}"):
            return None
        return azure_error(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
            "for an active subscription and use a correct regional API endpoint for your resource.",
        )

    @emu.route("GET", P, r"/openai/v1/models", name="azure-openai.key_check")
    def key_check(req: EmuRequest) -> EmuResponse:
        """The key check of providers.check (lists the resource's models, generates nothing)."""
        if (denied := authorize(req)) is not None:
            return denied
        return EmuResponse.json_({"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": "system"} for m in ("gpt-image-1", "sora-2")]})

    def deployment_route(handler_name: str):  # type: ignore[no-untyped-def]
        def handle(req: EmuRequest) -> EmuResponse:
            if (denied := authorize(req)) is not None:
                return denied
            version = req.query.get("api-version")
            if not version:
                return azure_error(404, "404", "Resource not found")
            if not _API_VERSION.match(version):
                return azure_error(400, "BadRequest", "API version not supported")
            deployment = req.params["deployment"] or ""
            body_model = (req.json or {}).get("model") if isinstance(req.json, dict) else req.form.get("model")
            model = "dall-e-3" if deployment.startswith("dall-e-3") else str(body_model or deployment or "gpt-image-1")
            return getattr(images, handler_name)(req, model_override=model)

        return handle

    def v1_route(handler):  # type: ignore[no-untyped-def]
        def handle(req: EmuRequest) -> EmuResponse:
            version = req.query.get("api-version", "")
            if req.path.startswith("/openai/v1/"):
                if version not in _V1_VERSIONS:
                    return azure_error(400, "BadRequest", "API version not supported")
            elif not version:
                if (denied := authorize(req)) is not None:
                    return denied
                return azure_error(404, "404", "Resource not found")
            elif version not in _V1_VERSIONS and not _API_VERSION.match(version):
                return azure_error(400, "BadRequest", "API version not supported")
            return handler(req)

        return handle

    videos = VideoRoutes(emu, P, authorize, content_filter, strict_models=False)
    images = ImageRoutes(emu, P, authorize, content_filter, strict_models=False)
    deployment = r"/openai/deployments/(?P<deployment>[^/]+)"
    emu.add_route("POST", P, deployment + r"/images/generations", deployment_route("generations"),
                  name="azure-openai.images_generations")
    emu.add_route("POST", P, deployment + r"/images/edits", deployment_route("edits"), name="azure-openai.images_edits")
    videos_path = r"/openai(?:/v1)?/videos"
    emu.add_route("POST", P, videos_path, v1_route(videos.create), name="azure-openai.videos_create")
    emu.add_route("GET", P, videos_path + r"/(?P<id>[^/]+)", v1_route(videos.retrieve),
                  name="azure-openai.videos_retrieve")
    emu.add_route("GET", P, videos_path + r"/(?P<id>[^/]+)/content", v1_route(videos.content),
                  name="azure-openai.videos_content")
    emu.add_route("POST", P, videos_path + r"/(?P<id>[^/]+)/remix", v1_route(videos.remix),
                  name="azure-openai.videos_remix")
