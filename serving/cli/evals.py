"""`meshpilot eval ...`: evaluation suites (more arrive with the evals issue)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from evals.calibration import calibrate, features, load_golden
from rag.embeddings import get_embedder
from rag.errors import UsageError
from rag.retrieval import HybridRetriever, Mode
from rag.samples import ingest_samples, product_dirs
from serving.cli.common import database, print_json, progress_bar, settings_from, stdout

app = typer.Typer(help="Evaluation suites.", no_args_is_help=True)


@app.command("calibrate")
def calibrate_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Sweep the extractive answerer's refusal thresholds over the golden questions.

    Example: meshpilot eval calibrate --json
    """
    settings = settings_from(ctx)
    db = database(ctx)
    try:
        embedder = get_embedder(settings)
        products = [r.product for r in ingest_samples(db, settings, embedder)]
        result = calibrate(features(HybridRetriever.for_questions(db, embedder, settings), load_golden(), products))
    finally:
        db.close()
    if json_out:
        print_json(result)
        return
    stdout.print(
        f"{result['questions']} questions: best accuracy {result['best_accuracy']} at {result['suggested']}; "
        f"current thresholds {result['current']} give {result['current_accuracy']}"
    )


@app.command("retrieval")
def retrieval_cmd(
    ctx: typer.Context,
    beir: Annotated[Path, typer.Option("--beir", help="A BEIR dataset folder (corpus.jsonl, queries.jsonl, qrels/).")],
    modes: Annotated[str, typer.Option(help="Comma-separated: dense, fulltext, hybrid.")] = "dense,fulltext,hybrid",
    limit_queries: Annotated[int | None, typer.Option(min=1, help="Only the first N queries of the split.")] = None,
    split: Annotated[str, typer.Option(help="The qrels split to score.")] = "test",
    tune: Annotated[bool, typer.Option("--tune", help="Choose the dense weight on qrels/train.tsv first.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """nDCG@10, recall@10/100 and MRR@10 of each retrieval mode on a BEIR dataset, with the production retriever.

    The corpus index is cached in the database, keyed by corpus hash and embedding model.

    Example: meshpilot eval retrieval --beir ../shared/external/beir/scifact --json
    """
    from evals.beir import load_beir
    from evals.retrieval_benchmark import run

    try:
        chosen = [Mode(m.strip()) for m in modes.split(",") if m.strip()]
    except ValueError as exc:
        raise UsageError(f"--modes takes dense, fulltext and hybrid: {exc}") from None
    if not beir.is_dir():
        raise UsageError(f"folder not found: {beir}")
    dataset = load_beir(beir)
    settings = settings_from(ctx)
    db = database(ctx)
    try:
        with progress_bar(f"evaluating {dataset.name}", enabled=not json_out) as update:
            result = run(
                db,
                settings,
                get_embedder(settings),
                dataset,
                modes=chosen,
                split=split,
                limit_queries=limit_queries,
                tune=tune,
                progress=update,
            )
    finally:
        db.close()
    if json_out:
        print_json(result)
        return
    for mode, metrics in result["modes"].items():
        stdout.print(f"{mode:9} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    stdout.print(f"{result['queries']} queries, index {result['index_seconds']} s (cached: {result['index_cached']})")


JudgeOpt = Annotated[
    str | None,
    typer.Option("--judge", help="OpenAI-compatible judge URL (vLLM); default MESHPILOT_JUDGE_BASE_URL."),
]
ReportDirOpt = Annotated[Path, typer.Option("--report-dir", help="Where JSON, JUnit, Markdown and PNG go.")]


def _judge(settings: Any, url: str | None, model: str | None) -> Any:
    from evals.rag_suite import Judge

    base = url or settings.judge_base_url
    if not base:
        return None
    key = settings.judge_api_key.get_secret_value() if settings.judge_api_key else None
    return Judge(base_url=base, model=model or settings.judge_model, api_key=key)


@app.command("rag")
def rag_cmd(
    ctx: typer.Context,
    judge: JudgeOpt = None,
    judge_model: Annotated[str | None, typer.Option(help="Model name on the judge server.")] = None,
    report_dir: ReportDirOpt = Path("reports"),
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Answer and retrieval quality on the golden questions (Ragas); exit 1 below a threshold.

    Offline metrics always; with a judge model also faithfulness, answer relevancy and LLM context precision.

    Example: meshpilot eval rag --json --report-dir reports
    """
    from evals.rag_suite import run_rag_suite
    from evals.reports import write_suite
    from rag.chat_models import chat_model_from_settings

    settings = settings_from(ctx)
    db = database(ctx)
    try:
        result = run_rag_suite(
            db,
            settings,
            get_embedder(settings),
            chat_model=chat_model_from_settings(settings),
            judge=_judge(settings, judge, judge_model),
        )
    finally:
        db.close()
    paths = write_suite(report_dir, "rag", "meshpilot eval rag", result, ["## Misses", "", *result["misses"]])
    if json_out:
        print_json(result)
    else:
        for name, gate in result["gates"].items():
            mark = "ok " if gate["passed"] else "LOW"
            stdout.print(f"{mark} {name:24} {gate['value']}  (gate {gate['bound']})")
        stdout.print(f"reports: {', '.join(str(p) for p in paths)}")
    if not result["passed"]:
        raise typer.Exit(1)


@app.command("redteam")
def redteam_cmd(
    ctx: typer.Context,
    judge: JudgeOpt = None,
    judge_model: Annotated[str | None, typer.Option(help="Model name on the judge server.")] = None,
    only: Annotated[
        str | None, typer.Option(help="Comma-separated categories or attack ids, e.g. LLM01,LLM07.")
    ] = None,
    report_dir: ReportDirOpt = Path("reports"),
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Attack the RAG service and the copilot on every OWASP 2025 LLM category; exit 1 on any success.

    Runs on the embedded stack (and the configured LLM when MESHPILOT_LLM_BASE_URL is set). With a judge
    model, Ragas' judged harmfulness and maliciousness are reported beside the automatic criteria.

    Example: meshpilot eval redteam --json --report-dir reports
    """
    from evals.redteam.suite import run_redteam, write_reports

    settings = settings_from(ctx)
    db = database(ctx)
    chosen = [x.strip() for x in only.split(",") if x.strip()] if only else None
    try:
        with progress_bar("red-team attacks") as update:
            result = run_redteam(
                db,
                settings,
                get_embedder(settings),
                judge=_judge(settings, judge, judge_model),
                only=chosen,
                progress=update,
            )
    finally:
        db.close()
    paths = write_reports(report_dir, result)
    if json_out:
        print_json(result)
    else:
        for cid, cat in result["categories"].items():
            mark = "ok  " if cat["successes"] == 0 else "FAIL"
            stdout.print(f"{mark} {cid} {cat['name']:36} {cat['successes']}/{cat['attacks']} attacks succeeded")
        stdout.print(
            f"attack success rate {result['attack_success_rate']}; reports: {', '.join(str(p) for p in paths)}"
        )
    if not result["passed"]:
        raise typer.Exit(1)


@app.command("all")
def all_cmd(
    ctx: typer.Context,
    report_dir: ReportDirOpt = Path("reports"),
    beir: Annotated[Path | None, typer.Option("--beir", help="Also run the BEIR retrieval benchmark.")] = None,
    limit_queries: Annotated[int | None, typer.Option(min=1, help="BEIR: only the first N test queries.")] = None,
    copilot_datasets: Annotated[
        Path, typer.Option(help="The copilot suite's <case>/data.* datasets (skipped when the folder is absent).")
    ] = Path("tests/fixtures/drafts"),
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Every offline suite, one combined report (JSON + Markdown) under --report-dir; exit 1 if any fails.

    Example: meshpilot eval all --report-dir reports --beir ../shared/external/beir/scifact
    """
    from evals.beir import load_beir
    from evals.rag_suite import run_rag_suite
    from evals.reports import write_json, write_suite
    from evals.retrieval_benchmark import run as run_retrieval

    settings = settings_from(ctx)
    db = database(ctx)
    suites: dict[str, Any] = {}
    try:
        embedder = get_embedder(settings)
        rag = run_rag_suite(db, settings, embedder)
        write_suite(report_dir, "rag", "meshpilot eval rag", rag, ["## Misses", "", *rag["misses"]])
        suites["rag"] = {"passed": rag["passed"], "metrics": rag["metrics"]}
        suites["calibration"] = {
            k: v
            for k, v in calibrate(
                features(
                    HybridRetriever.for_questions(db, embedder, settings),
                    load_golden(),
                    [p.name for p in product_dirs()],
                )
            ).items()
            if k != "cases"
        }
        from evals.redteam.suite import run_redteam, write_reports

        redteam = run_redteam(db, settings, embedder)
        write_reports(report_dir, redteam)
        suites["redteam"] = {k: v for k, v in redteam.items() if k != "categories"} | {
            "categories": {
                c: {"attacks": v["attacks"], "successes": v["successes"]} for c, v in redteam["categories"].items()
            }
        }
        if copilot_datasets.is_dir():
            from evals.copilot_suite import run_copilot_suite
            from rag.chat_models import chat_model_from_settings

            copilot = run_copilot_suite(copilot_datasets, chat_model_from_settings(settings))
            _write_copilot_reports(report_dir, copilot)
            suites["copilot"] = {k: v for k, v in copilot.items() if k != "cases"}
        if beir is not None:
            retrieval = run_retrieval(db, settings, embedder, load_beir(beir), limit_queries=limit_queries)
            write_json(report_dir / "retrieval.json", retrieval)
            suites["retrieval"] = retrieval
    finally:
        db.close()
    combined = {"suites": suites, "passed": all(s.get("passed", True) for s in suites.values())}
    write_json(report_dir / "all.json", combined)
    lines = ["# meshpilot eval all", "", f"**{'PASSED' if combined['passed'] else 'FAILED'}**", ""]
    lines += [f"- rag: {'passed' if rag['passed'] else 'FAILED'} — see [rag.md](rag.md)"]
    red = suites["redteam"]
    lines += [f"- redteam: {red['successes']} of {red['attacks']} attacks succeeded — see [redteam.md](redteam.md)"]
    cal = suites["calibration"]
    lines += [f"- calibration: accuracy {cal['current_accuracy']} at {cal['current']} (best {cal['best_accuracy']})"]
    if "copilot" in suites:
        cop = suites["copilot"]
        lines += [f"- copilot: {cop['datasets']} drafts, validity {cop['validity_rate']}; see [copilot.md](copilot.md)"]
    else:
        lines += [f"- copilot: skipped (no datasets at {copilot_datasets})"]
    if "retrieval" in suites:
        for mode, m in suites["retrieval"]["modes"].items():
            lines.append(f"- retrieval {mode}: nDCG@10 {m['ndcg@10']}, recall@100 {m['recall@100']}")
    (report_dir / "all.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if json_out:
        print_json(combined)
    else:
        stdout.print("\n".join(lines[2:]))
    if not combined["passed"]:
        raise typer.Exit(1)


@app.command("prompts")
def prompts_cmd(
    ctx: typer.Context,
    judge: JudgeOpt = None,
    judge_model: Annotated[str | None, typer.Option(help="Model name on the judge server.")] = None,
    update_lock: Annotated[
        bool, typer.Option("--update-lock", help="Record the current template versions in prompts/versions.lock.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Run every versioned prompt's eval cases against an OpenAI-compatible model; exit 1 on a failed case.

    Example: meshpilot eval prompts --judge http://localhost:8001/v1 --judge-model qwen2.5-7b-instruct
    """
    import prompts as prompt_templates

    if update_lock:
        problems = [p for p in prompt_templates.lock_problems() if "bump" in p]
        if problems:
            raise UsageError("; ".join(problems))
        path = Path(str(prompt_templates.lock_path()))
        path.write_text(json.dumps(prompt_templates.lock_entries(), indent=2) + "\n", encoding="utf-8")
        stdout.print(f"wrote {path}")
        return
    from evals.prompt_suite import run_prompt_suite
    from rag.chat_models import OpenAIChatModel

    settings = settings_from(ctx)
    chosen = _judge(settings, judge, judge_model)
    if chosen is None:
        raise UsageError("eval prompts needs a model: pass --judge URL or set MESHPILOT_JUDGE_BASE_URL")
    model = OpenAIChatModel(chosen.base_url, chosen.model, chosen.api_key, timeout_s=settings.llm_timeout_s)
    result = run_prompt_suite(model)
    if json_out:
        print_json(result)
    else:
        for pid, entry in result["prompts"].items():
            for case in entry["cases"]:
                mark = "ok  " if case["passed"] else "FAIL"
                stdout.print(f"{mark} {pid}@{entry['version']} {case['name']}: {case['reason']}", markup=False)
        for problem in result["lock_problems"]:
            stdout.print(f"lock: {problem}", markup=False)
    if not result["passed"]:
        raise typer.Exit(1)


def _write_copilot_reports(report_dir: Path, result: dict[str, Any]) -> None:
    from evals.reports import write_suite

    notes = ["## Drafts", ""]
    notes += [
        f"- {c['dataset']}/{c['file']}: {'valid' if c['valid'] else '**invalid**'}, {c['checks']} checks,"
        f" {c['revisions']} revisions"
        for c in result["cases"]
    ]
    write_suite(report_dir, "copilot", "meshpilot eval copilot", result, notes)


@app.command("copilot")
def copilot_cmd(
    ctx: typer.Context,
    datasets: Annotated[Path, typer.Option(help="A folder of <case>/data.{csv,parquet,jsonl,sql} datasets.")] = Path(
        "tests/fixtures/drafts"
    ),
    report_dir: ReportDirOpt = Path("reports"),
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Draft every dataset with the copilot: validity rate, failed checks by kind, revisions; exit 1 if any is invalid.

    Example: meshpilot eval copilot --datasets tests/fixtures/drafts --json
    """
    from evals.copilot_suite import run_copilot_suite
    from rag.chat_models import chat_model_from_settings

    if not datasets.is_dir():
        raise UsageError(f"folder not found: {datasets}")
    result = run_copilot_suite(datasets, chat_model_from_settings(settings_from(ctx)))
    if not result["datasets"]:
        raise UsageError(f"no <case>/data.* datasets under {datasets}")
    _write_copilot_reports(report_dir, result)
    if json_out:
        print_json(result)
    else:
        for case in result["cases"]:
            state = "valid  " if case["valid"] else "INVALID"
            stdout.print(
                f"{state} {case['dataset']}/{case['file']}: {case['checks']} checks, {case['revisions']} revisions"
            )
        stdout.print(f"validity {result['validity_rate']}, failed checks by kind {result['failed_checks_by_kind']}")
    if not result["passed"]:
        raise typer.Exit(1)
