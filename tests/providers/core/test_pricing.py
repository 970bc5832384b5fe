"""The price catalog, estimates, provider-reported costs and the budget's atomic reservation."""

from __future__ import annotations

import threading

import pytest

from providers.core.catalog import COLUMNS, markdown_table
from providers.core.pricing import (
    NO_PRICE,
    BudgetExceededError,
    CostEstimate,
    PriceBook,
    Spend,
    describe_prices,
    total_cost,
)
from providers.registry import BUILTIN_PROVIDERS, get_provider
from schemas import (
    AudioGenerationConfig,
    ImageGenerationConfig,
    ImageGenerationRequest,
    JobConfig,
    MockConfig,
    TTSRequest,
    VideoGenerationConfig,
    VideoGenerationRequest,
)
from schemas.pricing import BudgetSettings, Price


def video(model: str, provider: str = "openai", **fields) -> tuple[VideoGenerationConfig, VideoGenerationRequest]:
    return VideoGenerationConfig(provider=provider, model=model), VideoGenerationRequest(prompt="a fox", **fields)


def test_a_video_is_priced_by_its_seconds_and_resolution():
    cfg, request = video("sora-2-pro", duration_seconds=8, resolution="1080p")
    estimate = PriceBook().estimate("video", cfg, request)
    assert estimate == CostEstimate(4.0, "estimated", estimate.detail)
    assert "8 s of video x $0.5" in estimate.detail


def test_a_field_left_to_the_model_is_priced_at_its_worst_case():
    # no resolution: the dearer 1080p price; no duration: the model's longest video (12 s)
    cfg, request = video("sora-2-pro")
    assert PriceBook().estimate("video", cfg, request).usd == pytest.approx(12 * 0.50)


def test_number_of_videos_multiplies():
    cfg, request = video("sora-2", duration_seconds=4, number_of_videos=2)
    assert PriceBook().estimate("video", cfg, request).usd == pytest.approx(0.80)


def test_images_by_size_quality_and_n():
    cfg = ImageGenerationConfig(provider="openai", model="gpt-image-1")
    request = ImageGenerationRequest(prompt="x", size="1536x1024", quality="high", n=3)
    assert PriceBook().estimate("image", cfg, request).usd == pytest.approx(0.75)


def test_speech_by_characters():
    cfg = AudioGenerationConfig(provider="elevenlabs", model="eleven_multilingual_v2")
    assert PriceBook().estimate("tts", cfg, TTSRequest(text="a" * 2500)).usd == pytest.approx(0.25)


def test_an_unknown_price_is_explicit_never_zero():
    cfg = AudioGenerationConfig(provider="cartesia", model="sonic-2")
    estimate = PriceBook().estimate("tts", cfg, TTSRequest(text="hello"))
    assert estimate.usd is None and estimate.source == "unknown"
    assert NO_PRICE in estimate.detail and "cartesia/sonic-2" in estimate.detail
    custom = ImageGenerationConfig(provider="acme-unregistered", model="m1")
    assert PriceBook().estimate("image", custom, ImageGenerationRequest(prompt="x")).usd is None


def test_a_mocked_config_is_free():
    cfg = VideoGenerationConfig(provider="openai", model="sora-2", mock=MockConfig())
    assert PriceBook().estimate("video", cfg, VideoGenerationRequest(prompt="x")).usd == 0.0


def test_job_file_prices_override_and_extend_the_catalog():
    job = JobConfig.model_validate({
        "modality": "video",
        "configs": [{"provider": "openai", "model": "sora-2"}],
        "prices": {
            "openai/sora-2": [{"unit": "video_second", "usd": 0.07, "note": "negotiated"}],
            "acme/vid*": [{"unit": "request", "usd": 1.5}],
        },
    })
    book = PriceBook.for_job(job)
    cfg, request = video("sora-2", duration_seconds=10)
    assert book.estimate("video", cfg, request).usd == pytest.approx(0.70)
    acme = VideoGenerationConfig(provider="acme", model="vid-2")
    assert book.estimate("video", acme, request).usd == 1.5


def test_a_bad_prices_key_names_the_field_and_value():
    with pytest.raises(ValueError, match=r"prices: key 'sora-2' must be provider/model"):
        JobConfig.model_validate({"configs": [{"provider": "openai", "model": "sora-2"}],
                                  "prices": {"sora-2": [{"unit": "request", "usd": 1}]}})
    with pytest.raises(ValueError, match="usd"):
        Price(unit="image", usd=-1)


def test_provider_reported_costs():
    book = PriceBook({"replicate/acme/model": [Price(unit="prediction_second", usd=0.001)]})
    runway = VideoGenerationConfig(provider="runway", model="gen4.5")
    req = VideoGenerationRequest(prompt="x", duration_seconds=5)
    charged = book.estimate("video", runway, req)
    actual = book.actual("video", runway, req, charged, {"status": "SUCCEEDED", "cost": {"credits": 50}})
    assert (actual.usd, actual.source) == (0.5, "provider-reported")
    # still running: estimatedCost is not a charge
    assert book.actual("video", runway, req, charged, {"estimatedCost": {"credits": 50}}) == charged

    rep = ImageGenerationConfig(provider="replicate", model="acme/model")
    image = ImageGenerationRequest(prompt="x")
    actual = book.actual("image", rep, image, CostEstimate(None, "unknown"), {"metrics": {"predict_time": 12.5}})
    assert (actual.usd, actual.source) == (0.0125, "provider-reported")

    xai = ImageGenerationConfig(provider="xai", model="grok-imagine-image")
    actual = book.actual("image", xai, image, CostEstimate(None, "unknown"), {"usage": {"cost_in_usd_ticks": 200000000}})
    assert actual.usd == pytest.approx(0.02)

    gpt = ImageGenerationConfig(provider="openai", model="gpt-image-1")
    usage = {"usage": {"input_tokens": 12, "input_tokens_details": {"text_tokens": 12, "image_tokens": 0},
                       "output_tokens": 4160}}
    actual = book.actual("image", gpt, image, book.estimate("image", gpt, image), usage)
    assert actual.usd == pytest.approx((12 * 5 + 4160 * 40) / 1e6)


def test_an_answer_shaped_unlike_the_docs_keeps_the_estimate():
    runway = VideoGenerationConfig(provider="runway", model="gen4.5")
    req = VideoGenerationRequest(prompt="x", duration_seconds=5)
    charged = PriceBook().estimate("video", runway, req)
    assert PriceBook().actual("video", runway, req, charged, {"cost": "lots"}) == charged


def test_total_cost():
    assert total_cost([]) == CostEstimate(0.0, "none")
    assert total_cost([(1.0, "provider-reported"), (0.0, "none")]) == CostEstimate(1.0, "provider-reported")
    assert total_cost([(1.0, "provider-reported"), (2.0, "estimated")]).usd == 3.0
    assert total_cost([(1.0, "estimated"), (None, "unknown")]) == CostEstimate(None, "unknown")


# -- the budget ------------------------------------------------------------------------------


def _priced(usd: float) -> tuple[PriceBook, ImageGenerationConfig, ImageGenerationRequest]:
    book = PriceBook({"acme/img": [Price(unit="image", usd=usd)]})
    return book, ImageGenerationConfig(provider="acme", model="img"), ImageGenerationRequest(prompt="x")


def test_the_cap_holds_exactly_under_racing_reservations():
    book, cfg, request = _priced(1.0)
    spend = Spend(book, BudgetSettings(max_usd=37.5))
    accepted, refused = [], []
    start = threading.Barrier(100)

    def submit() -> None:
        start.wait()
        try:
            accepted.append(spend.reserve("image", cfg, request))
        except BudgetExceededError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(accepted) == 37 and len(refused) == 63
    assert spend.committed == pytest.approx(37.0)
    assert "would pass this worker's cap of $37.50" in refused[0].message and refused[0].stops_chain
    spend.release(accepted[0])  # a refused submit gives its reservation back
    spend.reserve("image", cfg, request)
    assert spend.committed == pytest.approx(37.0)


def test_an_unknown_price_is_refused_under_a_cap_unless_the_job_says_how_to_count_it():
    cfg = ImageGenerationConfig(provider="acme", model="unpriced")
    request = ImageGenerationRequest(prompt="x")
    with pytest.raises(BudgetExceededError, match="unknown_price_usd"):
        Spend(PriceBook(), BudgetSettings(max_usd=10)).reserve("image", cfg, request)
    spend = Spend(PriceBook(), BudgetSettings(max_usd=10, unknown_price_usd=4))
    reservation = spend.reserve("image", cfg, request)
    assert reservation.usd == 4 and reservation.estimate.usd is None
    spend.reserve("image", cfg, request)
    with pytest.raises(BudgetExceededError):
        spend.reserve("image", cfg, request)
    # without a cap an unknown price is simply recorded as unknown
    assert Spend().reserve("image", cfg, request).estimate.source == "unknown"


def test_each_worker_takes_its_share_of_what_earlier_runs_left():
    budget = BudgetSettings(max_usd=100, scope="output")
    assert Spend(budget=budget, earlier_usd=20, workers=4).cap == pytest.approx(20.0)
    assert Spend(budget=BudgetSettings(max_usd=100), earlier_usd=20).cap == 100  # scope run ignores earlier runs


def test_spend_pickles_without_its_lock():
    import pickle

    book, cfg, request = _priced(2.0)
    spend = pickle.loads(pickle.dumps(Spend(book, BudgetSettings(max_usd=5))))
    spend.reserve("image", cfg, request)
    assert spend.committed == 2.0


# -- the catalog -----------------------------------------------------------------------------


def _all_prices():
    for name in sorted(BUILTIN_PROVIDERS):
        for model, prices in getattr(get_provider(name), "prices", {}).items():
            for price in prices:
                yield name, model, price


def test_every_catalog_price_names_its_source_and_date():
    entries = list(_all_prices())
    assert len(entries) > 40
    for name, model, price in entries:
        assert price.source.startswith("https://") and price.read_on is not None, (name, model)
        assert price.usd is None or price.usd > 0, f"{name}/{model}: a known price is never zero"


def test_the_readme_table_has_a_price_column():
    assert "price" in COLUMNS
    table = markdown_table()
    assert "| `openai` | `sora-2-pro` |" in table and "$0.3/s of video (720p); $0.5/s of video (1080p)" in table
    assert "no price known" in table
    assert describe_prices([Price(unit="image", usd=None)]) == NO_PRICE
