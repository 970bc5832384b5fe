"""Azure OpenAI: the OpenAI provider on an Azure resource. Only what differs lives here.

Request mapping, response parsing, video polling and OpenAI's own error codes come
from :class:`providers.builtin.openai.OpenAIProvider`; this subclass changes the routes, the
auth header, the api-version and Azure's content-filter errors.

Configuration:
- endpoint (required): ``config.base_url``, else ``provider_config["endpoint"]``, else
  the ``AZURE_OPENAI_ENDPOINT`` environment variable, e.g.
  ``https://my-resource.openai.azure.com`` (a trailing ``/openai`` or ``/openai/v1`` is
  dropped);
- ``config.api_version`` (required for images, e.g. ``2025-04-01-preview``);
- ``provider_config["deployment"]``: the deployment name, default ``config.model``.
  Keep ``config.model`` the base model name (``gpt-image-1``, ``sora-2``) so its
  capabilities apply, and name the deployment here when it differs;
- ``provider_config["video_api_version"]``: optional ``api-version`` query for the v1
  video routes (``preview`` on resources that still ask for it).
A missing endpoint or api-version raises :class:`ProviderConfigError` before any HTTP;
it fails this config and the fallback chain goes on.

Facts this module relies on ([C] confirmed, [I] inferred, unverified):
- Auth: images (deployment routes) send ``api-key: <key>``, as ``openai.AzureOpenAI``
  does [C SDK lib/azure.py]. Videos (v1 routes) send ``Authorization: Bearer <key>``, as
  ``openai.OpenAI(base_url="{endpoint}/openai/v1/", api_key=key)`` does, the client form
  Microsoft Learn shows for the v1 API and Sora 2 [C SDK; doc page]. We use that form, not
  ``AzureOpenAI(api_version=...)`` (which would call ``{endpoint}/openai/videos?api-version=``
  with ``api-key``), because Sora 2 is documented only on the v1 API, which needs no dated
  api-version. Entra tokens (also ``Authorization: Bearer``) are not supported here.
- Images: ``POST {endpoint}/openai/deployments/{deployment}/images/generations
  ?api-version=...`` (and ``/images/edits``) with OpenAI's body, OpenAI-shaped answer
  [C SDK routing + Microsoft Learn]; ``2025-04-01-preview`` is a working api-version for
  gpt-image models [I public client code].
- Sora 2 uses the Azure OpenAI v1 API with OpenAI's schema [C Microsoft Learn]:
  ``{endpoint}/openai/v1/videos``, ``/openai/v1/videos/{id}``,
  ``/openai/v1/videos/{id}/content``, ``/openai/v1/videos/{id}/remix`` (remix: see
  :mod:`providers.builtin.openai`); the v1 API needs no dated api-version [C Microsoft
  Learn], some public clients still send ``api-version=preview`` [C public code]. The
  request's ``model`` is the deployment name [I]. Sora 2 Pro is announced as "coming
  later" on Azure [C Microsoft Learn]; dall-e-2 is not offered on Azure [I].
- Content filter: 400 ``error.code: "content_filter"`` with ``innererror.code:
  "ResponsibleAIPolicyViolation"`` [C issue logs]; DALL-E deployments answer
  ``content_policy_violation`` with ``inner_error`` [C issue logs]; image models may
  also answer ``moderation_blocked`` [I]. All are moderation.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote, urlencode

import requests

from providers.core.contract import ProviderContext
from schemas import ImageGenerationConfig, ImageGenerationRequest
from providers.core.capabilities import Lifecycle
from providers.check import KeyCheck
from providers.errors import ContentModerationError, MediagenError, ProviderConfigError, UnsupportedRequestError
from providers.core.http import error_text
from providers.builtin.openai import MODERATION_CODES, OpenAIProvider, image_family, openai_error, video_path
from providers.core.pricing import price_sheet

ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
RAI_INNER_CODE = "ResponsibleAIPolicyViolation"


AZURE_PRICES = {
    "*": (price_sheet("https://azure.microsoft.com/pricing/details/cognitive-services/openai-service/", "2026-11-30")(
        "request", None, note="depends on the deployment type and region; give your rate under prices:"),),
}


class AzureOpenAIProvider(OpenAIProvider):
    """Sora 2 videos and GPT-image / DALL-E 3 images on an Azure OpenAI resource."""

    name = "azure-openai"
    key_check = KeyCheck(  # configs name deployments, which this list does not show: no model judgement
        path="/openai/v1/models", root="endpoint", headers="auth_headers",
        source="https://learn.microsoft.com/en-us/rest/api/microsoft-foundry/azureopenai/models",
    )
    default_base_url = ""
    api_key_env = "AZURE_OPENAI_API_KEY"
    moderation_codes = MODERATION_CODES | {"content_filter"}
    # OpenAI's shutdown dates (from its SDK) are about api.openai.com; Azure retires
    # deployments on its own schedule, for which we hold no source yet: entries stay active.
    prices = AZURE_PRICES
    reported_cost = None  # Azure bills tokens at its own, regional rates
    models = {
        name: caps.model_copy(update={"lifecycle": Lifecycle()})
        for name, caps in OpenAIProvider.models.items()
        if not name.startswith("dall-e-2")
    }

    def check_image(self, config: ImageGenerationConfig, request: ImageGenerationRequest) -> None:
        if image_family(config.model) == "dall-e-2":
            raise UnsupportedRequestError("dall-e-2 is not offered on Azure OpenAI (use dall-e-3 or a gpt-image model)")
        super().check_image(config, request)

    def auth_headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"api-key": ctx.require_api_key()}

    def video_headers(self, ctx: ProviderContext) -> dict[str, str]:
        # The v1 routes are called the way openai.OpenAI(base_url=".../openai/v1/") calls them.
        return {"Authorization": f"Bearer {ctx.require_api_key()}"}

    def endpoint(self, ctx: ProviderContext) -> str:
        """The resource endpoint, without a trailing slash or ``/openai[/v1]``."""
        endpoint = (
            ctx.config.base_url
            or str(ctx.config.provider_config.get("endpoint") or "")
            or os.environ.get(ENDPOINT_ENV, "")
        ).strip().rstrip("/")
        if not endpoint:
            raise self._config_error(
                ctx,
                f"no Azure OpenAI endpoint: set config.base_url, provider_config['endpoint'] or {ENDPOINT_ENV} "
                "(e.g. https://my-resource.openai.azure.com)",
            )
        for suffix in ("/openai/v1", "/openai"):
            if endpoint.endswith(suffix):
                endpoint = endpoint[: -len(suffix)]
        return endpoint

    def credential_origins(self, ctx: ProviderContext) -> list[str]:
        """The key goes to the resource endpoint (see providers.core.http.may_carry_credentials)."""
        return [self.endpoint(ctx)]

    def deployment(self, ctx: ProviderContext) -> str:
        return str(ctx.config.provider_config.get("deployment") or ctx.model)

    def wire_model(self, ctx: ProviderContext) -> str:
        return self.deployment(ctx)

    def video_url(self, ctx: ProviderContext, video_id: str | None = None, suffix: str = "") -> str:
        url = f"{self.endpoint(ctx)}/openai/v1/{video_path('videos', video_id, suffix)}"
        version = ctx.config.provider_config.get("video_api_version")
        return f"{url}?{urlencode({'api-version': version})}" if version else url

    def image_url(self, ctx: ProviderContext, action: str) -> str:
        version = getattr(ctx.config, "api_version", None)
        if not version:
            raise self._config_error(
                ctx, "config.api_version is required for Azure OpenAI image deployments (e.g. '2025-04-01-preview')"
            )
        deployment = quote(self.deployment(ctx), safe="")
        return (
            f"{self.endpoint(ctx)}/openai/deployments/{deployment}/images/{action}"
            f"?{urlencode({'api-version': version})}"
        )

    def translate_error(self, ctx: ProviderContext, response: requests.Response, body: Any) -> MediagenError | None:
        error = openai_error(body)
        inner = error.get("innererror") or error.get("inner_error") or {}
        inner_code = str(inner.get("code") or "") if isinstance(inner, dict) else ""
        if str(error.get("code") or "") == "content_filter" or inner_code == RAI_INNER_CODE:
            message = str(error.get("message") or error_text(body))
            return ContentModerationError(
                f"{self.name} content filter refused the request ({inner_code or 'content_filter'}): {message}",
                provider=self.name,
                model=ctx.model,
            )
        return super().translate_error(ctx, response, body)

    def _config_error(self, ctx: ProviderContext, message: str) -> ProviderConfigError:
        return ProviderConfigError(message, provider=self.name, model=ctx.model)
