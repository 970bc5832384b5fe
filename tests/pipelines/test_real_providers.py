"""The pipeline over real provider clients (REST against the loopback emulator): a
fallback chain across three providers, each row served by the one that can, and the
table naming it; and a speech chain across two speech providers."""


import av
import pytest

from tests.emulator import Fault
from tests.pipelines.conftest import rows_by_id, run_pipeline, write_job, write_jsonl

KEYS = {"openai": "OPENAI_API_KEY", "stability": "STABILITY_API_KEY", "fal": "FAL_KEY",
        "elevenlabs": "ELEVENLABS_API_KEY", "cartesia": "CARTESIA_API_KEY"}


@pytest.fixture
def keyed(emulator, monkeypatch):
    emulator.job_duration = 0.2
    for provider, env in KEYS.items():
        monkeypatch.setenv(env, emulator.key_for(provider))
    return emulator


def entry(emulator, provider, model, **extra):
    return {"provider": provider, "model": model, "api_key_env": KEYS[provider],
            "base_url": emulator.url_for(provider), "poll_interval": 0, "max_poll_attempts": 2000, **extra}


def test_image_chain_across_openai_stability_and_fal(keyed, tmp_path):
    emulator = keyed
    chain = entry(emulator, "openai", "gpt-image-2.6-flare", fallback_configs=[
        entry(emulator, "stability", "stable-image-core"),
        entry(emulator, "fal", "fal-ai/flux/dev"),
    ])
    job = write_job(tmp_path / "job.yaml", {"modality": "image", "configs": [{"name": "chain", **chain}],
                                            "retry": {"max_retries": 1, "base_delay": 0.01}})
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [
        {"id": "square", "prompt": "a square lighthouse", "size": "1024x1024"},      # openai serves it
        {"id": "wide", "prompt": "a very wide canyon", "aspect_ratio": "21:9"},       # openai skips 21:9
        {"id": "small", "prompt": "a small blue stamp", "size": "512x512"},           # only fal takes 512x512
    ])
    assert run_pipeline("--input", prompts, "--output", tmp_path / "out", "--config", job) == 0

    rows = rows_by_id(tmp_path / "out")
    served = {row_id: row["provider"] for row_id, row in rows.items()}
    assert served == {"square": "openai", "wide": "stability", "small": "fal"}
    wide = [(a["provider"], a["status"]) for a in rows["wide"]["attempts"]]
    assert wide == [("openai", "skipped"), ("stability", "success")]
    small = [(a["provider"], a["status"]) for a in rows["small"]["attempts"]]
    assert small == [("openai", "skipped"), ("stability", "skipped"), ("fal", "success")]
    # The table agrees with what each provider actually received.
    for route, prompt in (("openai.images_generations", "a square lighthouse"),
                          ("stability.generate", "a very wide canyon"), ("fal.submit", "a small blue stamp")):
        bodies = [r.json or r.form for r in emulator.requests_for(route)]
        assert any(body.get("prompt") == prompt for body in bodies), route
    for row in rows.values():
        assert row["status"] == "completed" and row["media_uris"] and row["width"] and row["height"]


def test_transient_failures_fall_back_to_the_next_provider(keyed, tmp_path):
    emulator = keyed
    chain = entry(emulator, "openai", "gpt-image-2.6-flare", fallback_configs=[entry(emulator, "fal", "fal-ai/flux/dev")])
    job = write_job(tmp_path / "job.yaml", {"modality": "image", "configs": [{"name": "chain", **chain}],
                                            "retry": {"max_retries": 1, "base_delay": 0.01}})
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"id": "only", "prompt": "a lighthouse", "size": "1024x1024"}])
    emulator.inject("openai.images_generations", Fault.http(503, {"error": {"message": "overloaded"}}), times=None)
    assert run_pipeline("--input", prompts, "--output", tmp_path / "out", "--config", job) == 0
    row = rows_by_id(tmp_path / "out")["only"]
    assert row["provider"] == "fal" and row["fallback_triggered"]
    assert [(a["provider"], a["try_number"], a["status"]) for a in row["attempts"]] == [
        ("openai", 1, "failed"), ("openai", 2, "failed"), ("fal", 1, "success")]
    assert emulator.count("openai.images_generations") == 2


def test_speech_chain_across_elevenlabs_and_cartesia(keyed, tmp_path):
    emulator = keyed
    chain = entry(emulator, "elevenlabs", "eleven_multilingual_v2", provider_config={"voice_id": "el-voice"},
                  fallback_configs=[entry(emulator, "cartesia", "sonic-3", provider_config={"voice_id": "ca-voice"})])
    job = write_job(tmp_path / "job.yaml", {"modality": "tts", "configs": [{"name": "speech", **chain}]})
    prompts = write_jsonl(tmp_path / "texts.jsonl", [
        {"id": "wav", "text": "Served by ElevenLabs as wav.", "output_format": {"format": "wav", "sample_rate": 24000}},
        {"id": "mp3-48k", "text": "ElevenLabs has no mp3 at 48 kHz.", "output_format": {"format": "mp3", "sample_rate": 48000, "bitrate": 128}},
    ])
    assert run_pipeline("--input", prompts, "--output", tmp_path / "out", "--config", job) == 0
    rows = rows_by_id(tmp_path / "out")
    assert {r: row["provider"] for r, row in rows.items()} == {"wav": "elevenlabs", "mp3-48k": "cartesia"}
    for row_id, codec, rate in (("wav", "pcm_s16le", 24000), ("mp3-48k", "mp3", 48000)):
        with av.open(str(tmp_path / "out" / rows[row_id]["media_uris"][0])) as container:
            stream = container.streams.audio[0]
            assert stream.codec_context.name.startswith(codec) and stream.codec_context.sample_rate == rate
        assert rows[row_id]["duration_seconds"] > 0.5
