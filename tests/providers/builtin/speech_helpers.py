"""Helpers shared by the speech provider tests (Cartesia, ElevenLabs, Hume, Sarvam)."""

from __future__ import annotations

import base64
import io

import av


def audio_of(response) -> bytes:
    """The audio bytes of a TTS/STS response."""
    return base64.b64decode(response.audio)


def decoded(data: bytes) -> tuple[str, int, float]:
    """(codec, sample rate, seconds) as FFmpeg decodes the bytes.

    The codec is named canonically (``mp3``), whichever decoder read it.
    """
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        rate = stream.codec_context.sample_rate
        return stream.codec_context.codec.canonical_name, rate, samples / rate


def decode(data: bytes, *, raw_pcm_rate: int | None = None) -> tuple[str, int, float]:
    """(decoder, decoder sample rate, seconds) after decoding every frame with PyAV.

    Unlike :func:`decoded` this names the decoder itself (``mp3float`` for mp3), and
    ``raw_pcm_rate`` reads headerless 16-bit mono PCM at that rate.
    """
    options = {"format": "s16le", "options": {"sample_rate": str(raw_pcm_rate), "ch_layout": "mono"}} if raw_pcm_rate else {}
    with av.open(io.BytesIO(data), **options) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.codec_context.name, stream.sample_rate, samples / stream.sample_rate


def summary(metadata) -> list[tuple[str, int, str, str | None]]:
    """(provider, try number, status, error type) for each attempt."""
    return [(a.provider, a.try_number, a.status, a.error_type) for a in metadata.attempts]


def numbered_summary(metadata) -> list[tuple[str, int, int, str, str | None]]:
    """(provider, attempt number, try number, status, error type) for each attempt."""
    return [(a.provider, a.attempt_number, a.try_number, a.status, a.error_type) for a in metadata.attempts]
