"""Publishing: the product folder appears at --out whole or not at all (built beside it, then renamed)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from copilot.drafts import Files, write_files
from copilot.errors import UsageError


def check_out_dir(out: Path) -> None:
    """Refuse an --out that is a file, or a non-empty folder that is not a product folder we wrote."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file")
    if out.is_dir() and any(out.iterdir()) and not (out / "datacontract.odcs.yaml").exists():
        raise UsageError(f"--out {out} is a non-empty folder that holds no data product; choose another")


def materialize(folder: Path, manifest: dict[str, Any]) -> None:
    """Run the pipeline once and write its output as Parquet (the contract's `published` server)."""
    with duckdb.connect() as con:
        con.execute(f"SET file_search_path = '{str(folder).replace(chr(39), chr(39) * 2)}'")
        for item in manifest["inputs"]:
            con.execute(f"CREATE VIEW {item['name']} AS SELECT * FROM {item['relation']}")
        for output in manifest["outputs"]:
            model = next(m for m in manifest["models"] if m["name"] == output["model"])
            sql = (folder / "pipeline" / model["sql"]).read_text(encoding="utf-8").strip().rstrip(";")
            target = folder / "data" / Path(output["path"]).name
            target.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY ({sql}) TO '{str(target).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")


def publish(out: Path, files: Files, report_json: str, manifest: dict[str, Any] | None) -> list[str]:
    """Write everything to a temporary folder next to `out`, then swap it in; returns the artifact paths."""
    out = Path(out).resolve()
    check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        write_files(staging, files)
        if manifest is not None and all(i.get("relation") for i in manifest.get("inputs") or []):
            materialize(staging, manifest)
        (staging / "validation.json").write_text(report_json, encoding="utf-8")
        artifacts = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            if old.exists():
                shutil.rmtree(old)
            out.rename(old)
        staging.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return artifacts
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
