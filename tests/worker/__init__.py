"""Worker tests: the interpreter against a real Temporal, NATS and stub services."""
