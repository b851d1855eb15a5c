"""Fuzz tests: schemathesis on the OpenAPI documents, hypothesis on hostile inputs and tenant crossing."""
