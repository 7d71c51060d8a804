"""The copilot's graph state: a narrow input, and the full state the nodes fill in.

Everything in the state is plain data (dicts, lists, strings) so the Postgres checkpointer can store
it and a thread can resume in another process.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, NotRequired, TypedDict

from copilot.standards import Standards
from rag.chat_models import ChatModel

MAX_REVISIONS = 3
"""How many times failures go back to the drafting step before the loop gives up with a report."""


class InputState(TypedDict):
    """What a caller gives: the data, the product's name, domain and owner, and where to publish."""

    data: str
    name: str
    domain: str
    owner: str
    out: str
    auto_approve: bool
    origin: NotRequired[dict[str, Any]]
    """The PostgreSQL table `data` is a snapshot of, when drafted with --source/--table."""


class State(InputState, total=False):
    source: dict[str, Any]
    """The checked source (path, format, columns) as `Source` fields."""
    profile: dict[str, Any]
    """The column profile, `Profile.to_dict()`."""
    standards: dict[str, Any]
    """SLO values and citations retrieved from the knowledge product mesh-standards."""
    enrichment: dict[str, Any]
    """What the model contributed (descriptions, purpose, business rules), once checked for shape."""
    model_checks: list[dict[str, Any]]
    """Checks on the model's last reply (YAML, unknown columns, SQL guard); empty without a model."""
    files: dict[str, str]
    """The current draft: artifact path -> text."""
    report: dict[str, Any]
    """The last `ValidationReport.to_dict()`."""
    revisions: int
    """How many times the draft went back for revision."""
    feedback: Annotated[list[str], operator.add]
    """Every failure fed back to the drafting step, across revisions (appended, never replaced)."""
    approved: bool
    """A human (or --approve) accepted the valid draft; nothing is written before."""
    artifacts: list[str]
    """Paths written under `out` by the publish node."""
    status: str
    """published | rejected | invalid | awaiting_approval."""
    message: str
    """One line for the user about how the run ended."""


@dataclass
class Context:
    """What nodes need but the state must not hold: live connections and models (not checkpointed)."""

    standards: Any = None
    """Callable returning `Standards` (the RAG service); None = the documented defaults, uncited."""
    chat_model: ChatModel | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    def get_standards(self) -> Standards:
        return self.standards() if self.standards is not None else Standards()
