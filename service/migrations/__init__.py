"""Alembic migrations of the job ledger (applied by ``python -m service.db upgrade``)."""
