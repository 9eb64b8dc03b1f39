"""Alembic migrations of the feedback store (``env.py`` and ``versions/``), run by
:class:`kgllm.feedback.store.FeedbackStore` when it opens; a regular package so the wheel carries them."""
