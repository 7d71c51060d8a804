"""docker-compose.yml is accepted by `docker-compose config` and agrees with serving/vllm/ and the settings."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SECRETS = {"POSTGRES_PASSWORD": "pw-test", "VLLM_API_KEY": "vllm-test", "MESHPILOT_GITHUB_WEBHOOK_SECRET": "gh-test"}
needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (Debian: apt-get install docker-compose; make test does)",
)


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        ["docker-compose", "--project-directory", str(ROOT), "-f", str(COMPOSE), "config"],
        env={**clean, **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@needs_compose
def test_compose_config_accepts_the_file() -> None:
    done = compose_config(SECRETS)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) == {"postgres", "vllm", "api"}
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert services["vllm"]["image"].startswith("vllm/vllm-openai:")
    gpu = services["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"] and gpu["driver"] == "nvidia"
    assert all("healthcheck" in s for s in services.values())
    assert {d: c["condition"] for d, c in services["api"]["depends_on"].items()} == {
        "postgres": "service_healthy",
        "vllm": "service_healthy",
    }
    assert services["api"]["build"]["context"] == str(ROOT)
    assert (
        services["api"]["environment"]["MESHPILOT_DATABASE_URL"]
        == "postgresql://meshpilot:pw-test@postgres:5432/meshpilot"
    )
    assert "pgdata" in config["volumes"]


@needs_compose
@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_a_required_secret(missing: str) -> None:
    done = compose_config({k: v for k, v in SECRETS.items() if k != missing})
    assert done.returncode != 0
    assert f"set {missing}" in done.stderr


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_vllm_configs_match_what_the_api_is_told() -> None:
    from rag.settings import DEFAULT_EMBEDDING_MODEL, Settings

    compose = load(COMPOSE)
    chat, embed = load(ROOT / "serving/vllm/chat.yaml"), load(ROOT / "serving/vllm/embed.yaml")
    env = compose["services"]["api"]["environment"]
    assert env["MESHPILOT_LLM_MODEL"] == chat["served-model-name"]
    assert env["MESHPILOT_LLM_BASE_URL"] == f"http://vllm:{chat['port']}/v1"
    assert compose["services"]["vllm"]["command"] == ["--config", "/etc/meshpilot/vllm/chat.yaml"]
    assert 0 < chat["gpu-memory-utilization"] + embed["gpu-memory-utilization"] <= 0.95
    assert chat["max-model-len"] >= 4096 and embed["runner"] == "pooling"
    # Served under the bundled model's id, so products indexed on CPU stay valid.
    assert embed["served-model-name"] == DEFAULT_EMBEDDING_MODEL
    # Every MESHPILOT_* variable compose sets is a real setting (a typo would be silently ignored).
    fields = {f"MESHPILOT_{name.upper()}" for name in Settings.model_fields}
    assert {k for k in env if k.startswith("MESHPILOT_")} <= fields
