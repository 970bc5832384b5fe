"""Google conformance: the official ``google-genai`` SDK is the oracle, on both backends.

The SDK is pointed at the emulator with ``HttpOptions(base_url=...)`` (Gemini API: API key
in ``x-goog-api-key``; Vertex AI: ``vertexai=True`` with a static OAuth token). Checked:

(a) the emulator accepts what the SDK sends for ``generate_videos`` (+ ``operations.get``),
    ``generate_images`` (Vertex) and ``generate_content`` (image models), and our client
    sends the same paths, methods, auth and version headers and body field names;
(b) every answer the emulator gives converts through the SDK's own response converters
    and validates against its pydantic types (``extra='forbid'``), and carries no key
    the SDK's converter does not read.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import json
import re
from typing import Any

import pytest

from providers import RetryPolicy, generate_image, generate_video
from providers.errors import MediagenError, UnsupportedRequestError
from schemas import ImageGenerationConfig, VideoGenerationConfig
from tests.conformance.sdk_oracle import strictly, wire
from tests.conftest import serve_retired_models
from tests.emulator import Fault

genai = pytest.importorskip("google.genai")
from google.genai import errors as genai_errors  # noqa: E402
from google.genai import models as genai_models  # noqa: E402
from google.genai import types  # noqa: E402

PROJECT, LOCATION = "my-proj", "us-central1"
VERTEX = {"gcp_project": PROJECT, "location": LOCATION}
# protobuf's Any type tag: present on real long-running operation responses, ignored by the SDK.
ANY_TYPE = "@type"


IMAGE_MODEL = "gemini-3.1-flash-image"


@pytest.fixture
def imagen_served(monkeypatch):
    """Imagen is retired in our catalog; compare its protocol as if it were still served."""
    from providers.builtin.google import GOOGLE_MODELS

    serve_retired_models(monkeypatch, GOOGLE_MODELS, "imagen-")


@pytest.fixture
def emu(emulator):
    emulator.job_duration = 0.05
    return emulator


def gemini_client(emu, key: str | None = None):
    return genai.Client(api_key=key or emu.key_for("google"),
                        http_options=types.HttpOptions(base_url=emu.url_for("google")))


def vertex_client(emu):
    """The SDK defaults to Vertex ``v1beta1``; we use ``v1``, the version of Google's Veo and
    Imagen REST reference (both served), so the SDK is pinned to ``v1`` for comparison."""
    from google.oauth2.credentials import Credentials

    return genai.Client(vertexai=True, project=PROJECT, location=LOCATION,
                        credentials=Credentials(token=emu.key_for("google")),
                        http_options=types.HttpOptions(base_url=emu.url_for("google"), api_version="v1"))


def _config(kind, emu, model: str, vertex: bool = False, **fields):
    return kind(provider="google", model=model, base_url=emu.url_for("google"), api_key=emu.key_for("google"),
                poll_interval=0, provider_config=dict(VERTEX) if vertex else {}, **fields)


def _wait(client, operation):
    for _ in range(2000):
        if operation.done:
            return operation
        operation = client.operations.get(operation)
    raise AssertionError("operation never finished")


# -- what the SDK's response converters read ---------------------------------------------------

_GETV = re.compile(r"getv\(from_object, \[([^\]]*)\]\)")


def read_keys(converter: Any) -> set[str]:
    """First path element of every ``getv(from_object, [...])`` in an SDK converter."""
    keys = set()
    for match in _GETV.finditer(inspect.getsource(converter)):
        first = match.group(1).split(",")[0].strip().strip("'\"")
        keys.add(first)
    return keys - {"_self", "sdkHttpResponse"}


def assert_only_read_keys(obj: dict[str, Any], converters: tuple[Any, ...], where: str, allowed: set[str] = frozenset()):
    known = set().union(*(read_keys(c) for c in converters)) | set(allowed)
    unknown = set(obj) - known
    assert not unknown, f"{where}: keys the SDK does not read: {sorted(unknown)} (reads {sorted(known)})"


def check_operation(raw: dict[str, Any], vertex: bool) -> types.GenerateVideosOperation:
    """Strict: every key is one the SDK reads at its level; the converted object validates."""
    m = genai_models
    op_conv = m._GenerateVideosOperation_from_vertex if vertex else m._GenerateVideosOperation_from_mldev
    assert_only_read_keys(raw, (op_conv,), "operation")
    if "response" in raw:
        response = raw["response"]
        if vertex:
            assert_only_read_keys(response, (m._GenerateVideosResponse_from_vertex,), "response", {ANY_TYPE})
            for video in response.get("videos", []):
                assert_only_read_keys(video, (m._Video_from_vertex,), "videos[]")
        else:
            assert_only_read_keys(response, (), "response", {ANY_TYPE, "generateVideoResponse"})
            inner = response["generateVideoResponse"]
            assert_only_read_keys(inner, (m._GenerateVideosResponse_from_mldev,), "generateVideoResponse")
            for sample in inner.get("generatedSamples", []):
                assert_only_read_keys(sample, (m._GeneratedVideo_from_mldev,), "generatedSamples[]")
                assert_only_read_keys(sample["video"], (m._Video_from_mldev,), "generatedSamples[].video")
    converted = op_conv(raw)
    return types.GenerateVideosOperation.model_validate(converted)


# -- Veo -------------------------------------------------------------------------------------------


def test_gemini_api_veo_round_trip_through_the_sdk(emu):
    client = gemini_client(emu)
    png = emu.image_bytes("first", width=32, height=32)
    operation = client.models.generate_videos(
        model="veo-3.1-generate-001",
        source=types.GenerateVideosSource(prompt="a fox", image=types.Image(image_bytes=png, mime_type="image/png")),
        config=types.GenerateVideosConfig(number_of_videos=1, duration_seconds=8, aspect_ratio="9:16",
                                          resolution="720p", negative_prompt="blur", person_generation="allow_adult",
                                          enhance_prompt=True),
    )
    submit = emu.last("google.predict_long_running")
    assert submit.headers["x-goog-api-key"] == emu.key_for("google") and "Authorization" not in submit.headers
    operation = _wait(client, operation)
    assert operation.error is None and len(operation.response.generated_videos) == 1
    poll = emu.last("google.get_operation")
    assert poll.method == "GET" and poll.path == f"/v1beta/{operation.name}"
    # The SDK extracts the file id only from https URIs (the emulator is plain http).
    uri = operation.response.generated_videos[0].video.uri
    data = client.files.download(file="files/" + re.search(r"/files/([a-z0-9]+):download", uri).group(1))
    download = emu.last("google.download_file")
    assert download.path == uri.split("/google", 1)[1].split("?")[0] and download.query == {"alt": "media"}
    assert data[4:8] == b"ftyp"


def test_our_gemini_api_veo_request_matches_the_sdk(emu):
    client = gemini_client(emu)
    png = emu.image_bytes("first", width=32, height=32)
    last = emu.image_bytes("last", width=32, height=32)
    client.models.generate_videos(
        model="veo-3.1-generate-001",
        source=types.GenerateVideosSource(prompt="a fox", image=types.Image(image_bytes=png, mime_type="image/png")),
        config=types.GenerateVideosConfig(number_of_videos=1, duration_seconds=8, aspect_ratio="16:9",
                                          resolution="1080p", negative_prompt="blur", enhance_prompt=False,
                                          last_frame=types.Image(image_bytes=last, mime_type="image/png")),
    )
    theirs = emu.last("google.predict_long_running")
    generate_video(
        _config(VideoGenerationConfig, emu, "veo-3.1-generate-001"), prompt="a fox", duration_seconds=8,
        aspect_ratio="16:9", resolution="1080p", negative_prompt="blur", enhance_prompt=False,
        image_list=[{"image": {"content": png, "content_type": "image/png"}, "type": "first_frame"},
                    {"image": {"content": last, "content_type": "image/png"}, "type": "last_frame"}],
    )
    mine = emu.last("google.predict_long_running")
    assert wire(mine, "x-goog-api-key") == wire(theirs, "x-goog-api-key")
    assert mine.json == theirs.json
    assert mine.headers["Content-Type"].split(";")[0] == theirs.headers["Content-Type"]
    assert emu.last("google.get_operation").path.startswith("/v1beta/models/veo-3.1-generate-001/operations/")


def test_reference_images_match_the_sdk_on_vertex_and_style_is_vertex_only(emu):
    png = emu.image_bytes("ref", width=32, height=32)
    vclient = vertex_client(emu)
    refs = [types.VideoGenerationReferenceImage(image=types.Image(image_bytes=png, mime_type="image/png"),
                                                reference_type=kind) for kind in ("asset", "style")]
    vclient.models.generate_videos(model="veo-2.0-generate-exp", prompt="a hero",
                                   config=types.GenerateVideosConfig(reference_images=refs, duration_seconds=8))
    theirs = emu.last("google.vertex_predict_long_running").json["instances"][0]["referenceImages"]
    generate_video(_config(VideoGenerationConfig, emu, "veo-2.0-generate-exp", vertex=True), prompt="a hero",
                   duration_seconds=8,
                   image_list=[{"image": {"content": png, "content_type": "image/png"}, "type": t}
                               for t in ("asset", "style")])
    mine = emu.last("google.vertex_predict_long_running").json["instances"][0]["referenceImages"]
    assert mine == theirs and [r["referenceType"] for r in mine] == ["ASSET", "STYLE"]

    with pytest.raises(ValueError, match="STYLE"):
        gemini_client(emu).models.generate_videos(model="veo-2.0-generate-exp", prompt="a hero",
                                                  config=types.GenerateVideosConfig(reference_images=refs[1:]))
    with pytest.raises(UnsupportedRequestError, match="style"):
        generate_video(_config(VideoGenerationConfig, emu, "veo-2.0-generate-exp"), prompt="a hero",
                       image_list=[{"image": {"content": png, "content_type": "image/png"}, "type": "style"}])


@pytest.mark.parametrize(("sdk_field", "ours"), [("seed", {"seed": 1}), ("generate_audio", {"generate_audio": False}),
                                                  ("fps", {"fps": 24}), ("output_gcs_uri", {"storage_uri": "gs://b"})])
def test_vertex_only_parameters_agree_with_the_sdk(emu, sdk_field, ours):
    value = {"seed": 1, "generate_audio": False, "fps": 24, "output_gcs_uri": "gs://b"}[sdk_field]
    with pytest.raises(ValueError, match="only supported in Gemini Enterprise Agent Platform"):
        gemini_client(emu).models.generate_videos(model="veo-3.1-fast-generate-001", prompt="x",
                                                  config=types.GenerateVideosConfig(**{sdk_field: value}))
    if "storage_uri" in ours:  # ours takes the bucket from provider_config; it is ignored on the Gemini API
        return
    with pytest.raises(UnsupportedRequestError):
        generate_video(_config(VideoGenerationConfig, emu, "veo-3.1-fast-generate-001"), prompt="x", **ours)


def test_vertex_veo_round_trip_and_our_request_match_the_sdk(emu):
    client = vertex_client(emu)
    clip = emu.video_bytes("earlier", width=64, height=36, duration=1.0)
    operation = client.models.generate_videos(
        model="veo-3.1-generate-001",
        source=types.GenerateVideosSource(prompt="continue", video=types.Video(video_bytes=clip, mime_type="video/mp4")),
        config=types.GenerateVideosConfig(number_of_videos=2, duration_seconds=8, seed=5, generate_audio=False,
                                          aspect_ratio="16:9", resolution="720p"),
    )
    theirs = emu.last("google.vertex_predict_long_running")
    operation = _wait(client, operation)
    assert len(operation.response.generated_videos) == 2
    assert operation.response.generated_videos[0].video.video_bytes[4:8] == b"ftyp"
    their_poll = emu.last("google.vertex_fetch_operation")

    generate_video(
        _config(VideoGenerationConfig, emu, "veo-3.1-generate-001", vertex=True), prompt="continue",
        video={"content": clip, "content_type": "video/mp4"}, number_of_videos=2, duration_seconds=8, seed=5,
        generate_audio=False, aspect_ratio="16:9", resolution="720p",
    )
    mine = emu.last("google.vertex_predict_long_running")
    my_poll = emu.last("google.vertex_fetch_operation")
    assert wire(mine, "Authorization") == wire(theirs, "Authorization") and mine.json == theirs.json
    assert mine.headers["Authorization"] == f"Bearer {emu.key_for('google')}"
    assert (my_poll.method, my_poll.path, set(my_poll.json)) == (their_poll.method, their_poll.path,
                                                                 set(their_poll.json))


@pytest.mark.parametrize("vertex", [False, True], ids=["gemini", "vertex"])
def test_every_operation_answer_is_strictly_what_the_sdk_reads(emu, vertex):
    model = "veo-3.1-fast-generate-001"
    for fault in (None, Fault.moderation("Person generation blocked"), Fault.fail_job("boom")):
        emu.reset()
        emu.job_duration = 0.05
        if fault is not None:
            emu.inject("google.vertex_predict_long_running" if vertex else "google.predict_long_running", fault)
        with pytest.raises(MediagenError) if fault else contextlib.nullcontext():
            generate_video(_config(VideoGenerationConfig, emu, model, vertex=vertex), prompt="x",
                           retry=RetryPolicy(max_retries=0))
        [job] = emu.jobs.all("google")  # our client polled it to the end
        raw = _operation_json(emu, job, vertex)
        operation = check_operation(raw, vertex)
        assert operation.done
        if fault is None:
            assert operation.response.generated_videos
        elif fault.kind == "moderation":
            assert operation.response.rai_media_filtered_count == 1
            assert operation.response.rai_media_filtered_reasons == ["Person generation blocked"]
        else:
            assert operation.error["code"] == 13


def _operation_json(emu, job, vertex: bool) -> dict[str, Any]:
    import requests

    name = job.params["name"]
    headers = {"Authorization": f"Bearer {emu.key_for('google')}"} if vertex else {
        "x-goog-api-key": emu.key_for("google")}
    if vertex:
        path = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{job.params['model']}"
        response = requests.post(f"{emu.url_for('google')}{path}:fetchPredictOperation", json={"operationName": name},
                                 headers=headers, timeout=10)
    else:
        response = requests.get(f"{emu.url_for('google')}/v1beta/{name}", headers=headers, timeout=10)
    response.raise_for_status()
    return response.json()


# -- Imagen (Vertex only) and Gemini image models -------------------------------------------------


@pytest.mark.usefixtures("imagen_served")
def test_imagen_is_vertex_only_in_the_sdk_and_in_ours(emu):
    with pytest.raises(ValueError, match="only supported in Gemini Enterprise Agent Platform"):
        gemini_client(emu).models.generate_images(model="imagen-4.0-generate-001", prompt="x")
    with pytest.raises(UnsupportedRequestError, match="Vertex AI only"):
        generate_image(_config(ImageGenerationConfig, emu, "imagen-4.0-generate-001"), prompt="x")


@pytest.mark.usefixtures("imagen_served")
def test_vertex_imagen_matches_the_sdk_and_answers_strictly(emu):
    client = vertex_client(emu)
    result = client.models.generate_images(
        model="imagen-4.0-generate-001", prompt="a lighthouse",
        config=types.GenerateImagesConfig(number_of_images=2, aspect_ratio="16:9", negative_prompt="fog",
                                          output_mime_type="image/jpeg", include_rai_reason=True),
    )
    assert len(result.generated_images) == 2 and result.generated_images[0].image.mime_type == "image/jpeg"
    theirs = emu.last("google.vertex_predict")
    generate_image(_config(ImageGenerationConfig, emu, "imagen-4.0-generate-001", vertex=True), prompt="a lighthouse",
                   n=2, aspect_ratio="16:9", negative_prompt="fog", output_format="jpeg")
    mine = emu.last("google.vertex_predict")
    assert wire(mine, "Authorization") == wire(theirs, "Authorization")
    assert mine.json["instances"] == theirs.json["instances"]
    assert mine.json["parameters"] == theirs.json["parameters"]

    import requests

    raw = requests.post(f"{emu.url_for('google')}{theirs.path}", json=theirs.json,
                        headers={"Authorization": f"Bearer {emu.key_for('google')}"}, timeout=10).json()
    m = genai_models
    assert_only_read_keys(raw, (m._GenerateImagesResponse_from_vertex,), "predict")
    for prediction in raw["predictions"]:
        assert_only_read_keys(prediction, (m._GeneratedImage_from_vertex, m._Image_from_vertex,
                                           m._SafetyAttributes_from_vertex), "predictions[]")
    types.GenerateImagesResponse.model_validate(m._GenerateImagesResponse_from_vertex(raw))


@pytest.mark.parametrize("vertex", [False, True], ids=["gemini", "vertex"])
def test_gemini_image_request_matches_the_sdk_and_the_answer_validates_strictly(emu, vertex):
    client = vertex_client(emu) if vertex else gemini_client(emu)
    png = emu.image_bytes("ref", width=32, height=32)
    response = client.models.generate_content(
        model=IMAGE_MODEL,
        contents=[types.Content(role="user", parts=[types.Part(text="a cat"),
                                                    types.Part.from_bytes(data=png, mime_type="image/png")])],
        config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"], seed=3,
                                           image_config=types.ImageConfig(aspect_ratio="16:9")),
    )
    assert any(p.inline_data for p in response.candidates[0].content.parts)
    route = "google.vertex_generate_content" if vertex else "google.generate_content"
    theirs = emu.last(route)
    generate_image(_config(ImageGenerationConfig, emu, IMAGE_MODEL, vertex=vertex), prompt="a cat",
                   aspect_ratio="16:9", seed=3,
                   image_list=[{"image": {"content": png, "content_type": "image/png"}, "type": "reference"}])
    mine = emu.last(route)
    auth_header = "Authorization" if vertex else "x-goog-api-key"
    assert wire(mine, auth_header) == wire(theirs, auth_header)
    assert proto_json(mine.json) == proto_json(theirs.json)

    import requests

    auth = {"Authorization": f"Bearer {emu.key_for('google')}"} if vertex else {"x-goog-api-key": emu.key_for("google")}
    raw = requests.post(f"{emu.url_for('google')}{theirs.path}", json=theirs.json, headers=auth, timeout=10).json()
    strictly(types.GenerateContentResponse, json.dumps(raw))  # camelCase aliases, strict, no extra field


def proto_json(value: Any, key: str = "") -> Any:
    """Normalise the two spellings proto3 JSON accepts: field names (``mime_type`` ->
    ``mimeType``) and bytes (URL-safe or standard base64, which google-genai and we use)."""
    if isinstance(value, dict):
        return {_camel(k): proto_json(v, _camel(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [proto_json(v, key) for v in value]
    if key == "data" and isinstance(value, str):
        return base64.urlsafe_b64decode(value.replace("+", "-").replace("/", "_") + "=" * (-len(value) % 4))
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def test_errors_parse_as_the_sdk_expects(emu):
    wrong = gemini_client(emu, key="wrong")
    with pytest.raises(genai_errors.ClientError) as info:
        wrong.models.generate_content(model=IMAGE_MODEL, contents="x")
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
    assert info.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    client = gemini_client(emu)
    with pytest.raises(genai_errors.ClientError) as info:
        client.models.generate_videos(model="veo-3.1-fast-generate-001", prompt="x",
                                                  config=types.GenerateVideosConfig(duration_seconds=5))
    assert info.value.code == 400 and "duration" in info.value.message


def test_sdk_bytes_encoding_matches_ours():
    """Veo/Imagen image and video bytes: the SDK's ``t_bytes`` is standard base64, as ours."""
    from google.genai import _base_transformers as base_t

    data = bytes(range(256))
    assert base_t.t_bytes(data) == base64.b64encode(data).decode("ascii")
