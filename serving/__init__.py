"""Serving: the CLI entry point (and, later, the HTTP service)."""
