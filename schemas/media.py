"""Type aliases for media passed into and out of the SDK."""

from __future__ import annotations

from typing import Literal, Union

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
