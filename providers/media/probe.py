"""The prober that proves media decodes (the validation step before a result row says
``completed``: sniff the content type from the bytes, decode, measure), and the poster
stills a gallery shows."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Union

if TYPE_CHECKING:
    import av

# --------------------------------------------------------------------------
# Probing


class MediaProbeError(ValueError):
    """The bytes are not decodable media of a kind we recognise."""


@dataclass(frozen=True)
class MediaInfo:
    """What ``probe_media`` measured.

    ``content_type`` is sniffed from the bytes; ``codec`` is FFmpeg's canonical
    codec name (``'h264'``, ``'mp3'``, ``'opus'``...) or Pillow's format in lower
    case for images. For Opus, ``sample_rate`` is the encoder's input rate from
    the OpusHead (the decoder always runs at 48 kHz).
    """

    kind: str
    content_type: str
    codec: str | None
    duration_seconds: float | None
    width: int | None
    height: int | None
    sample_rate: int | None


_Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", BinaryIO]

_SNIFF_BYTES = 4096  # enough to walk a WAV header to its data chunk
_IMAGE_CODECS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp", "GIF": "gif"}
_EXPECTED = ("an image (PNG, JPEG, WEBP, GIF), audio (MP3, WAV, FLAC, Ogg, AAC, M4A, AU) "
             "or video (MP4, MOV, WebM, MKV)")


def sniff_content_type(head: bytes) -> str | None:
    """The MIME type from the first bytes of a file (magic numbers), or None when unknown.

    Containers that may hold audio or video (MP4, Matroska) are reported as video.
    """
    return _sniff(head)


def _sniff(head: bytes) -> str | None:
    """Content type from magic bytes; for containers that may be audio or video, the video type."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "video/ogg"
    if head.startswith(b".snd"):
        return "audio/basic"
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        layer = (head[1] >> 1) & 0x3
        return "audio/aac" if layer == 0 else "audio/mpeg"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head else "video/x-matroska"
    return None


_AUDIO_ONLY_TYPES = {"video/mp4": "audio/mp4", "video/quicktime": "audio/mp4", "video/webm": "audio/webm",
                     "video/x-matroska": "audio/x-matroska", "video/ogg": "audio/ogg"}


class _Opened:
    """A probe source as something both Pillow and PyAV can open, plus its first bytes."""

    def __init__(self, source: _Source) -> None:
        self.path: str | None = None
        self.file: BinaryIO | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.file = io.BytesIO(bytes(source))
        elif isinstance(source, (str, os.PathLike)):
            self.path = os.fspath(source)
        elif hasattr(source, "read"):
            # PyAV seeks by absolute offsets, so only a seekable file at offset 0 is used in place.
            if _seekable(source) and source.tell() == 0:
                self.file = source
            else:
                self.file = io.BytesIO(source.read())
        else:
            raise TypeError(f"probe_media expects bytes, a path or a binary file, got {type(source).__name__}")
        self.head = self._read_head()

    def _read_head(self) -> bytes:
        if self.path is not None:
            try:
                with open(self.path, "rb") as handle:
                    return handle.read(_SNIFF_BYTES)
            except OSError as exc:
                raise MediaProbeError(f"cannot read media file {self.path!r}: {exc}") from exc
        head = self.rewound().read(_SNIFF_BYTES)
        self.rewound()
        return head

    def rewound(self) -> BinaryIO:
        assert self.file is not None
        self.file.seek(0)
        return self.file

    def target(self) -> str | BinaryIO:
        """A fresh handle on the data: the path, or the file rewound to its start."""
        return self.path if self.path is not None else self.rewound()

    def size(self) -> int:
        """Total byte count."""
        if self.path is not None:
            return os.path.getsize(self.path)
        size = self.rewound().seek(0, os.SEEK_END)
        self.rewound()
        return size


def _seekable(handle: BinaryIO) -> bool:
    try:
        return bool(handle.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _fail(expected: str, head: bytes, detail: object) -> MediaProbeError:
    return MediaProbeError(f"expected {expected}; data starts with {head[:16].hex(' ') or '(empty)'}: {detail}")


def probe_media(source: bytes | str | os.PathLike | BinaryIO, *,
                raw_pcm_sample_rate: int | None = None) -> MediaInfo:
    """Sniff, decode and measure media, raising ``MediaProbeError`` if it is not decodable.

    Images are verified and fully loaded with Pillow. Audio and video are opened
    with PyAV: the first frame is decoded and every packet is demuxed (not
    decoded), so truncated files whose header promises more than their packets
    deliver are rejected. The duration comes from stream or container metadata,
    falling back to the packet timeline, then to decoding every frame. Paths and
    seekable files are streamed, never read into memory whole.

    Raw PCM has no header: only with ``raw_pcm_sample_rate`` are unrecognised
    bytes treated as s16le mono at that rate (text, such as an HTML or JSON
    error page, is still rejected).
    """
    opened = _Opened(source)
    content_type = _sniff(opened.head)
    if content_type is None:
        if raw_pcm_sample_rate is not None:
            return _probe_raw_pcm(opened, raw_pcm_sample_rate)
        hint = " (looks like text)" if _looks_like_text(opened.head) else ""
        raise _fail(_EXPECTED, opened.head, f"unrecognised data{hint}")
    if content_type.startswith("image/"):
        return _probe_image(opened, content_type)
    if content_type == "audio/wav":
        _check_wav_length(opened)
    return _probe_av(opened, content_type)


def _check_wav_length(opened: _Opened) -> None:
    """FFmpeg quietly shortens a WAV whose data chunk is cut off; we call that truncated."""
    head, offset = opened.head, 12
    while offset + 8 <= len(head):
        chunk_id, chunk_size = head[offset : offset + 4], int.from_bytes(head[offset + 4 : offset + 8], "little")
        if chunk_id == b"data":
            available = opened.size() - offset - 8
            # 0 and 0xFFFFFFFF are what streaming writers put before they know the size.
            if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                raise _fail("decodable audio/wav media", head,
                            f"truncated: data chunk declares {chunk_size} bytes but {available} are present")
            return
        offset += 8 + chunk_size + (chunk_size % 2)


def _looks_like_text(data: bytes) -> bool:
    sample = data[:512]
    return len(sample) >= 8 and all(b in (9, 10, 13) or 32 <= b < 127 for b in sample)


def _probe_raw_pcm(opened: _Opened, sample_rate: int) -> MediaInfo:
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ValueError(f"raw_pcm_sample_rate must be a positive integer, got {sample_rate!r}")
    expected = f"raw s16le mono PCM at {sample_rate} Hz"
    size = opened.size()
    if size == 0:
        raise _fail(expected, opened.head, "no data")
    if size % 2:
        raise _fail(expected, opened.head, f"odd length {size} is not whole 16-bit samples")
    if _looks_like_text(opened.head):
        raise _fail(expected, opened.head, "data looks like text, not audio samples")
    return MediaInfo(kind="audio", content_type="audio/pcm", codec="pcm_s16le",
                     duration_seconds=size / 2 / sample_rate, width=None, height=None, sample_rate=sample_rate)


def _probe_image(opened: _Opened, content_type: str) -> MediaInfo:
    from PIL import Image

    expected = f"a decodable {content_type} image"
    try:
        with Image.open(opened.target()) as image:
            image.verify()
        # verify() leaves the image unusable; reopen to decode the pixels.
        with Image.open(opened.target()) as image:
            image.load()
            width, height, pil_format = image.width, image.height, image.format
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, struct.error...) on bad data
        raise _fail(expected, opened.head, f"{type(exc).__name__}: {exc}") from exc
    return MediaInfo(kind="image", content_type=content_type,
                     codec=_IMAGE_CODECS.get(pil_format or "", (pil_format or "").lower() or None),
                     duration_seconds=None, width=width, height=height, sample_rate=None)


def _probe_av(opened: _Opened, sniffed: str) -> MediaInfo:
    import av

    expected = f"decodable {sniffed} media"
    try:
        with av.open(opened.target(), "r") as container:
            return _measure_container(container, sniffed, expected, opened.head)
    except MediaProbeError:
        raise
    except Exception as exc:  # FFmpeg errors surface as many OSError/ValueError subclasses
        raise _fail(expected, opened.head, f"{type(exc).__name__}: {exc}") from exc


def _measure_container(container: av.container.InputContainer, sniffed: str, expected: str,
                       head: bytes) -> MediaInfo:
    video, audio = container.streams.video, container.streams.audio
    if not video and not audio:
        raise _fail(expected, head, "no audio or video stream")
    stream = video[0] if video else audio[0]
    kind = "video" if video else "audio"
    content_type = sniffed if video or sniffed not in _AUDIO_ONLY_TYPES else _AUDIO_ONLY_TYPES[sniffed]
    if kind == "video" and not sniffed.startswith("video/"):
        raise _fail(expected, head, "unexpected video stream in an audio container")

    first_frame, packet_span, packet_count = _demux(container, stream)
    if packet_count == 0:
        raise _fail(expected, head, "no packets")
    if first_frame is None:
        raise _fail(expected, head, "no frame could be decoded")

    declared = _declared_duration(container, stream)
    if declared is not None and packet_span is not None and packet_span + _tolerance(declared) < declared:
        raise _fail(expected, head, f"truncated: packets cover {packet_span:.3f} s of the declared {declared:.3f} s")
    duration = declared if declared is not None else packet_span
    if duration is None:
        duration = _decoded_duration(container, stream)

    codec = stream.codec_context.codec.canonical_name
    if kind == "video":
        return MediaInfo(kind=kind, content_type=content_type, codec=codec, duration_seconds=duration,
                         width=first_frame.width, height=first_frame.height, sample_rate=None)
    return MediaInfo(kind=kind, content_type=content_type, codec=codec, duration_seconds=duration,
                     width=None, height=None, sample_rate=_audio_sample_rate(stream, codec))


def _demux(container: av.container.InputContainer, stream: av.stream.Stream
           ) -> tuple[object | None, float | None, int]:
    """Read every packet of ``stream``; decode until the first frame appears.

    Returns the first frame, the time span the packets cover (None when they carry
    no timestamps) and the packet count.
    """
    first_frame = None
    start: int | None = None
    end: int | None = None
    count = 0
    for packet in container.demux(stream):
        if packet.size == 0 and packet.pts is None:
            continue  # flush marker
        count += 1
        if packet.pts is not None:
            start = packet.pts if start is None else min(start, packet.pts)
            packet_end = packet.pts + (packet.duration or 0)
            end = packet_end if end is None else max(end, packet_end)
        if first_frame is None:
            frames = packet.decode()
            first_frame = frames[0] if frames else None
    if first_frame is None and count:
        frames = stream.codec_context.decode(None)
        first_frame = frames[0] if frames else None
    span = None
    if start is not None and end is not None and stream.time_base is not None and end > start:
        span = float((end - start) * stream.time_base)
    return first_frame, span, count


def _tolerance(declared: float) -> float:
    """Slack for encoder delay/padding between the declared duration and packet timestamps."""
    return max(0.15, 0.03 * declared)


def _declared_duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _decoded_duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    """Last resort: decode everything and count samples (audio) or frames at the stream rate (video)."""
    container.seek(0)
    samples = frames = 0
    for frame in container.decode(stream):
        frames += 1
        samples += getattr(frame, "samples", 0)
    if stream.type == "audio" and stream.codec_context.sample_rate:
        return samples / stream.codec_context.sample_rate
    rate = stream.average_rate or stream.guessed_rate
    return float(frames / rate) if rate else None


def _audio_sample_rate(stream: av.stream.Stream, codec: str) -> int | None:
    extradata = stream.codec_context.extradata or b""
    if codec == "opus" and extradata.startswith(b"OpusHead") and len(extradata) >= 16:
        input_rate = int.from_bytes(extradata[12:16], "little")
        if input_rate:
            return input_rate
    return stream.codec_context.sample_rate or None
