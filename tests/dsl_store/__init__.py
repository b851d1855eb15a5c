"""dsl-store tests: the service over HTTP, its cache, its stores (conformance/)."""
