"""Profiles on messy data: null markers, mixed types, patterns, keys, personal data (DuckDB, streaming)."""

from __future__ import annotations

from pathlib import Path

from copilot.profiles import profile_source
from copilot.sources import open_source
from tests.copilot.helpers import case_data


def test_null_markers_types_patterns_and_personal_data() -> None:
    profile = profile_source(open_source(case_data("customers_messy")))
    cols = {c.name: c for c in profile.columns}
    assert profile.rows == 8 and profile.primary_key == ["customer_id"]
    assert cols["lifetime_value"].logical_type == "number" and cols["lifetime_value"].nulls == 3  # NA, '', N/A
    assert cols["signup_date"].logical_type == "date" and cols["signup_date"].nulls == 2  # NULL, ''
    assert cols["score"].logical_type == "string" and cols["score"].mixed  # 7, N/A, abc, 9 ...
    assert cols["e_mail_address"].patterns == ["email"] and cols["e_mail_address"].classification == "confidential"
    assert cols["phone_number"].patterns == ["phone"] and cols["phone_number"].personal
    assert cols["full_name"].personal and not cols["country"].personal
    assert cols["is_vip"].logical_type == "boolean" and cols["loyalty_tier"].values == ["bronze", "gold", "silver"]


def test_timestamps_currencies_semicolons_and_jsonl() -> None:
    shipments = {c.name: c for c in profile_source(open_source(case_data("shipments"))).columns}
    assert shipments["scanned_at"].logical_type == "timestamp"
    assert "currency" in shipments["currency"].patterns and shipments["is_hazmat"].logical_type == "boolean"
    events = profile_source(open_source(case_data("events")))
    assert events.primary_key == ["event_id"] and "uuid" in events.column("event_id").patterns


def test_composite_key_and_leading_zeros(tmp_path: Path) -> None:
    data = tmp_path / "stock.csv"
    data.write_text("depot,sku,zip,quantity\nA,1,01234,5\nA,2,01234,6\nB,1,04567,5\nB,2,04567,7\n")
    profile = profile_source(open_source(data))
    assert profile.primary_key == ["depot", "sku"]
    assert profile.column("zip").logical_type == "string"  # leading zeros are identifiers


def test_ddl_source_declares_types_keys_and_nullability() -> None:
    profile = profile_source(open_source(case_data("invoices_ddl")))
    cols = {c.name: c for c in profile.columns}
    assert profile.primary_key == ["invoice_id"] and cols["invoice_id"].required
    assert cols["issued_date"].logical_type == "date" and cols["invoice_amount"].logical_type == "number"
    assert cols["customer_email"].classification == "confidential" and not cols["notes"].required
