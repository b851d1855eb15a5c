"""Drift dsl-store: versioned node and workflow definitions, validated, resolved and drawn, per tenant."""
