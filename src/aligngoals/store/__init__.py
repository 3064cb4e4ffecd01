"""The SQLite run store: every model request and item result, saved as it completes."""

from aligngoals.store.run_store import RunStore, request_key

__all__ = ["RunStore", "request_key"]
