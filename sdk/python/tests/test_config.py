"""Reading chaosctl's config file (no stack needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

from chaos_sdk import Chaos, ConfigError, default_config_path, load_context

CONFIG = """\
current-context: prod
contexts:
  - name: prod
    server: https://chaos.example:7443
    token: t-prod
    ca: /etc/ca.pem
  - name: local
    server: http://127.0.0.1:7070
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CHAOSCTL_CONTEXT", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def test_the_current_context_is_the_default(config_file: Path) -> None:
    context = load_context(config_file)
    assert (context.name, context.server, context.token, context.ca) == (
        "prod",
        "https://chaos.example:7443",
        "t-prod",
        "/etc/ca.pem",
    )
    assert "t-prod" not in repr(context)


def test_a_context_by_name(config_file: Path) -> None:
    context = load_context(config_file, "local")
    assert (context.server, context.token, context.ca) == ("http://127.0.0.1:7070", None, None)


def test_chaosctl_context_names_the_context(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSCTL_CONTEXT", "local")
    assert load_context(config_file).name == "local"


def test_the_file_is_chaosctl_config_else_the_home_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSCTL_CONFIG", str(tmp_path / "c.yaml"))
    assert default_config_path() == tmp_path / "c.yaml"
    monkeypatch.delenv("CHAOSCTL_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_config_path() == tmp_path / ".config" / "chaosctl" / "config.yaml"


def test_an_unknown_context_names_the_known_ones(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="no context 'staging' \\(known: prod, local\\)"):
        load_context(config_file, "staging")


def test_no_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no chaosctl config"):
        Chaos.from_config(tmp_path / "absent.yaml")


def test_from_config_targets_the_context(config_file: Path) -> None:
    chaos = Chaos.from_config(config_file, "local")
    assert chaos.server == "http://127.0.0.1:7070"
    assert chaos.api_client.configuration.access_token is None


def test_from_config_reaches_the_stack(stack: Dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    ca = f"    ca: {stack['CHAOS_CA']}\n" if stack["CHAOS_CA"] else ""
    path.write_text(
        "current-context: sdk\ncontexts:\n"
        f"  - name: sdk\n    server: \"{stack['CHAOS_SERVER']}\"\n    token: {stack['CHAOS_TOKEN']}\n{ca}"
    )
    with Chaos.from_config(path) as chaos:
        assert isinstance(chaos.list(), list)
