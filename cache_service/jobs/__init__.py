"""Background jobs of the cache (warmup loads), with progress, errors and cancellation."""

from cache_service.jobs.model import FileError, Job, JobProgress, JobState
from cache_service.jobs.registry import JobRegistry

__all__ = ["FileError", "Job", "JobProgress", "JobRegistry", "JobState"]
