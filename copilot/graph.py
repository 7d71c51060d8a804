"""The copilot agent: profile -> retrieve standards -> draft -> validate -> (revise)* -> approve -> publish."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from copilot import nodes
from copilot.state import Context, InputState, State

builder = StateGraph(State, context_schema=Context, input_schema=InputState)
builder.add_node("profile", nodes.profile)
builder.add_node("retrieve_standards", nodes.retrieve_standards)
builder.add_node("draft", nodes.draft)
builder.add_node("validate", nodes.validate)
builder.add_node("revise", nodes.revise)
builder.add_node("give_up", nodes.give_up)
builder.add_node("approve", nodes.approve)
builder.add_node("publish", nodes.publish_node)
builder.add_edge(START, "profile")
builder.add_edge("profile", "retrieve_standards")
builder.add_edge("retrieve_standards", "draft")
builder.add_edge("draft", "validate")
builder.add_conditional_edges("validate", nodes.after_validate)
builder.add_edge("revise", "validate")
builder.add_edge("give_up", END)
builder.add_conditional_edges("approve", nodes.after_approve)
builder.add_edge("publish", END)

GRAPH_NAME = "meshpilot-copilot"
graph = builder.compile(name=GRAPH_NAME)
