"""Copilot: a LangGraph agent that drafts validated data products (not built yet)."""
