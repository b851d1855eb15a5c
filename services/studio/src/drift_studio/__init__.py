"""Drift Studio: the built front end, a same-origin proxy to the APIs, and live run events."""
