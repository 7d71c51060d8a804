"""Proposals: the PR bot. For data files, DDL and contracts changed between two git refs, draft or update
contracts, detect breaking changes against the base contract and write the pull-request comment."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from copilot.changes import Change, compare_contracts, major
from copilot.errors import UsageError

DATA_SUFFIXES = {".csv", ".parquet", ".jsonl", ".ndjson"}
DDL_SUFFIXES = {".sql", ".ddl"}


@dataclass
class FileProposal:
    path: str
    status: str
    kind: str
    base_version: str | None = None
    head_version: str | None = None
    changes: list[Change] = field(default_factory=list)
    drafted: str | None = None
    note: str = ""

    @property
    def breaking(self) -> bool:
        return any(c.breaking for c in self.changes)

    @property
    def blocking(self) -> bool:
        """Breaking without a major version bump."""
        return self.breaking and major(self.head_version) <= major(self.base_version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "kind": self.kind,
            "base_version": self.base_version,
            "head_version": self.head_version,
            "breaking": self.breaking,
            "blocking": self.blocking,
            "changes": [c.to_dict() for c in self.changes],
            "note": self.note,
        }


@dataclass
class Proposal:
    base: str
    head: str
    files: list[FileProposal]

    @property
    def blocking(self) -> bool:
        return any(f.blocking for f in self.files)

    @property
    def comment(self) -> str:
        return render_comment(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "breaking": any(f.breaking for f in self.files),
            "blocking": self.blocking,
            "files": [f.to_dict() for f in self.files],
            "comment": self.comment,
        }


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[0] if done.stderr.strip() else f"exit {done.returncode}"
        raise UsageError(f"git {' '.join(args)} failed: {why}")
    return done.stdout


def _show(repo: Path, ref: str, path: str) -> bytes | None:
    done = subprocess.run(["git", "-C", str(repo), "show", f"{ref}:{path}"], capture_output=True, check=False)
    return done.stdout if done.returncode == 0 else None


def _load(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    data = yaml.safe_load(raw.decode("utf-8"))
    return data if isinstance(data, dict) else None


def _base_contract_for(repo: Path, ref: str, data_path: str) -> tuple[str, dict[str, Any]] | None:
    """The contract at `ref` in the data file's folder (datacontract.odcs.yaml or <stem>.odcs.yaml)."""
    folder = PurePosixPath(data_path).parent
    for name in ("datacontract.odcs.yaml", f"{PurePosixPath(data_path).stem}.odcs.yaml"):
        candidate = str(folder / name) if str(folder) != "." else name
        contract = _load(_show(repo, ref, candidate))
        if contract is not None:
            return candidate, contract
    return None


def _draft_for(repo: Path, ref: str, path: str, base: dict[str, Any] | None) -> dict[str, Any]:
    """Draft the contract of a data or DDL file as it is at `ref` (deterministic drafters, default standards)."""
    from copilot.contracts import draft_contract
    from copilot.profiles import profile_source, snake_case
    from copilot.requests import DraftRequest
    from copilot.sources import open_source
    from copilot.standards import Standards

    raw = _show(repo, ref, path)
    if raw is None:
        raise UsageError(f"{path} not found at {ref}")
    with tempfile.TemporaryDirectory(prefix="meshpilot-propose-") as tmp:
        local = Path(tmp) / PurePosixPath(path).name
        local.write_bytes(raw)
        profile = profile_source(open_source(local))
    domain = str((base or {}).get("domain") or "mesh")
    table = str(((base or {}).get("schema") or [{}])[0].get("name") or snake_case(PurePosixPath(path).stem))
    request = DraftRequest(
        path, table, domain, "owner@example.com", version=str((base or {}).get("version") or "1.0.0")
    )
    return draft_contract(request, profile, Standards(), str(PurePosixPath(path)))


def propose_changes(repo: Path, base: str, head: str) -> Proposal:
    repo = Path(repo)
    if not (repo / ".git").exists() and not _git(repo, "rev-parse", "--git-dir").strip():
        raise UsageError(f"{repo} is not a git repository")
    lines = _git(repo, "diff", "--name-status", "--no-renames", base, head).splitlines()
    files = []
    for line in lines:
        status, path = line.split("\t", 1)
        suffix = PurePosixPath(path).suffix.lower()
        if path.endswith((".odcs.yaml", ".odcs.yml")):
            files.append(_contract_change(repo, base, head, status, path))
        elif suffix in DATA_SUFFIXES or suffix in DDL_SUFFIXES:
            if status == "D":
                files.append(FileProposal(path, status, "data", note="data file deleted"))
                continue
            if suffix in DDL_SUFFIXES and b"create table" not in (_show(repo, head, path) or b"").lower():
                continue
            files.append(_data_change(repo, base, head, status, path))
    return Proposal(base, head, files)


def _contract_change(repo: Path, base: str, head: str, status: str, path: str) -> FileProposal:
    old, new = _load(_show(repo, base, path)), _load(_show(repo, head, path))
    proposal = FileProposal(path, status, "contract")
    proposal.base_version = str(old.get("version")) if old else None
    proposal.head_version = str(new.get("version")) if new else None
    if old and new:
        proposal.changes = compare_contracts(old, new)
    elif old and not new:
        proposal.changes = [Change("*", None, "contract_removed", True, "contract deleted")]
    return proposal


def _data_change(repo: Path, base: str, head: str, status: str, path: str) -> FileProposal:
    from copilot.contracts import contract_yaml

    found = _base_contract_for(repo, base, path)
    proposal = FileProposal(path, status, "ddl" if PurePosixPath(path).suffix.lower() in DDL_SUFFIXES else "data")
    drafted = _draft_for(repo, head, path, found[1] if found else None)
    proposal.drafted = contract_yaml(drafted)
    if found is None:
        proposal.note = "no contract yet: a draft is proposed below"
        proposal.head_version = str(drafted["version"])
        return proposal
    contract_path, contract = found
    # The head's contract, if the PR updated it too, states the version the PR ships.
    head_contract = _load(_show(repo, head, contract_path)) or contract
    proposal.base_version = str(contract.get("version"))
    proposal.head_version = str(head_contract.get("version"))
    proposal.changes = compare_contracts(contract, drafted)
    proposal.note = f"compared with {contract_path} at the base"
    return proposal


def render_comment(proposal: Proposal) -> str:
    lines = [f"## meshpilot: data contracts ({proposal.base}...{proposal.head})", ""]
    if not proposal.files:
        lines.append("No data files, DDL or contracts changed.")
        return "\n".join(lines) + "\n"
    if proposal.blocking:
        lines += [
            "**Breaking change without a major version bump.** Bump the major version or make the change compatible.",
            "",
        ]
    lines += ["| File | Kind | Version | Breaking | Changes |", "|---|---|---|---|---|"]
    for f in proposal.files:
        version = f"{f.base_version or '-'} -> {f.head_version or '-'}"
        summary = "; ".join(c.detail for c in f.changes) or f.note or "no schema change"
        flag = "**yes**" if f.blocking else "yes (major bump)" if f.breaking else "no"
        lines.append(f"| `{f.path}` | {f.kind} | {version} | {flag} | {summary.replace('|', '/')} |")
    for f in proposal.files:
        if f.drafted and not f.changes:
            lines += [
                "",
                f"<details><summary>Proposed contract for <code>{f.path}</code></summary>",
                "",
                "```yaml",
                f.drafted.rstrip(),
                "```",
                "</details>",
            ]
    return "\n".join(lines) + "\n"
