"""Background jobs: one interface, two engines (inline database queue, arq + Redis)."""

from hub.queue.base import JobQueue, Retry, enqueue

__all__ = ["JobQueue", "Retry", "enqueue"]
