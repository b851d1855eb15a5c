"""drift-runtime tests: env, change cache, web, messaging, logging, supervision."""
