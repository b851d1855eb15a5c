"""Gateway tests: the /v3 API, its limits, edges and run states."""
