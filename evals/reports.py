"""Reports of an evaluation run: JSON and JUnit for machines, Markdown with a PNG chart for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def write_junit(path: Path, suite: str, gates: dict[str, dict[str, Any]]) -> Path:
    """One test case per quality gate, failed when the metric misses its bound."""
    root = ET.Element("testsuites")
    failures = sum(not g["passed"] for g in gates.values())
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(gates)), failures=str(failures), errors="0")
    for name, gate in gates.items():
        case = ET.SubElement(node, "testcase", classname=suite, name=name)
        if not gate["passed"]:
            failure = ET.SubElement(case, "failure", message=f"{name} = {gate['value']} misses bound {gate['bound']}")
            failure.text = json.dumps(gate)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_chart(path: Path, title: str, gates: dict[str, dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    names = list(gates)
    values = [float(g["value"] or 0.0) for g in gates.values()]
    bounds = [float(g["bound"]) for g in gates.values()]
    colours = ["#2e7d32" if g["passed"] else "#c62828" for g in gates.values()]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    ax.barh(names, values, color=colours)
    ax.scatter(bounds, names, marker="|", s=400, color="black", label="gate")
    ax.set_xlim(0, 1.05)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.legend(loc="lower right")
    for y, v in enumerate(values):
        ax.text(min(v + 0.01, 0.95), y, f"{v:.3f}", va="center", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_markdown(path: Path, title: str, result: dict[str, Any], chart: Path | None, notes: list[str]) -> Path:
    lines = [f"# {title}", "", f"**{'PASSED' if result['passed'] else 'FAILED'}**", ""]
    if chart is not None:
        lines += [f"![{title}]({chart.name})", ""]
    lines += ["| metric | value | gate | ok |", "| --- | --- | --- | --- |"]
    for name, gate in result["gates"].items():
        value = "n/a" if gate["value"] is None else f"{gate['value']:.4f}"
        bound = f"<= {gate['bound']}" if name.endswith("_max") else f">= {gate['bound']}"
        lines.append(f"| {name.removesuffix('_max')} | {value} | {bound} | {'yes' if gate['passed'] else '**no**'} |")
    extra = {k: v for k, v in result.get("metrics", {}).items() if k not in result["gates"]}
    if extra:
        lines += ["", "Other metrics: " + ", ".join(f"{k} {v}" for k, v in extra.items())]
    if notes:
        lines += ["", *notes]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_suite(report_dir: Path, suite: str, title: str, result: dict[str, Any], notes: list[str]) -> list[Path]:
    chart = write_chart(report_dir / f"{suite}.png", title, result["gates"])
    return [
        write_json(report_dir / f"{suite}.json", result),
        write_junit(report_dir / f"{suite}.junit.xml", f"meshpilot.eval.{suite}", result["gates"]),
        chart,
        write_markdown(report_dir / f"{suite}.md", title, result, chart, notes),
    ]
