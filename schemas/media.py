"""Type aliases for media passed into and out of the SDK."""

from __future__ import annotations

from typing import Any, Literal, Mapping, Union

from typing_extensions import TypedDict

Base64 = str
"""A base64-encoded payload (optionally a ``data:`` URL)."""

HttpUrl = str
"""An http(s) URL pointing at media."""


class MediaContent(TypedDict):
    """Raw bytes with their MIME type."""

    content: bytes
    content_type: str


MediaType = Union[Base64, HttpUrl, MediaContent]
"""Video, image or audio data: a URL string, a base64 string, or MediaContent."""

ImageRole = Literal["reference", "first_frame", "last_frame", "asset", "style"]


class ImageType(TypedDict):
    """An input image with its semantic role."""

    image: MediaType
    type: ImageRole


Resolution = Literal["360p", "480p", "720p", "1080p", "4k"]
AspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "21:9"]
Modality = Literal["video", "image", "tts", "sts"]


class UrlHeaders:
    """Headers a result URL must be fetched with: they carry the provider's credentials.

    Opaque on purpose: the repr names only how many there are, a pickle (or a copy sent
    to another process) carries none, and nothing serialises them. Only :meth:`reveal`
    hands them out, to the one download that needs them."""

    __slots__ = ("_headers",)

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def reveal(self) -> dict[str, str]:
        """The headers themselves, for the HTTP request that fetches the URL."""
        return dict(self._headers)

    def __repr__(self) -> str:
        return f"UrlHeaders(<{len(self._headers)} hidden>)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (UrlHeaders, ({},))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UrlHeaders) and other._headers == self._headers

    __hash__ = None  # type: ignore[assignment]
