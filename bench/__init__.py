"""Benchmark scripts that print figures; run them, they are not tests."""
