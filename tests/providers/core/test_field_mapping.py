"""The aggregators' shared field-mapping kit: the table semantics, the one model-family
rule, and runtime registration reaching the wire for a model no provider module knows."""

from types import SimpleNamespace

import pytest

from providers import RetryPolicy, generate_video
from providers.core.capabilities import family_key
from providers.errors import InvalidRequestError
from providers.core.field_mapping import (
    OMIT,
    REQUEST,
    SPREAD,
    Field,
    FieldMapping,
    register_field_mapping,
    registered_field_mapping,
    seconds_suffix,
    unregister_field_mapping,
)
from schemas import AudioOutputFormat, TTSRequest, VideoGenerationConfig, VideoGenerationRequest

FAST = RetryPolicy(max_retries=0, base_delay=0.01, max_delay=0.02)
NEW_MAPPING = FieldMapping.of(
    Field("text_prompt", "prompt", send_empty=True),
    Field("length", "duration_seconds", seconds_suffix),
    Field("rng", "seed"),
    Field("ratio_hint", "aspect_ratio", modes=frozenset({"text", "text_to_video", "video"})),
)


@pytest.fixture
def registered():
    """Registers ``NEW_MAPPING`` where a test asks, and removes every registration after it."""
    made: list[tuple[str, str]] = []

    def register(provider: str, pattern: str, mapping: FieldMapping = NEW_MAPPING) -> None:
        register_field_mapping(provider, pattern, mapping)
        made.append((provider, pattern))

    yield register
    for provider, pattern in made:
        unregister_field_mapping(provider, pattern)


def video(**fields):
    return VideoGenerationRequest(prompt="a lighthouse at dusk", **fields)


# -- the table ------------------------------------------------------------------------------


def test_payload_converts_skips_unset_and_honours_modes():
    mapping = NEW_MAPPING
    request = video(duration_seconds=8, seed=7, aspect_ratio="16:9")
    assert mapping.payload(request, "text") == {"text_prompt": "a lighthouse at dusk", "length": "8s", "rng": 7,
                                                "ratio_hint": "16:9"}
    assert mapping.payload(request, "image") == {"text_prompt": "a lighthouse at dusk", "length": "8s", "rng": 7}
    assert mapping.payload(video(), "text") == {"text_prompt": "a lighthouse at dusk"}


def test_empty_strings_are_sent_only_when_asked_and_defaults_fill_unset_values():
    mapping = FieldMapping.of(
        Field("prompt", "prompt", send_empty=True),
        Field("negative", "negative_prompt"),
        Field("duration", "duration_seconds", default=5),
    )
    assert mapping.payload(video(negative_prompt="")) == {"prompt": "a lighthouse at dusk", "duration": 5}
    bare = SimpleNamespace(prompt="", negative_prompt="", duration_seconds=8)
    assert mapping.payload(bare) == {"prompt": "", "duration": 8}


def test_nested_sources_whole_request_transforms_and_spread_fields():
    request = TTSRequest(text="hello", voice_id="v1", voice_settings={"speed": 1.2},
                         output_format=AudioOutputFormat(format="wav", sample_rate=24000))
    mapping = FieldMapping.of(
        Field("rate", "output_format.sample_rate"),
        Field("bitrate", "output_format.bitrate"),  # unset: not sent
        Field("voice", REQUEST, lambda r: {"id": r.voice_id, "lang": r.language_code}),
        Field(SPREAD, "voice_settings"),
        Field("format", "output_format.format", lambda fmt: OMIT if fmt == "wav" else fmt),
    )
    assert mapping.payload(request) == {"rate": 24000, "voice": {"id": "v1", "lang": None}, "speed": 1.2}


def test_with_fields_replaces_rows_by_source_and_without_drops_them():
    changed = NEW_MAPPING.with_fields(Field("frames", "duration_seconds", lambda s: 16 * s + 1), Field("neg", "negative_prompt"))
    assert [rule.name for rule in changed.fields] == ["text_prompt", "frames", "rng", "ratio_hint", "neg"]
    assert changed.name_for("duration_seconds") == "frames" and NEW_MAPPING.name_for("duration_seconds") == "length"
    assert NEW_MAPPING.without("seed").name_for("seed") is None
    assert NEW_MAPPING.sends("aspect_ratio", "text") and not NEW_MAPPING.sends("aspect_ratio", "image")


def test_family_key_prefers_the_exact_id_then_the_longest_prefix():
    table = {"acme/*": 1, "acme/video*": 2, "acme/video-pro": 3}
    assert family_key("acme/video-pro", table) == "acme/video-pro"
    assert family_key("acme/video-pro-2", table) == "acme/video*"
    assert family_key("acme/image", table) == "acme/*"
    assert family_key("other/video", table) is None


def test_registration_is_validated_and_can_be_removed(registered):
    with pytest.raises(TypeError, match="FieldMapping"):
        register_field_mapping("fal", "fal-ai/x*", {"prompt": "prompt"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pattern"):
        register_field_mapping("fal", "*", NEW_MAPPING)
    registered("fal", "fal-ai/new-model/*")
    assert registered_field_mapping("fal", "fal-ai/new-model/v2") is NEW_MAPPING
    assert registered_field_mapping("replicate", "fal-ai/new-model/v2") is None
    unregister_field_mapping("fal", "fal-ai/new-model/*")
    assert registered_field_mapping("fal", "fal-ai/new-model/v2") is None


# -- registration reaches the wire --------------------------------------------------------------


def config(emulator, provider, model):
    return VideoGenerationConfig(
        provider=provider, model=model, base_url=emulator.url_for(provider), api_key=emulator.key_for(provider),
        poll_interval=0, max_poll_attempts=500, timeout=30,
    )


def test_fal_sends_a_registered_mapping_for_a_new_model(emulator, registered):
    emulator.jobs.advance_per_poll()  # done after its polls, however slow the machine
    request = dict(prompt="a lighthouse at dusk", duration_seconds=8, seed=7, aspect_ratio="16:9", negative_prompt="fog")
    registered("fal", "fal-ai/new-model/*", NEW_MAPPING.with_fields(Field("prompt", "prompt")))
    generate_video(config(emulator, "fal", "fal-ai/new-model/v1"), retry=FAST, **request)
    # fal's emulator wants "prompt": the row for the request's prompt is replaced, not added.
    assert emulator.last("fal.submit").json == {"prompt": "a lighthouse at dusk", "length": "8s", "rng": 7,
                                                "ratio_hint": "16:9"}
    emulator.reset()
    generate_video(config(emulator, "fal", "fal-ai/other-model"), retry=FAST, **request)  # the generic family
    assert emulator.last("fal.submit").json == {"prompt": "a lighthouse at dusk", "duration": "8", "seed": 7,
                                                "aspect_ratio": "16:9", "negative_prompt": "fog"}


def test_replicate_sends_a_registered_mapping_for_a_new_model(emulator, registered):
    emulator.jobs.advance_per_poll()  # done after its polls, however slow the machine
    registered("replicate", "acme/new-video*", NEW_MAPPING.with_fields(Field("prompt", "prompt")))
    generate_video(config(emulator, "replicate", "acme/new-video-2"), prompt="a lighthouse at dusk",
                   duration_seconds=8, seed=7, aspect_ratio="16:9", retry=FAST)
    assert emulator.last("replicate.create_model").json["input"] == {
        "prompt": "a lighthouse at dusk", "length": "8s", "rng": 7, "ratio_hint": "16:9",
    }


def test_runway_sends_a_registered_mapping_for_a_new_model(emulator, registered):
    registered("runway", "gen9*")
    # The emulator knows only runwayml's documented models: it refuses the task, after recording it.
    with pytest.raises(InvalidRequestError):
        generate_video(config(emulator, "runway", "gen9_preview"), prompt="a lighthouse at dusk",
                       duration_seconds=8, seed=7, aspect_ratio="16:9", retry=FAST)
    body = emulator.last("runway.text_to_video").json
    assert {k: v for k, v in body.items() if k != "ratio"} == {
        "model": "gen9_preview", "text_prompt": "a lighthouse at dusk", "length": "8s", "rng": 7, "ratio_hint": "16:9",
    }
