"""The red-team suite: attacks for every OWASP 2025 LLM category, run on the real service and copilot."""
