from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tests.conftest import run_cli


def test_create_list_revoke(cli_env: Path, db: Any) -> None:
    code, out, err = run_cli("keys", "create", "--name", "cli-alice", "--groups", "sales,sre", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert {"key", "name", "groups"} <= set(created)
    assert created["key"].startswith("mp_") and created["groups"] == ["sales", "sre"]

    with db.engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash, prefix FROM api_keys WHERE name = 'cli-alice'")).one()
        everything = conn.execute(text("SELECT string_agg(t::text, ' ') FROM api_keys t")).scalar_one()
    assert stored.key_hash == hashlib.sha256(created["key"].encode()).hexdigest()
    assert created["key"] not in everything  # only the hash and a short prefix are stored

    code, out, _ = run_cli("keys", "list", "--json")
    listed = {k["name"]: k for k in json.loads(out)["keys"]}
    assert listed["cli-alice"]["groups"] == ["sales", "sre"] and listed["cli-alice"]["revoked_at"] is None
    assert created["key"] not in out

    code, _, err = run_cli("keys", "create", "--name", "cli-alice")
    assert code == 2 and "exists" in err

    assert run_cli("keys", "revoke", "cli-alice")[0] == 0
    code, out, _ = run_cli("keys", "list", "--json")
    assert next(k for k in json.loads(out)["keys"] if k["name"] == "cli-alice")["revoked_at"]
    code, _, err = run_cli("keys", "revoke", "cli-alice")
    assert code == 1 and "no active key" in err


def test_admin_flag_and_plain_output(cli_env: Path) -> None:
    code, out, err = run_cli("keys", "create", "--name", "cli-admin", "--admin")
    assert code == 0 and out.strip().startswith("mp_") and "not shown again" in err
    code, out, _ = run_cli("keys", "create", "--name", "bad name")
    assert code == 2


def test_help(cli_env: Path) -> None:
    for args in (["keys"], ["keys", "create"], ["keys", "list"], ["keys", "revoke"], ["serve"], ["bench", "serve"]):
        code, out, _ = run_cli(*args, "--help")
        assert code == 0 and "Usage" in out
