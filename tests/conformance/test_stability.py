"""Stability conformance against the published API reference (no official REST SDK exists;
``stability-sdk`` is the retired gRPC client).

The expected shapes below are copied from Stability's API reference,
https://platform.stability.ai/docs/api-reference (operations
``POST /v2beta/stable-image/generate/ultra``, ``.../core``, ``.../sd3``: multipart/form-data
only, ``Authorization: Bearer``, ``Accept: image/*`` or ``application/json``; 200 answers
with ``finish-reason`` / ``seed`` headers or ``{image, finish_reason, seed}``; errors
``{id, name, errors}``), with the sd3 ``style_preset`` / ``cfg_scale`` fields as sent by
ComfyUI's Stability API nodes (comfy_api_nodes/apis/stability_api.py,
``StabilityStable3_5Request``).

Checked: (a) every multipart body our client sends uses only the operation's documented
fields with documented values; (b) every answer the emulator gives has the documented
shape.
"""

from __future__ import annotations

import base64

import pytest
import requests

from providers import RetryPolicy, generate_image
from schemas import ImageGenerationConfig
from tests.emulator import Fault

FAST = RetryPolicy(max_retries=0)
ASPECT_RATIOS = {"16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"}
STYLE_PRESETS = {"3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
                 "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk", "origami",
                 "photographic", "pixel-art", "tile-texture"}
COMMON = {"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format", "style_preset"}
FIELDS = {
    "ultra": COMMON | {"image", "strength"},
    "core": COMMON,
    "sd3": COMMON | {"image", "strength", "mode", "model", "cfg_scale"},
}
ENUMS = {
    "aspect_ratio": ASPECT_RATIOS,
    "style_preset": STYLE_PRESETS,
    "mode": {"text-to-image", "image-to-image"},
    "model": {"sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash"},
}
OUTPUT_FORMATS = {"ultra": {"png", "jpeg", "webp"}, "core": {"png", "jpeg", "webp"}, "sd3": {"png", "jpeg"}}
JSON_ANSWER = {"image": str, "finish_reason": str, "seed": int}
FINISH_REASONS = {"SUCCESS", "CONTENT_FILTERED"}
ERROR_ANSWER = {"id": str, "name": str, "errors": list}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)


def _config(emu, model: str, **fields) -> ImageGenerationConfig:
    return ImageGenerationConfig(provider="stability", model=model, base_url=emu.url_for("stability"),
                                 api_key=emu.key_for("stability"), **fields)


def assert_documented_form(sent, endpoint: str) -> None:
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert sent.headers["Authorization"].startswith("Bearer ")
    fields = set(sent.form) | {name for name in sent.files if name != "none"}
    assert fields <= FIELDS[endpoint], f"undocumented fields for {endpoint}: {sorted(fields - FIELDS[endpoint])}"
    assert "prompt" in sent.form
    for key, allowed in ENUMS.items():
        assert key not in sent.form or sent.form[key] in allowed, (key, sent.form[key])
    assert sent.form.get("output_format", "png") in OUTPUT_FORMATS[endpoint]
    if "seed" in sent.form:
        assert 0 <= int(sent.form["seed"]) <= 4294967294
    if "strength" in sent.form:
        assert 0 <= float(sent.form["strength"]) <= 1 and "image" in sent.files
    if sent.form.get("mode") == "image-to-image" or "image" in sent.files:
        assert "strength" in sent.form


@pytest.mark.parametrize(
    ("model", "endpoint", "fields"),
    [
        ("stable-image-ultra", "ultra", {"negative_prompt": "people", "aspect_ratio": "16:9", "seed": 7,
                                         "style": "cinematic"}),
        ("stable-image-ultra", "ultra", {"image_list": [{"image": {"content": PNG, "content_type": "image/png"},
                                                         "type": "reference"}], "strength": 0.3}),
        ("stable-image-core", "core", {"style": "anime", "output_format": "webp", "aspect_ratio": "9:16"}),
        ("sd3.5-large", "sd3", {"negative_prompt": "blur", "cfg_scale": 5, "style": "photographic"}),
        ("sd3.5-flash", "sd3", {"image_list": [{"image": {"content": PNG, "content_type": "image/png"},
                                                "type": "reference"}]}),
    ],
)
@pytest.mark.parametrize("accept", ["image/*", "application/json"])
def test_our_requests_and_the_answers_follow_the_reference(emulator, model, endpoint, fields, accept):
    generate_image(_config(emulator, model, provider_config={"accept": accept}), prompt="a lighthouse", retry=FAST,
                   **fields)
    sent = emulator.last("stability.generate")
    assert (sent.method, sent.path) == ("POST", f"/v2beta/stable-image/generate/{endpoint}")
    assert sent.headers["Accept"] == accept
    assert_documented_form(sent, endpoint)

    answer = _replay(emulator, sent)
    assert answer.status_code == 200
    if accept == "application/json":
        body = answer.json()
        assert set(body) == set(JSON_ANSWER) and all(isinstance(body[k], t) for k, t in JSON_ANSWER.items())
        assert body["finish_reason"] in FINISH_REASONS
        assert answer.headers["Content-Type"].startswith("application/json")
    else:
        assert answer.headers["Content-Type"].startswith("image/")
        assert answer.headers["finish-reason"] in FINISH_REASONS and answer.headers["seed"].isdigit()


@pytest.mark.parametrize(
    ("fault", "status", "name"),
    [(Fault.moderation("flagged"), 403, "content_moderation"), (None, 400, "bad_request")],
)
def test_error_answers_follow_the_reference(emulator, fault, status, name):
    if fault is not None:
        emulator.inject("stability.generate", fault)
        form = {"prompt": "x"}
    else:
        form = {"prompt": "x", "aspect_ratio": "4:3"}
    answer = requests.post(f"{emulator.url_for('stability')}/v2beta/stable-image/generate/core", data=form,
                           files={"none": ""}, timeout=10,
                           headers={"Authorization": f"Bearer {emulator.key_for('stability')}", "Accept": "image/*"})
    assert answer.status_code == status
    body = answer.json()
    assert set(body) == set(ERROR_ANSWER) and body["name"] == name and all(isinstance(e, str) for e in body["errors"])


def test_json_and_urlencoded_bodies_are_refused_as_the_reference_says(emulator):
    url = f"{emulator.url_for('stability')}/v2beta/stable-image/generate/core"
    headers = {"Authorization": f"Bearer {emulator.key_for('stability')}"}
    for kwargs in ({"json": {"prompt": "x"}}, {"data": {"prompt": "x"}}):
        assert requests.post(url, headers=headers, timeout=10, **kwargs).status_code == 400


def _replay(emulator, sent) -> requests.Response:
    """The emulator's raw answer to the exact form our client sent."""
    files = {name: (parts[0].filename, parts[0].data, parts[0].content_type) for name, parts in sent.files.items()
             if name != "none"} or {"none": ""}
    headers = {"Authorization": sent.headers["Authorization"], "Accept": sent.headers["Accept"]}
    return requests.post(f"{emulator.url_for('stability')}{sent.path}", data=dict(sent.form), files=files,
                         headers=headers, timeout=10)
