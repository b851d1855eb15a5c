"""Plumbing shared by Drift's services: messaging, telemetry, logging, auth, problem details."""
