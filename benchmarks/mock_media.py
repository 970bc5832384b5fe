"""How long the offline mock takes to make real media.

Run from the repository root:  python benchmarks/mock_media.py [--repeat N]

Prints best-of-N and mean wall time, and the output size, for a 720p 16:9 4 s
H.264 video, a 1024x1024 PNG and 10 s of MP3 speech. The target for the video
is under 0.5 s on a 2-core machine. The first call of each maker is a warm-up
(font loading, codec initialisation) and is not counted.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

from providers.media.formats import resolution_for# noqa: E402
from providers.media.synthesis import make_audio, make_image, make_video# noqa: E402

PROMPT = "A lighthouse on a rocky cliff during a thunderstorm, waves crashing, dramatic cinematic lighting"
VIDEO_TARGET_SECONDS = 0.5


def measure(make: Callable[[], bytes], repeat: int) -> tuple[float, float, int]:
    """Best and mean seconds over ``repeat`` timed runs after one warm-up, and the output size."""
    size = len(make())
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        make()
        times.append(time.perf_counter() - start)
    return min(times), statistics.fmean(times), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (default 5)")
    args = parser.parse_args()

    width, height = resolution_for("720p", "16:9")
    cases: list[tuple[str, Callable[[], bytes]]] = [
        (f"video 720p 16:9 4 s ({width}x{height}, h264)", lambda: make_video(PROMPT, width, height, 4.0)),
        ("image 1024x1024 png", lambda: make_image(PROMPT, 1024, 1024, image_format="png")),
        ("audio 10 s mp3 128 kbps", lambda: make_audio(PROMPT, audio_format="mp3", duration_seconds=10.0).data),
    ]
    print(f"{'case':<40} {'best s':>8} {'mean s':>8} {'bytes':>10}")
    video_best = None
    for name, make in cases:
        best, mean, size = measure(make, args.repeat)
        video_best = best if video_best is None else video_best
        print(f"{name:<40} {best:>8.3f} {mean:>8.3f} {size:>10,}")
    verdict = "meets" if video_best < VIDEO_TARGET_SECONDS else "MISSES"
    print(f"video best {video_best:.3f} s {verdict} the {VIDEO_TARGET_SECONDS} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
