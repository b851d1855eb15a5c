"""Tests of drift-client: the typed clients of the gateway and the dsl-store."""
