"""Versioned reference data (CSV) behind :mod:`recoverkit.declines`; every row cites its source."""
