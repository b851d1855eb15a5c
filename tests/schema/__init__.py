"""drift-schema tests: the contract lib (codec, nodes, graph, ids, expressions)."""
