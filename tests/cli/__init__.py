"""Tests of the drift CLI: embedded servers, platform, bundles, drift dev."""
