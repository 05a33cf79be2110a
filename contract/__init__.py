"""The contract: pydantic models, error types, workflow ids and search-attribute keys every layer exchanges.

No logic and no I/O; it imports nothing of Baton's.
"""
