"""Serving: the CLI entry point, the HTTP service (api/), the web chat page (web/), vLLM's launch config (vllm/)."""
