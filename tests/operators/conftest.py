"""``slow_sim`` for these tests (see tests/operators/pixxel_sim.py); ``sim`` is in tests/conftest.py."""

from tests.operators.pixxel_sim import slow_sim

__all__ = ["slow_sim"]
