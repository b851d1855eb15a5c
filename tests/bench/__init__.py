"""Tests of the benchmarks and drills harnesses (report, figures), not the measurements."""
