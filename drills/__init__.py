"""Fault drills: the real stack under load, one fault at a time, and the count of what was lost.

`./run drill` (all drills, full sizes) or `./run drill --smoke` (the trimmed set for CI);
the figures of the last run of each land in docs/reliability.md.
"""
