"""Helpers shared by the speech providers (text-to-speech and speech-to-speech).

Only what several speech modules do the same way lives here: language-tag trimming,
picking a provider's own keys out of multi-provider ``voice_settings``, the pinned
voice of a config, and turning a binary audio answer into a :class:`ProviderOutput`.
Messages name the provider through the ``display`` name each module passes in.
"""

from __future__ import annotations

from typing import Any, Iterable

import requests

from schemas import AudioOutputFormat

from providers.core.contract import AnyConfig, AnyRequest, GeneratedMedia, ProviderContext, ProviderOutput
from providers.errors import GenerationFailedError, UnsupportedRequestError
from providers.core.http import request_id_from
from providers.media.formats import CONTENT_TYPES


def primary_language(code: str) -> str:
    """The ISO 639-1 part of a language tag: ``'en-US'`` / ``'en_us'`` -> ``'en'``."""
    return code.replace("_", "-").split("-")[0].lower()


def language_for(language_code: str | None) -> str | None:
    """:func:`primary_language` of ``language_code``, or None when there is none."""
    if not language_code:
        return None
    return primary_language(language_code)


def known_settings(settings: dict[str, Any] | None, keys: Iterable[str]) -> dict[str, Any]:
    """The entries of ``settings`` named in ``keys`` (in ``keys`` order), leaving out None values.

    A request's ``voice_settings`` may carry settings for several providers of a fallback
    chain; each provider takes only the keys it knows.
    """
    return {key: settings[key] for key in keys if settings and settings.get(key) is not None}


def voice_id(request: AnyRequest, config: AnyConfig) -> str | None:
    """The config's pinned voice (``provider_config['voice_id']``), else the request's.

    Pinning lets a fallback config never send another provider's voice id.
    """
    return config.provider_config.get("voice_id") or getattr(request, "voice_id", None)


def require_voice(display: str, request: AnyRequest, config: AnyConfig) -> str:
    """:func:`voice_id`, or ``UnsupportedRequestError`` saying that ``display`` needs a voice.

    Called from ``check_request`` (so a config without a voice is skipped before any
    HTTP) and again when the request is built.
    """
    voice = voice_id(request, config)
    if not voice:
        raise UnsupportedRequestError(f"{display} needs a voice: set request.voice_id or provider_config.voice_id")
    return str(voice)


def audio_output(
    ctx: ProviderContext,
    response: requests.Response,
    display: str,
    fmt: AudioOutputFormat,
    output_format: Any,
    voice: str,
    extra: dict[str, Any] | None = None,
) -> ProviderOutput:
    """The audio in a binary answer's body as a :class:`ProviderOutput`.

    An empty body, or a JSON one, is a ``GenerationFailedError`` naming ``display`` (the
    provider answered without audio). ``raw_response`` records ``output_format`` (the
    provider's own value for ``fmt``), the model, ``voice``, the returned content type
    and byte count, then ``extra``; None values are left out.
    """
    returned_type = (response.headers.get("content-type") or "").split(";")[0].strip()
    request_id = request_id_from(response)
    if not response.content or returned_type == "application/json":
        raise GenerationFailedError(
            f"{display} answered {response.status_code} without audio (content-type {returned_type or 'none'})",
            provider=ctx.provider.name,
            model=ctx.model,
            request_id=request_id,
        )
    raw = {
        "output_format": output_format,
        "model_id": ctx.model,
        "voice_id": voice,
        "content_type": returned_type or None,
        "bytes": len(response.content),
        **(extra or {}),
    }
    return ProviderOutput(
        media=[GeneratedMedia(data=response.content, content_type=CONTENT_TYPES[fmt.format])],
        raw_response={key: value for key, value in raw.items() if value is not None},
        request_id=request_id,
    )
