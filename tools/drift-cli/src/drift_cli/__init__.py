"""Drift command line: `drift dev` and friends."""
