"""The SQL store: what outlives a workflow and is queried across conversations.

Conversations, escalations and their outcomes, review labels and incidents, in
SQLite (embedded default) or PostgreSQL. The schema is owned by the Alembic
migrations in ``store/migrations``; run them with ``store.database.migrate``.
"""
