"""The contract tests use the same env-var connection and hook as the hook tests."""

from ..hooks.conftest import hook, retry_policy, set_connection, sleeps

__all__ = ["hook", "retry_policy", "set_connection", "sleeps"]
