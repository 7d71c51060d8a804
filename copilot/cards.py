"""Cards: the product card (README.md) -- purpose, owner, address, schema, classification, SLOs,
quality rules, lineage, and the standards followed with citations to the knowledge products."""

from __future__ import annotations

from typing import Any

from copilot.contracts import product_classification
from copilot.profiles import Profile
from copilot.requests import DraftRequest
from copilot.standards import Standards

CARD_FILE = "README.md"
TOPIC_TITLES = {
    "naming": "Naming",
    "classification": "Classification of personal data",
    "freshness": "Freshness SLO",
    "availability": "Availability SLO",
    "retention": "Retention",
    "support": "Support channel",
    "quality": "Minimum quality rules",
    "contract": "Contract standard",
}


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _rule_text(rule: dict[str, Any]) -> str:
    if rule.get("type") == "sql":
        return str(rule.get("description") or "SQL check")
    metric = rule.get("metric", "")
    bounds = {k: v for k, v in rule.items() if k.startswith("must")}
    bound = ", ".join(f"{k} {v}" for k, v in bounds.items())
    unit = f" {rule['unit']}" if rule.get("unit") else ""
    args = rule.get("arguments") or {}
    extra = f" ({', '.join(map(str, args.get('validValues', [])))})" if "validValues" in args else ""
    return f"{metric} {bound}{unit}{extra}".strip()


def draft_card(request: DraftRequest, profile: Profile, contract: dict[str, Any], standards: Standards) -> str:
    table = contract["schema"][0]
    lines = [
        f"# {request.product_id}",
        "",
        f"**Address:** `{request.address}`  ",
        f"**Owner:** {request.owner} (team `{contract['team']['name']}`)  ",
        f"**Domain:** {request.domain}  ",
        f"**Version:** {request.version} ({contract['status']})  ",
        f"**Classification:** {product_classification(profile)}  ",
        f"**Support:** {contract['support'][0]['channel']}",
        "",
        "## Purpose",
        "",
        contract["description"]["purpose"],
        "",
        f"Usage: {contract['description']['usage']} Limitations: {contract['description']['limitations']}",
        "",
        "## Schema",
        "",
        "| Column | Type | Required | Unique | Key | Classification | Description |",
        "|---|---|---|---|---|---|---|",
    ]
    for prop in table["properties"]:
        lines.append(
            f"| `{prop['name']}` | {prop['logicalType']} | {'yes' if prop['required'] else 'no'} | "
            f"{'yes' if prop['unique'] else 'no'} | {'yes' if prop['primaryKey'] else ''} | "
            f"{prop['classification']} | {_cell(prop['description'])} |"
        )
    lines += ["", "## Service levels", "", "| Property | Value |", "|---|---|"]
    for sla in contract["slaProperties"]:
        lines.append(f"| {sla['property']} | {sla['value']} {sla.get('unit', '')} |")
    lines += ["", "## Quality rules", ""]
    for rule in table.get("quality") or []:
        lines.append(f"- `{table['name']}`: {_rule_text(rule)}")
    for prop in table["properties"]:
        for rule in prop.get("quality") or []:
            lines.append(f"- `{prop['name']}`: {_rule_text(rule)}")
    lines += [
        "",
        "## Lineage",
        "",
        f"`{profile.format}` source `{profile.source}` -> `pipeline/v_{request.table}.sql` -> "
        f"`{request.table}` (Parquet). OpenLineage event: `pipeline/lineage.json`.",
        "",
        "## Standards followed",
        "",
    ]
    if not standards.citations:
        lines.append("No standards could be retrieved; the mesh defaults were applied without citation.")
    for n, cite in enumerate(standards.citations, 1):
        quote = cite.quote if len(cite.quote) <= 240 else cite.quote[:237] + "..."
        title = TOPIC_TITLES.get(cite.topic, cite.topic)
        lines.append(f'{n}. **{title}**: "{_cell(quote)}" [{cite.product}: {cite.source}]')
    lines += ["", "Drafted by the meshpilot copilot; `validation.json` holds the validation report.", ""]
    return "\n".join(lines)
