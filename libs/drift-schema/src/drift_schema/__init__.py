"""Drift's shared shapes: everything that crosses a process boundary."""
