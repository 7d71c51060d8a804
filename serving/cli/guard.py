"""`meshpilot guard ...`: scan texts with the injection detector, (re)train its classifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rag.embeddings import get_embedder
from rag.errors import UsageError
from serving.cli.common import print_json, settings_from, stderr, stdout

app = typer.Typer(help="Input and document guards.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
DEFAULT_EXTERNAL = Path("../shared/external")


def _read_jsonl(path: Path) -> list[str]:
    if not path.is_file():
        raise UsageError(f"file not found: {path}")
    texts = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise UsageError(f'{path}:{number}: each line must be an object with a string "text"')
        texts.append(row["text"])
    return texts


@app.command()
def scan(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help='JSON lines, each {"text": ...}.')],
    document: Annotated[
        bool, typer.Option("--documents", help="The texts are documents (scored sentence by sentence), not questions.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Flag prompt injection, jailbreaks and system-prompt extraction, one result per line, in order.

    Example: meshpilot guard scan messages.jsonl --json
    """
    from rag.guards.injection import InjectionDetector

    texts = _read_jsonl(file)
    detector = InjectionDetector.default()
    if document:
        embed = get_embedder(settings_from(ctx)).embed if texts and detector.model else None
        verdicts = detector.check_documents(texts, embed) if embed else [detector.check_document(t) for t in texts]
    else:
        vectors = get_embedder(settings_from(ctx)).embed(texts) if texts and detector.model else None
        verdicts = detector.check_many(texts, vectors)
    results: list[dict[str, Any]] = []
    for verdict in verdicts:
        result = {"flagged": verdict.flagged, "categories": verdict.categories, "score": verdict.score}
        results.append(result | ({"segment": verdict.segment} if document and verdict.flagged else {}))
    report: dict[str, Any] = {"results": results, "flagged": sum(r["flagged"] for r in results), "total": len(results)}
    if json_out:
        print_json(report)
        return
    for i, r in enumerate(results, start=1):
        flag = "FLAG" if r["flagged"] else "ok  "
        stdout.print(f"{i:4} {flag} {r['score']:.3f} {','.join(str(c) for c in r['categories'])}")
    stdout.print(f"{report['flagged']} of {report['total']} flagged")


@app.command()
def train(
    ctx: typer.Context,
    external: Annotated[
        Path, typer.Option(help="The shared external data folder (holds injection/).")
    ] = DEFAULT_EXTERNAL,
    artifacts: Annotated[
        Path | None, typer.Option(help="Write the artifact here instead of rag/guards/artifacts/ (not pinned).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Train the injection classifier on labelled public data, write the versioned artifact and print
    its held-out precision, recall and false-positive rate: overall, direct, indirect, benign questions.

    Example: meshpilot guard train --external ../shared/external --json
    """
    from evals.injection_training import train as train_model
    from rag.guards.injection import save_model

    settings = settings_from(ctx)
    cache = settings.home.expanduser() / "cache" / "injection-embeddings-v2.npz"
    stderr.print(f"training the injection classifier (embeddings cached in {cache})")
    model, report = train_model(get_embedder(settings), external, cache=cache)
    files = save_model(model, directory=artifacts)
    if artifacts is None:
        _pin(files)
    if json_out:
        print_json(report)
        return
    rows = [
        ("held-out", "held_out"),
        ("  direct", "held_out_direct"),
        ("  indirect", "held_out_indirect"),
        ("attacks planted in our documents", "held_out_our_documents"),
    ]
    for name, key in rows:
        r = report[key]
        stdout.print(
            f"{name:<12} precision {r['precision']:.3f}  recall {r['recall']:.3f}  "
            f"false-positive rate {r['false_positive_rate']:.3f}  ({r['positives']} attacks of {r['n']})"
        )
    benign = report["benign_data_engineering"]
    stdout.print(f"benign data-engineering questions flagged: {benign['flagged']} of {benign['n']}")
    stdout.print(f"artifact: {files[0]}")


def _pin(files: list[Path]) -> None:
    """Pin the new artifact's digests: the loader refuses files it does not find pinned (rag/guards/integrity.py)."""
    from rag.guards import integrity

    integrity.pin(files)
