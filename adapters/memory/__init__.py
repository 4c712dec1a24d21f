"""The in-memory adapter: a complete, thread-safe implementation of every port."""

from adapters.memory.bulk import MemoryBulkLoader
from adapters.memory.store import MemoryStore, MemoryUnitOfWork

__all__ = ["MemoryBulkLoader", "MemoryStore", "MemoryUnitOfWork"]
