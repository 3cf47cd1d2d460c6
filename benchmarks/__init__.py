"""Benchmarks run against the service over HTTP (``make bench``, ``make bench-scale``)."""
