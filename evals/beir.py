"""BEIR-format datasets: `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from rag.errors import UsageError


@dataclass(frozen=True)
class BeirDataset:
    name: str
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]]  # split -> query id -> doc id -> relevance
    corpus_sha256: str

    def split_queries(self, split: str, limit: int | None = None) -> list[tuple[str, str]]:
        """(query id, text) of the queries judged in `split`, in file order."""
        if split not in self.qrels:
            raise UsageError(f"{self.name} has no qrels/{split}.tsv")
        judged = self.qrels[split]
        out = [(qid, text) for qid, text in self.queries.items() if qid in judged]
        return out[:limit] if limit else out


def load_beir(directory: Path) -> BeirDataset:
    corpus_file, queries_file = directory / "corpus.jsonl", directory / "queries.jsonl"
    if not corpus_file.is_file() or not queries_file.is_file():
        raise UsageError(f"{directory} is not a BEIR dataset: corpus.jsonl and queries.jsonl are required")
    raw = corpus_file.read_bytes()
    corpus: dict[str, tuple[str, str]] = {}
    try:
        for line in raw.decode("utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                corpus[str(row["_id"])] = (str(row.get("title") or ""), str(row.get("text") or ""))
        queries = {
            str(row["_id"]): str(row["text"])
            for row in (json.loads(x) for x in queries_file.read_text(encoding="utf-8").splitlines() if x.strip())
        }
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError) as exc:
        raise UsageError(f"{directory}: malformed BEIR file ({exc})") from exc
    qrels: dict[str, dict[str, dict[str, int]]] = {}
    for path in sorted((directory / "qrels").glob("*.tsv")):
        split: dict[str, dict[str, int]] = {}
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle, delimiter="\t"):
                if len(row) < 3 or row[0] == "query-id":
                    continue
                split.setdefault(row[0].strip(), {})[row[1].strip()] = int(row[2])
        qrels[path.stem] = split
    if not qrels:
        raise UsageError(f"{directory}/qrels holds no .tsv file")
    return BeirDataset(directory.name, corpus, queries, qrels, hashlib.sha256(raw).hexdigest())
