"""The one SQL schema (SQLAlchemy Core) shared by queue, ledger, artifacts and auth; two engines."""
