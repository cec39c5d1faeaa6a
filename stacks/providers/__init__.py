"""Pulumi dynamic providers (Python, run under the real engine)."""
