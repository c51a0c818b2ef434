"""Background jobs: one interface, two engines (inline database queue, arq + Redis)."""

from hub.queue.base import Retry, enqueue

__all__ = ["Retry", "enqueue"]
