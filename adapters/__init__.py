"""Adapters: implementations of the `expense_core` ports (in memory, and SQL databases)."""
