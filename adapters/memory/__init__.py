"""The in-memory adapter: a complete, thread-safe implementation of every port."""

from adapters.memory.store import MemoryStore, MemoryUnitOfWork

__all__ = ["MemoryStore", "MemoryUnitOfWork"]
