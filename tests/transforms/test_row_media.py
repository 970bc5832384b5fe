"""Row media policy: rows are data. Inline media passes; public URLs are fetched by the worker
under address checks at every hop; local paths and storage URIs only under inputs.media_roots."""

import base64

import pytest
import requests

from schemas import STSRequest, VideoGenerationRequest
from schemas.job import InputSettings
from tests.emulator import EmuResponse
from transforms.row_media import MediaPolicy, RowMediaError, check_row_media, kind_of, load_row_media

PUBLIC = {"media.example.com": ["93.184.216.34"], "rebind.example.com": ["10.0.0.7"],
          "meta.example.com": ["169.254.169.254"], "v6.example.com": ["::ffff:127.0.0.1"]}


def policy(**fields):
    settings = InputSettings(**fields)
    return MediaPolicy(tuple(settings.media_roots), frozenset(settings.allow_private_hosts), settings.max_media_bytes,
                       resolve=lambda host: PUBLIC.get(host, ["127.0.0.1"]))


def sts(audio):
    return STSRequest(audio=audio, voice_id="v")


def test_values_are_told_apart_without_opening_anything():
    jpeg_base64 = base64.b64encode(b"\xff\xd8\xff\xe0" * 8).decode()  # starts with '/9j/'
    assert [kind_of(v) for v in (jpeg_base64, "data:audio/wav;base64,AAAA", "https://x/y.wav", "clip.wav",
                                 "/proc/self/environ", "file:///etc/passwd", "gs://b/a.wav", "simplecache::s3://b/a")] == [
        "inline", "inline", "url", "storage", "storage", "storage", "storage", "storage"]


@pytest.mark.parametrize("audio, reason", [
    ("file:///proc/self/environ", "outside the job's inputs.media_roots (none set)"),
    ("/proc/self/environ", "outside the job's inputs.media_roots"),
    ("../secrets/key.txt", "outside the job's inputs.media_roots"),
    ("gs://other-bucket/a.wav", "outside the job's inputs.media_roots"),
    ("http://127.0.0.1:8080/admin", "127.0.0.1 is not a public address"),
    ("http://169.254.169.254/latest/meta-data/", "is not a public address"),
    ("http://[::1]/x", "is not a public address"),
    ("http://2130706433/x", "is not a public address"),
    ("http://localhost:9/x", "localhost is not a public host"),
    ("http://metadata.google.internal/computeMetadata/v1/", "is not a public host"),
    ("ftp://example.com/a.wav", "outside the job's inputs.media_roots"),
])
def test_refused_values_name_field_and_reason_before_any_io(audio, reason):
    (problem,) = check_row_media(sts(audio), policy())
    assert problem.startswith("audio: ") and reason in problem, problem


def test_every_media_field_is_checked():
    request = VideoGenerationRequest(prompt="p", video="/etc/shadow",
                                     image_list=[{"image": "https://media.example.com/a.png", "type": "reference"},
                                                 {"image": "file:///etc/hosts", "type": "reference"}])
    problems = check_row_media(request, policy())
    assert [p.split(":")[0] for p in problems] == ["image_list[1].image", "video"]


def test_media_roots_allow_exactly_their_prefix(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.wav").write_bytes(b"RIFF....WAVE")
    (tmp_path / "clipsX").mkdir()
    (tmp_path / "clipsX" / "b.wav").write_bytes(b"x")
    (tmp_path / "clips" / "link.wav").symlink_to("/etc/hostname")
    allowed = policy(media_roots=[str(tmp_path / "clips"), "gs://bucket/audio/"])
    assert check_row_media(sts(str(tmp_path / "clips" / "a.wav")), allowed) == []
    assert check_row_media(sts("gs://bucket/audio/x/y.wav"), allowed) == []
    assert check_row_media(sts("gcs://bucket/audio/y.wav"), allowed) == []
    for escaped in (str(tmp_path / "clipsX" / "b.wav"), str(tmp_path / "clips" / ".." / "clipsX" / "b.wav"),
                    str(tmp_path / "clips" / "link.wav"), "gs://bucket/audio/../private/k.json", "gs://bucket/audioX/a.wav"):
        assert check_row_media(sts(escaped), allowed), escaped
    loaded = load_row_media(sts(str(tmp_path / "clips" / "a.wav")), allowed)
    assert loaded.audio == {"content": b"RIFF....WAVE", "content_type": "audio/wav"}


def test_loading_refuses_what_checking_refuses_and_bounds_size(tmp_path):
    (tmp_path / "big.wav").write_bytes(b"x" * 100)
    with pytest.raises(RowMediaError, match="audio: '/proc/self/environ' is a local path"):
        load_row_media(sts("/proc/self/environ"), policy())
    with pytest.raises(RowMediaError, match="larger than inputs.max_media_bytes"):
        load_row_media(sts(str(tmp_path / "big.wav")), policy(media_roots=[str(tmp_path)], max_media_bytes=10))


@pytest.mark.parametrize("host", ["rebind.example.com", "meta.example.com", "v6.example.com"])
def test_names_resolving_to_private_addresses_are_refused_at_fetch_time(host):
    assert check_row_media(sts(f"https://{host}/a.wav"), policy()) == []  # no DNS while reading rows
    with pytest.raises(RowMediaError, match=f"audio: .*{host} resolves to .*not a public address"):
        load_row_media(sts(f"https://{host}/a.wav"), policy())


@pytest.fixture
def media_routes(emulator):
    if "rowmedia.redirect" not in emulator.route_names():
        emulator.add_route("GET", "rowmedia", r"/redirect", lambda req: EmuResponse.empty(
            302, {"Location": req.query["to"]}), name="rowmedia.redirect")
    return emulator


def test_allowed_private_hosts_are_fetched_without_credentials(media_routes):
    url = media_routes.host_audio("hello", audio_format="wav")
    loaded = load_row_media(sts(url), policy(allow_private_hosts=["127.0.0.1"]))
    assert loaded.audio["content"] == media_routes.media_bytes(url) and loaded.audio["content_type"] == "audio/wav"
    (fetch,) = [r for r in media_routes.requests if r.route_name == "media"]
    assert not any(h.lower() in ("authorization", "x-api-key", "xi-api-key") for h in fetch.headers)


def test_a_redirect_to_a_private_address_is_refused(media_routes):
    """A public-looking URL that redirects inward: the hop is checked like the first URL."""
    target = media_routes.host_audio("secret", audio_format="wav").replace("127.0.0.1", "localhost")
    start = media_routes.url_for("rowmedia") + f"/redirect?to={target}"
    with pytest.raises(RowMediaError, match="localhost is not a public host"):
        load_row_media(sts(start), policy(allow_private_hosts=["127.0.0.1"]))
    assert media_routes.count("media") == 0


def test_inline_media_is_left_alone():
    request = sts("data:audio/wav;base64,UklGRg==")
    assert load_row_media(request, policy()) is request


def test_a_name_that_rebinds_to_a_private_address_after_the_check_is_refused(media_routes):
    """The resolver says public; the connection lands on 127.0.0.1: the answer is not used."""
    url = media_routes.host_audio("inside", audio_format="wav").replace("127.0.0.1", "rebind.test")
    rebinding = MediaPolicy(resolve=lambda host: ["93.184.216.34"])

    class ToLoopback(requests.adapters.HTTPAdapter):
        def send(self, request, **kwargs):
            request.url = request.url.replace("rebind.test", "127.0.0.1")
            return super().send(request, **kwargs)

    session = requests.Session()
    session.mount("http://", ToLoopback())
    with pytest.raises(RowMediaError, match="connected to 127.0.0.1, not a public address"):
        load_row_media(sts(url), rebinding, session=session)
