"""The SQL ledger: tables, engine set-up, bulk writes and the queries reviewers run."""

from governance.store.engine import init_store, make_engine, session_factory

__all__ = ["init_store", "make_engine", "session_factory"]
