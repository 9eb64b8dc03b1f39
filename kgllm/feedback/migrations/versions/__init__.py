"""The feedback store's revisions, one module each (Alembic skips this file)."""
