"""The provider guide's example (providers/README.md): a whole video provider in one file.

"Acme" is made up: ``POST /v1/videos`` answers ``{"id"}``; ``GET /v1/videos/{id}``
answers ``{"status": queued|running|done|failed, "progress", "video_url", "error"}``.
Not in the registry: tests/providers/test_example_provider.py registers and runs it.
"""

from __future__ import annotations

from typing import Any

from providers.core.contract import GeneratedMedia, JobState, JobStatus, ProviderContext, ProviderOutput
from providers.core.base import JobProvider
from providers.core.capabilities import ModelCapabilities
from providers.errors import GenerationFailedError
from providers.core.field_mapping import Field, FieldMapping, seconds_suffix
from providers.core.http import json_object, media_url_or_data_url, send
from schemas import JobHandle, VideoGenerationRequest

FIELDS = FieldMapping.of(
    Field("prompt", "prompt"), Field("length", "duration_seconds", seconds_suffix), Field("seed", "seed"),
)
STATES: dict[str, JobState] = {"queued": "queued", "running": "processing", "done": "completed", "failed": "failed"}


class AcmeProvider(JobProvider):
    name = "acme"
    default_base_url = "https://api.acme.example"
    api_key_env = "ACME_API_KEY"
    modalities = frozenset({"video"})
    models = {"acme-video-*": ModelCapabilities(modalities=frozenset({"video"}), durations=(5, 10),
                                               image_roles=("first_frame",), max_input_images=1)}

    def submit_video(self, ctx: ProviderContext, request: VideoGenerationRequest) -> JobHandle:
        body = {"model": ctx.model, **FIELDS.payload(request), **request.extra_params}
        if request.image_list:
            body["image"] = media_url_or_data_url(ctx, request.image_list[0]["image"])
        answer = json_object(ctx, send(ctx, "POST", "/v1/videos", headers=self._auth(ctx), json_body=body))
        return JobHandle(provider=self.name, model=ctx.model, modality="video", job_id=str(answer["id"]))

    def poll(self, ctx: ProviderContext, job: JobHandle) -> JobStatus:
        video = self._get(ctx, job)
        state = STATES.get(str(video.get("status")), "processing")
        failure = GenerationFailedError(str(video.get("error"))) if state == "failed" else None
        return JobStatus(state, video.get("progress"), video, failure)

    def fetch(self, ctx: ProviderContext, job: JobHandle) -> ProviderOutput:
        video = self._get(ctx, job)
        return ProviderOutput([GeneratedMedia(url=video["video_url"], content_type="video/mp4")], video, job.job_id)

    def _get(self, ctx: ProviderContext, job: JobHandle) -> dict[str, Any]:
        return json_object(ctx, send(ctx, "GET", f"/v1/videos/{job.job_id}", headers=self._auth(ctx)))

    def _auth(self, ctx: ProviderContext) -> dict[str, str]:
        return {"Authorization": f"Bearer {ctx.require_api_key()}"}
