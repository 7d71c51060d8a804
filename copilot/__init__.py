"""Copilot: a LangGraph agent that drafts validated data products (contract, pipeline, tests, card).

Read `graph.py` for the flow, `validation.py` for the mandatory checks, `docs/copilot.md` for usage.
"""
