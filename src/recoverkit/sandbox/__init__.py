"""The Recover sandbox: clocks, retry policies and the payment simulator.

Heavy dependencies (numpy, scikit-learn, matplotlib; the ``sandbox`` extra) are imported by the
submodules that need them, not here.
"""

from __future__ import annotations

from recoverkit.sandbox.clock import Clock, SimulatedClock, SystemClock

__all__ = ["Clock", "SimulatedClock", "SystemClock"]
