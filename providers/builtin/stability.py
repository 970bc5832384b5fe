"""Stability AI: Stable Image Ultra / Core and SD 3.5 text-to-image and image-to-image.

Synchronous: one ``POST /v2beta/stable-image/generate/{ultra|core|sd3}`` returns the
image, so ``submit`` returns the output straight away (no polling, no progress updates
besides the final one).

Model ids (``config.model``) -> endpoint:

==========================================================  ===========================================
``stable-image-ultra`` (alias ``ultra``)                    ``/generate/ultra``
``stable-image-core`` (alias ``core``)                      ``/generate/core``
``sd3.5-large``, ``sd3.5-large-turbo``, ``sd3.5-medium``,   ``/generate/sd3`` with ``model=<id>``
``sd3.5-flash``
(any other ``sd3*`` id is sent to ``/sd3`` the same way)
==========================================================  ===========================================

Request mapping: ``prompt``, ``negative_prompt``, ``aspect_ratio``, ``seed`` (0 = random),
``style`` -> ``style_preset`` (all three endpoints), ``output_format`` from ``extra_params`` or
``provider_config`` (default ``png``). A ``reference`` image makes it image-to-image:
the file goes in the ``image`` part with ``strength`` (``extra_params``, else
``provider_config``, else 0.5 - the API requires one) and, on sd3, ``mode=image-to-image``;
``aspect_ratio`` is then not sent (the input image decides). ``extra_params`` are added
as form fields last (e.g. ``cfg_scale`` on sd3, or ratios outside the SDK's set such as
``aspect_ratio="3:2"``).

The body is multipart/form-data even without a file - the API rejects JSON and
urlencoded bodies - using an empty ``none`` file part when there is no image.

``provider_config``: ``accept`` - ``"image/*"`` (default: raw bytes, ``finish-reason`` and
``seed`` headers) or ``"application/json"`` (base64 ``image``, ``finish_reason``, ``seed``);
``output_format``; ``strength``; ``client_id`` / ``client_user_id`` / ``client_version``
(sent as ``stability-client-*`` headers).

Legacy image-to-video (``/v2beta/image-to-video``) is not implemented: its availability
is unverified.

Facts this module relies on ([C] confirmed from Stability's API reference or its
official samples, [I] inferred, not verified against the live API):

- [C] base ``https://api.stability.ai``; ``Authorization: Bearer <key>``; ``Accept: image/*``
  (bytes) or ``application/json`` (base64); optional ``stability-client-id``,
  ``stability-client-user-id``, ``stability-client-version`` headers.
- [C] the three endpoints; multipart required; ``files={"none": ""}`` works without a file.
- [C] fields ``prompt`` (1-10000 chars), ``negative_prompt``, ``aspect_ratio`` (16:9 1:1 21:9
  2:3 3:2 4:5 5:4 9:16 9:21), ``seed`` 0..4294967294, ``output_format`` png|jpeg|webp,
  ``style_preset`` (core, ultra), ``image`` + ``strength`` (ultra); sd3 ``model`` and ``mode``.
- [C] 200 headers ``finish-reason`` SUCCESS | CONTENT_FILTERED, ``seed``, ``x-request-id``.
- [C] error body ``{id, name, errors[]}``; 400 invalid parameters, 403 ``content_moderation``,
  413 too large, 422 rejected, 429 rate limit, 500; 150 requests / 10 s, after a 429 the
  key is timed out for 60 s (used as retry_after when no Retry-After header comes).
- [C ComfyUI ``comfy_api_nodes/apis/stability_api.py``, the request models of Comfy's
  Stability API nodes] sd3 takes ``style_preset`` and ``cfg_scale`` too (ultra/sd3
  ``image`` + ``strength``); JSON answers are ``{image, finish_reason, seed}``;
  ``sd3.5-flash`` is an sd3 model id.
- [I] sd3 ``output_format`` limited to png|jpeg; the exact 400 message for a
  non-multipart body.

Ground truth: Stability has no official REST SDK (its ``stability-sdk`` is the retired
gRPC client), so tests/conformance/test_stability.py holds the request and answer shapes
copied from the API reference (https://platform.stability.ai/docs/api-reference, the
``/v2beta/stable-image/generate/{ultra,core,sd3}`` operations) and checks our multipart
bodies and the emulator's answers against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from schemas import ImageGenerationConfig, ImageGenerationRequest

from providers.core.contract import AnyConfig, AnyRequest, GeneratedMedia, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.core.capabilities import ModelCapabilities
from providers.check import KeyCheck
from providers.errors import (
    ContentModerationError,
    GenerationFailedError,
    InvalidRequestError,
    MediagenError,
    ProviderHTTPError,
    UnsupportedRequestError,
)
from providers.core.http import decode_output_base64, error_text, form_value, media_bytes, parse_retry_after, request_id_from, send
from providers.core.pricing import price_sheet

GENERATE_PATH = "/v2beta/stable-image/generate/{endpoint}"
ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
SDK_ASPECT_RATIOS = ("16:9", "1:1", "21:9", "9:16")
"""The ratios of the SDK's AspectRatio type the API accepts (it has no 4:3)."""
STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance", "fantasy-art",
    "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk", "origami", "photographic",
    "pixel-art", "tile-texture",
)  # fmt: skip
MAX_SEED = 4294967294
DEFAULT_STRENGTH = 0.5
RATE_LIMIT_TIMEOUT_SECONDS = 60.0
ACCEPT_VALUES = ("image/*", "application/json")
CLIENT_HEADERS = {
    "client_id": "stability-client-id",
    "client_user_id": "stability-client-user-id",
    "client_version": "stability-client-version",
}


@dataclass(frozen=True)
class Endpoint:
    """Where a model is served and what it accepts."""

    name: str
    """``ultra``, ``core`` or ``sd3``."""
    model_field: str | None = None
    """The ``model`` form field (sd3 only)."""

    @property
    def output_formats(self) -> tuple[str, ...]:
        return ("png", "jpeg") if self.name == "sd3" else ("png", "jpeg", "webp")

    @property
    def takes_image(self) -> bool:
        return self.name != "core"


ALIASES = {"stable-image-ultra": "ultra", "ultra": "ultra", "stable-image-core": "core", "core": "core"}


def endpoint_for(model: str) -> Endpoint | None:
    """The endpoint serving ``model``, or None for an id this provider does not know."""
    if model in ALIASES:
        return Endpoint(ALIASES[model])
    if model.startswith("sd3"):
        return Endpoint("sd3", model)
    return None


def _caps(image_roles: tuple[str, ...], notes: str) -> ModelCapabilities:
    return ModelCapabilities(
        modalities=frozenset({"image"}),
        aspect_ratios=SDK_ASPECT_RATIOS,
        sizes=(),
        image_roles=image_roles,
        max_input_images=1 if image_roles else None,
        max_outputs=1,
        notes=notes,
    )


_MORE_RATIOS = "other ratios (2:3, 3:2, 4:5, 5:4, 9:21) via extra_params aspect_ratio"
MODELS: dict[str, ModelCapabilities] = {
    "stable-image-ultra": _caps(("reference",), f"reference image = image-to-image with strength; {_MORE_RATIOS}"),
    "stable-image-core": _caps((), f"style -> style_preset; {_MORE_RATIOS}"),
    "sd3.5-large": _caps(("reference",), f"png or jpeg; reference image = image-to-image; {_MORE_RATIOS}"),
    "sd3.5-large-turbo": _caps(("reference",), f"png or jpeg; reference image = image-to-image; {_MORE_RATIOS}"),
    "sd3.5-medium": _caps(("reference",), f"png or jpeg; reference image = image-to-image; {_MORE_RATIOS}"),
    "sd3.5-flash": _caps(("reference",), f"png or jpeg; reference image = image-to-image; {_MORE_RATIOS}"),
}


ENDPOINT_CAPABILITIES = {"ultra": "stable-image-ultra", "core": "stable-image-core", "sd3": "sd3.5-large"}
"""Which ``MODELS`` entry describes an alias or another sd3 id."""


_stability_price = price_sheet("https://platform.stability.ai/pricing", "2026-11-30",
                               note="credits per image at $0.01 a credit")
STABILITY_PRICES = {
    "stable-image-ultra": (_stability_price("image", 0.08),),
    "stable-image-core": (_stability_price("image", 0.03),),
    "sd3.5-large": (_stability_price("image", 0.065),),
    "sd3.5-large-turbo": (_stability_price("image", 0.04),),
    "sd3.5-medium": (_stability_price("image", 0.035),),
}


class StabilityProvider(JobProvider):
    """Stability AI's Stable Image API (synchronous image generation).

    See the module docstring for the model -> endpoint mapping, field mapping and
    ``provider_config`` keys (``accept``, ``output_format``, ``strength``, ``client_*``).
    """

    name = "stability"
    key_check = KeyCheck(
        path="/v1/user/account", headers="_headers",
        source="https://platform.stability.ai/docs/api-reference#tag/User/paths/~1v1~1user~1account/get",
    )
    default_base_url = "https://api.stability.ai"
    api_key_env = "STABILITY_API_KEY"
    modalities = frozenset({"image"})
    prices = STABILITY_PRICES
    models = MODELS

    def capabilities(self, model: str) -> ModelCapabilities:
        if model in self.models:
            return self.models[model]
        endpoint = endpoint_for(model)
        if endpoint is None:
            return ModelCapabilities(modalities=frozenset({"image"}), notes="unknown Stability model")
        return MODELS[ENDPOINT_CAPABILITIES[endpoint.name]]

    def check_request(self, modality: Any, request: AnyRequest, config: AnyConfig) -> None:
        # The model id is judged first: an unknown one gets the list of Stability's models.
        if endpoint_for(config.model) is None:
            raise UnsupportedRequestError(
                f"model={config.model!r} is not a Stability image model "
                f"(use one of {', '.join(MODELS)})"
            )
        super().check_request(modality, request, config)

    def check_image(self, config: ImageGenerationConfig, request: ImageGenerationRequest) -> None:
        endpoint = endpoint_for(config.model)
        if endpoint is not None:
            _check_image_request(endpoint, request, config)

    def submit_image(self, ctx: ProviderContext, request: ImageGenerationRequest) -> ProviderOutput:
        endpoint = endpoint_for(ctx.model)
        if endpoint is None:
            raise UnsupportedRequestError(f"stability cannot serve model {ctx.model!r}")
        fields, files = form_parts(ctx, endpoint, request)
        response = send(
            ctx,
            "POST",
            GENERATE_PATH.format(endpoint=endpoint.name),
            headers=self._headers(ctx),
            data=fields,
            files=files,
        )
        return image_output(ctx, response, output_format(request, ctx.config))

    def translate_error(self, ctx: ProviderContext, response: requests.Response, body: Any) -> MediagenError | None:
        status = response.status_code
        name = body.get("name") if isinstance(body, dict) else None
        request_id = body.get("id") if isinstance(body, dict) else None
        detail = error_text(body.get("errors") if isinstance(body, dict) and body.get("errors") else body)
        label = f"HTTP {status}" + (f" {name}" if name else "")
        common: dict[str, Any] = {"request_id": request_id}
        if status == 403 and name == "content_moderation":
            return ContentModerationError(f"stability refused the content ({label}): {detail}", **common)
        if status in (400, 413, 422):
            return InvalidRequestError(f"stability rejected the request ({label}): {detail}", **common)
        if status == 429:
            retry_after = parse_retry_after(response.headers)
            return ProviderHTTPError(
                f"stability rate limit ({label}): {detail}",
                status_code=429,
                retry_after=RATE_LIMIT_TIMEOUT_SECONDS if retry_after is None else retry_after,
                **common,
            )
        return None

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        settings = ctx.config.provider_config
        headers = {"Authorization": f"Bearer {ctx.require_api_key()}", "Accept": accept_value(settings)}
        for key, header in CLIENT_HEADERS.items():
            if settings.get(key):
                headers[header] = str(settings[key])
        return headers


# -- request -------------------------------------------------------------------------------


def accept_value(settings: dict[str, Any]) -> str:
    value = str(settings.get("accept", "image/*"))
    if value not in ACCEPT_VALUES:
        raise InvalidRequestError(f"provider_config.accept={value!r} must be one of {', '.join(ACCEPT_VALUES)}")
    return value


def output_format(request: ImageGenerationRequest, config: AnyConfig) -> str:
    value = request.extra_params.get("output_format", config.provider_config.get("output_format", "png"))
    return "jpeg" if str(value).lower() == "jpg" else str(value).lower()


def _check_image_request(endpoint: Endpoint, request: ImageGenerationRequest, config: AnyConfig) -> None:
    """What ModelCapabilities cannot say: seed range, formats, style presets, masks."""
    if request.mask_image is not None:
        raise UnsupportedRequestError("mask_image: inpainting is a separate Stability endpoint, not supported here")
    if request.seed is not None and not 0 <= request.seed <= MAX_SEED:
        raise UnsupportedRequestError(f"seed={request.seed} outside 0..{MAX_SEED}")
    fmt = output_format(request, config)
    if fmt not in endpoint.output_formats:
        raise UnsupportedRequestError(
            f"output_format={fmt!r} not supported by {config.model} (allowed: {', '.join(endpoint.output_formats)})"
        )
    if request.style is not None and request.style not in STYLE_PRESETS:
        raise UnsupportedRequestError(f"style={request.style!r} is not a Stability style_preset ({', '.join(STYLE_PRESETS)})")
    if request.image_list and not endpoint.takes_image:
        raise UnsupportedRequestError(f"{config.model} takes no input image")


def form_parts(
    ctx: ProviderContext, endpoint: Endpoint, request: ImageGenerationRequest
) -> tuple[dict[str, str], dict[str, Any]]:
    """The multipart text fields and file parts for one generation."""
    settings = ctx.config.provider_config
    fields: dict[str, Any] = {"prompt": request.prompt, "output_format": output_format(request, ctx.config)}
    if endpoint.model_field:
        fields["model"] = endpoint.model_field
    if request.negative_prompt:
        fields["negative_prompt"] = request.negative_prompt
    if request.seed is not None:
        fields["seed"] = request.seed
    if request.style is not None:
        fields["style_preset"] = request.style
    references = [img["image"] for img in request.image_list if img["type"] == "reference"]
    files: dict[str, Any]
    if references:
        data, content_type = media_bytes(ctx, references[0], default_type="image/png")
        files = {"image": (f"image.{content_type.rsplit('/', 1)[-1]}", data, content_type)}
        fields["strength"] = request.extra_params.get("strength", settings.get("strength", DEFAULT_STRENGTH))
        if endpoint.name == "sd3":
            fields["mode"] = "image-to-image"
    else:
        # The API only accepts multipart; an empty part named "none" makes requests send one.
        files = {"none": ""}
        if request.aspect_ratio is not None:
            fields["aspect_ratio"] = request.aspect_ratio
    fields.update(request.extra_params)
    return {key: form_value(value) for key, value in fields.items() if value is not None}, files


# -- response ------------------------------------------------------------------------------


def image_output(ctx: ProviderContext, response: requests.Response, requested_format: str) -> ProviderOutput:
    """The image in a 200 answer (bytes or base64 JSON); CONTENT_FILTERED is moderation."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    request_id = request_id_from(response)
    if content_type == "application/json":
        body = response.json()
        finish_reason = body.get("finish_reason")
        seed = body.get("seed")
        data = _decode_image(body.get("image"), ctx)
        image_type = _json_image_type(response.headers.get("content-type", ""), requested_format)
        raw = {key: value for key, value in body.items() if key != "image"}
    else:
        finish_reason = response.headers.get("finish-reason")
        seed = response.headers.get("seed")
        data = response.content
        image_type = content_type or "image/png"
        raw = {"finish_reason": finish_reason, "seed": seed}
    raw.update({"content_type": image_type, "bytes": len(data)})
    common: dict[str, Any] = {"provider": ctx.provider.name, "model": ctx.model, "request_id": request_id, "raw_response": raw}
    if finish_reason == "CONTENT_FILTERED":
        raise ContentModerationError("stability filtered the output (finish-reason CONTENT_FILTERED)", **common)
    if finish_reason not in (None, "SUCCESS"):
        raise GenerationFailedError(f"stability finished with {finish_reason!r}", **common)
    if not data:
        raise GenerationFailedError("stability returned no image", **common)
    return ProviderOutput(media=[GeneratedMedia(data=data, content_type=image_type)], raw_response=raw, request_id=request_id)


def _decode_image(payload: Any, ctx: ProviderContext) -> bytes:
    if not isinstance(payload, str):
        return b""
    return decode_output_base64(payload, provider="stability", model=ctx.model, what="an image")


def _json_image_type(header: str, requested_format: str) -> str:
    """``application/json; type=image/png`` -> ``image/png`` (else from the requested format)."""
    for parameter in header.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "type" and value.startswith("image/"):
            return value
    return f"image/{requested_format}"
