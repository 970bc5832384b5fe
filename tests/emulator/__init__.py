"""Provider emulator for testing mediagen's provider clients without network access.

Public API::

    from tests.emulator import ProviderEmulator, EmuRequest, EmuResponse, Fault

See ``tests/emulator/README.md`` for how to write a provider routes module.
"""

from .core import ProviderEmulator
from .faults import Fault
from .hosting import HostedMedia
from .jobs import Job, JobState, JobStore
from .messages import EmuRequest, EmuResponse, RecordedFile, RecordedRequest, UploadedFile

__all__ = [
    "EmuRequest",
    "EmuResponse",
    "Fault",
    "HostedMedia",
    "Job",
    "JobState",
    "JobStore",
    "ProviderEmulator",
    "RecordedFile",
    "RecordedRequest",
    "UploadedFile",
]
