"""What a model accepts, and the check that turns a mismatch into a ``skipped`` attempt."""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any, Callable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

from schemas import ImageGenerationRequest, Modality, STSRequest, TTSRequest, VideoGenerationRequest
from schemas.modalities import modality_spec

from providers.errors import UnsupportedRequestError

log = logging.getLogger(__name__)


class Lifecycle(BaseModel):
    """Where a model stands in its provider's lifecycle, and who said so.

    ``retired`` models are refused before any call (a ``skipped`` attempt, so the chain
    falls through); ``deprecated`` ones still run but warn once per process.
    ``date`` is the retirement date (past) or the announced shutdown date (future).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["active", "deprecated", "retired"] = "active"
    date: datetime.date | None = None
    replacement: str | None = None
    source: str = Field(default="", description="Where the status comes from (SDK docstring, deprecation page URL...)")

    def describe(self) -> str:
        """The README table cell: ``active``, ``deprecated, shuts down 2027-01-15 → x``, ``retired 2026-09-24``."""
        if self.status == "active":
            return "active"
        when = "" if self.date is None else (
            f", shuts down {self.date}" if self.status == "deprecated" else f" {self.date}"
        )
        arrow = f" → {self.replacement}" if self.replacement else ""
        return f"{self.status}{when}{arrow}"


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def _check_lifecycle(lifecycle: Lifecycle, provider: str, model: str) -> None:
    name = model or "model"
    use = f"; use {lifecycle.replacement}" if lifecycle.replacement else ""
    if lifecycle.status == "retired":
        when = f" on {lifecycle.date}" if lifecycle.date else ""
        per = f" per {lifecycle.source}" if lifecycle.source else ""
        raise UnsupportedRequestError(f"{name} was retired{when}{per}{use}")
    if lifecycle.status == "deprecated":
        with _warned_lock:
            if (provider, model) in _warned:
                return
            _warned.add((provider, model))
        when = f" and shuts down on {lifecycle.date}" if lifecycle.date else ""
        log.warning("%s model %s is deprecated%s%s (%s)", provider or "provider", name, when, use,
                    lifecycle.source or "no source")


class ModelCapabilities(BaseModel):
    """What one model (or model family) accepts. ``None`` means "not restricted"."""

    model_config = ConfigDict(frozen=True)

    modalities: frozenset[Modality]
    durations: tuple[int, ...] | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    resolutions: tuple[str, ...] | None = None
    aspect_ratios: tuple[str, ...] | None = None
    image_roles: tuple[str, ...] | None = Field(default=None, description="Accepted image_list roles; () = no input images")
    max_input_images: int | None = None
    accepts_video_input: bool = False
    generates_audio: bool | None = Field(default=None, description="True: can add audio; False: cannot")
    max_outputs: int | None = Field(default=None, description="Upper bound for number_of_videos / n")
    sizes: tuple[str, ...] | None = None
    audio_formats: tuple[str, ...] | None = None
    requires_language_code: bool = False
    lifecycle: Lifecycle = Lifecycle()
    notes: str = ""

    def describe(self) -> dict[str, str]:
        """Human-readable cells for the README's capability table."""
        def fmt(values: Any, unit: str = "") -> str:
            return "any" if values is None else ", ".join(f"{v}{unit}" for v in values) or "none"

        if self.durations is not None:
            durations = fmt(self.durations, "s")
        elif self.min_duration is not None or self.max_duration is not None:
            durations = f"{self.min_duration or 1}-{self.max_duration or '?'}s"
        else:
            durations = "any" if "video" in self.modalities else "-"
        visual = bool(self.modalities & {"video", "image"})
        return {
            "modalities": ", ".join(sorted(self.modalities)),
            "durations": durations,
            "resolutions": fmt(self.resolutions) if "video" in self.modalities else "-",
            "aspect_ratios": fmt(self.aspect_ratios) if visual else "-",
            "input_images": fmt(self.image_roles) if visual else "-",
            "audio": {True: "yes", False: "no", None: "-"}[self.generates_audio],
            "audio_formats": fmt(self.audio_formats) if self.audio_formats is not None else "-",
            "lifecycle": self.lifecycle.describe(),
        }


def check_request(
    caps: ModelCapabilities, modality: Modality, request: Any, *, provider: str = "", model: str = ""
) -> None:
    """Raise :class:`UnsupportedRequestError` when ``caps`` rule the request out.

    A retired model is refused whatever the request; a deprecated one logs a WARNING
    once per process per ``(provider, model)``.
    """
    _check_lifecycle(caps.lifecycle, provider, model)
    if modality not in caps.modalities:
        raise UnsupportedRequestError(f"model does not do {modality} (it does {', '.join(sorted(caps.modalities))})")
    problems = [p for p in _PROBLEMS[modality_spec(modality).media_kind](caps, request) if p]
    if problems:
        raise UnsupportedRequestError("; ".join(problems))


def _video_problems(caps: ModelCapabilities, request: VideoGenerationRequest) -> list[str | None]:
    return [
        _check_duration(caps, request.duration_seconds),
        _check_choice("resolution", request.resolution, caps.resolutions),
        _check_choice("aspect_ratio", request.aspect_ratio, caps.aspect_ratios),
        _check_images(caps, request.image_list),
        None if request.video is None or caps.accepts_video_input else "model takes no input video",
        None if not request.generate_audio or caps.generates_audio is not False else "model cannot generate audio",
        _check_max("number_of_videos", request.number_of_videos, caps.max_outputs),
    ]


def _image_problems(caps: ModelCapabilities, request: ImageGenerationRequest) -> list[str | None]:
    return [
        _check_choice("aspect_ratio", request.aspect_ratio, caps.aspect_ratios),
        _check_choice("size", request.size, caps.sizes),
        _check_images(caps, request.image_list),
        _check_max("n", request.n, caps.max_outputs),
    ]


def _audio_problems(caps: ModelCapabilities, request: TTSRequest | STSRequest) -> list[str | None]:
    return [
        _check_choice("output_format", request.output_format.format, caps.audio_formats),
        None
        if not caps.requires_language_code or getattr(request, "language_code", "x")
        else "model needs language_code (e.g. 'hi-IN')",
    ]


_PROBLEMS: dict[str, Callable[[ModelCapabilities, Any], list[str | None]]] = {"video": _video_problems, "image": _image_problems, "audio": _audio_problems}
"""The table's checks per media kind (``ModalitySpec.media_kind``)."""


def _check_duration(caps: ModelCapabilities, duration: int | None) -> str | None:
    if duration is None:
        return None
    if caps.durations == ():
        return f"duration_seconds={duration} not supported (this model takes no duration_seconds)"
    if caps.durations is not None and duration not in caps.durations:
        return f"duration_seconds={duration} not supported (allowed: {', '.join(map(str, caps.durations))})"
    if caps.max_duration is not None and duration > caps.max_duration:
        return f"duration_seconds={duration} exceeds the model's maximum of {caps.max_duration}"
    if caps.min_duration is not None and duration < caps.min_duration:
        return f"duration_seconds={duration} is below the model's minimum of {caps.min_duration}"
    return None


def _check_choice(field: str, value: str | None, allowed: tuple[str, ...] | None) -> str | None:
    if value is None or allowed is None or value in allowed:
        return None
    if not allowed:
        return f"{field}={value!r} not supported (this model takes no {field})"
    return f"{field}={value!r} not supported (allowed: {', '.join(allowed)})"


def _check_images(caps: ModelCapabilities, images: list[Any]) -> str | None:
    if not images or caps.image_roles is None:
        return None
    if not caps.image_roles:
        return "model takes no input images"
    bad = sorted({img["type"] for img in images if img["type"] not in caps.image_roles})
    if bad:
        return f"image roles {bad} not supported (allowed: {', '.join(caps.image_roles)})"
    return _check_max("image_list length", len(images), caps.max_input_images)


def _check_max(field: str, value: int | None, maximum: int | None) -> str | None:
    if value is None or maximum is None or value <= maximum:
        return None
    return f"{field}={value} exceeds the model's maximum of {maximum}"


def family_key(model: str, table: Mapping[str, Any]) -> str | None:
    """The key of ``table`` describing ``model``: ``model`` itself, else the longest
    ``prefix*`` key it starts with. The package's one model-family rule (capabilities,
    prices, field mappings)."""
    if model in table:
        return model
    families = [key for key in table if key.endswith("*") and model.startswith(key[:-1])]
    return max(families, key=len) if families else None


def family_lookup(table: Mapping[str, Any], model: str, default: Any = None) -> Any:
    """``table``'s entry for ``model`` by :func:`family_key`, else ``default``."""
    key = family_key(model, table)
    return table[key] if key is not None else default
