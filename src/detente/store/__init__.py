"""Storage: SQLAlchemy Core tables over SQLite (default) or PostgreSQL, with Alembic migrations."""
