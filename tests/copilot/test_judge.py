"""The external judge: datacontract-cli 1.2.8 (its own virtualenv, `make judge`) lints and tests every
drafted contract against its data, including real public datasets that are not part of this repo, and
we compare with its own `import csv` on the same files."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.copilot.helpers import CASES, EXTERNAL, JUDGE, case_data, publish_offline

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not JUDGE.exists(), reason=f"datacontract-cli judge not installed at {JUDGE} (run `make judge`)"
    ),
]
DATA_CASES = [c for c in sorted(CASES) if not c.endswith("_ddl")]
PUBLIC = {
    "muellimperium": EXTERNAL / "contracts-examples/datacontract-specification/examples/muellimperium/data.csv",
    "scifact_queries": EXTERNAL / "beir/scifact/queries.jsonl",
}


def judge(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(JUDGE), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


def judge_results(contract: Path, tmp: Path) -> dict[str, Any]:
    out = tmp / f"{contract.parent.name}-results.json"
    done = judge("test", str(contract), "--output-format", "json", "--output", str(out), cwd=tmp)
    assert out.is_file(), done.stdout[-2000:] + done.stderr[-2000:]
    results: dict[str, Any] = json.loads(out.read_text())
    results["returncode"] = done.returncode
    return results


def executed(results: dict[str, Any]) -> int:
    """Checks the judge really ran (passed or failed), not warnings such as unsupported type checks."""
    return sum(1 for c in results["checks"] if c["result"] in ("passed", "failed"))


def assert_accepted(product: Path, tmp: Path) -> dict[str, Any]:
    contract = product / "datacontract.odcs.yaml"
    lint = judge("lint", str(contract), cwd=tmp)
    assert lint.returncode == 0, lint.stdout[-2000:]
    results = judge_results(contract, tmp)
    bad = [(c["name"], c["reason"]) for c in results["checks"] if c["result"] not in ("passed", "warning")]
    assert results["returncode"] == 0 and not bad, bad
    return results


@pytest.mark.parametrize("case", DATA_CASES)
def test_the_judge_accepts_every_drafted_contract(case: str, tmp_path: Path) -> None:
    _, name, domain = CASES[case]
    product = tmp_path / "product"
    publish_offline(case_data(case, tmp_path), name, domain, product)
    results = assert_accepted(product, tmp_path)
    assert executed(results) >= 20


@pytest.mark.parametrize("dataset", sorted(PUBLIC))
def test_the_judge_accepts_contracts_drafted_from_real_public_data(dataset: str, tmp_path: Path) -> None:
    path = PUBLIC[dataset]
    if not path.exists():
        pytest.skip(f"public dataset absent: {path} (../shared/external is not part of this repo)")
    product = tmp_path / "product"
    publish_offline(path, dataset, "platform", product)
    assert_accepted(product, tmp_path)


def test_side_by_side_with_the_peer_importer(tmp_path: Path) -> None:
    """`datacontract import csv` on the same messy file: numeric columns with NA markers typed as strings,
    marked required, nothing classified, no quality rules; ours gets types, nullability, keys and
    classification right and makes `datacontract test` execute at least 1.5 times as many checks."""
    data = case_data("customers_messy", tmp_path)
    peer_file = tmp_path / "peer.odcs.yaml"
    done = judge("import", "csv", "--source", str(data), "--output", str(peer_file), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    peer = yaml.safe_load(peer_file.read_text())
    peer_props = {p["name"]: p for p in peer["schema"][0]["properties"]}
    product = tmp_path / "product"
    publish_offline(data, "customers", "sales", product)
    ours = yaml.safe_load((product / "datacontract.odcs.yaml").read_text())
    props = {p["name"]: p for p in ours["schema"][0]["properties"]}

    # `Lifetime Value` holds NA / N/A / empty markers: a nullable number, not a required string.
    assert peer_props["Lifetime Value"]["logicalType"] == "string"
    assert props["lifetime_value"]["logicalType"] == "number" and props["lifetime_value"]["required"] is False
    assert props["signup_date"]["logicalType"] == "date" and props["signup_date"]["required"] is False
    assert props["e_mail_address"]["required"] is False and peer_props["E-mail Address"].get("required") is True
    assert props["is_vip"]["logicalType"] == "boolean" and props["customer_id"]["logicalType"] == "integer"
    assert [p["name"] for p in props.values() if p.get("primaryKey")] == ["customer_id"]
    assert not any(p.get("primaryKey") for p in peer_props.values())
    assert all(p.get("classification") for p in props.values())
    assert not any(p.get("classification") for p in peer_props.values())
    assert {props[c]["classification"] for c in ("full_name", "e_mail_address", "phone_number")} == {"confidential"}
    assert not any(p.get("quality") for p in peer_props.values())

    ours_run, peer_run = assert_accepted(product, tmp_path), judge_results(peer_file, tmp_path)
    ours_n, peer_n = executed(ours_run), executed(peer_run)
    print(f"checks executed by `datacontract test`: ours {ours_n}, peer {peer_n} ({ours_n / peer_n:.2f}x)")
    print("ours:", Counter(c["type"] for c in ours_run["checks"] if c["result"] == "passed"))
    assert ours_n >= 1.5 * peer_n
