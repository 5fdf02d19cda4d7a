"""chaosctl's config file: named contexts (server, token, CA) and the one in use.

The file is YAML, as ``chaosctl config set-context`` writes it::

    current-context: prod
    contexts:
      - name: prod
        server: https://chaos.example:7443
        token: ...
        ca: /etc/chaos/ca.pem

It is ``$CHAOSCTL_CONFIG`` when set, else ``~/.config/chaosctl/config.yaml`` (as for chaosctl).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Union

import yaml

__all__ = ["ConfigError", "Context", "default_config_path", "load_context"]

ENV_CONFIG = "CHAOSCTL_CONFIG"
ENV_CONTEXT = "CHAOSCTL_CONTEXT"

PathLike = Union[str, "os.PathLike[str]"]


class ConfigError(ValueError):
    """The config file is missing, malformed, or has no such context."""


@dataclass(frozen=True)
class Context:
    """One context of the config file: where the apiserver is and how to talk to it."""

    name: str
    server: str
    token: Optional[str] = None
    ca: Optional[str] = None

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        token = "<redacted>" if self.token else None
        return f"Context(name={self.name!r}, server={self.server!r}, token={token}, ca={self.ca!r})"


def default_config_path() -> Path:
    """``$CHAOSCTL_CONFIG``, else ``~/.config/chaosctl/config.yaml``."""
    named = os.environ.get(ENV_CONFIG)
    if named:
        return Path(named)
    return Path.home() / ".config" / "chaosctl" / "config.yaml"


def _read(path: Path) -> dict:
    """The file's one YAML mapping."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigError(f"no chaosctl config at {path}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from error
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping with `contexts`")
    return document


def _context_of(entry: Any, path: Path, index: int) -> Context:
    """The context at ``contexts[index]``."""
    if not isinstance(entry, dict) or not entry.get("name") or not entry.get("server"):
        raise ConfigError(f"{path}: contexts[{index}] needs a `name` and a `server`")
    ca = entry.get("ca")
    return Context(str(entry["name"]), str(entry["server"]), entry.get("token"), str(ca) if ca else None)


def _contexts(document: dict, path: Path) -> List[Context]:
    """Every context of the file, in order."""
    entries = document.get("contexts") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: `contexts` must be a list")
    return [_context_of(entry, path, i) for i, entry in enumerate(entries)]


def load_context(path: Optional[PathLike] = None, context: Optional[str] = None) -> Context:
    """The context to use: ``context`` if given, else ``$CHAOSCTL_CONTEXT``, else the file's
    ``current-context``.

    Raises:
        ConfigError: no file, no context chosen, or no context by that name.
    """
    file = Path(path) if path is not None else default_config_path()
    document = _read(file)
    contexts = _contexts(document, file)
    name = context or os.environ.get(ENV_CONTEXT) or document.get("current-context")
    if not name:
        raise ConfigError(f"{file}: no current-context; name one (context=...)")
    for found in contexts:
        if found.name == name:
            return found
    known = ", ".join(c.name for c in contexts) or "none"
    raise ConfigError(f"{file}: no context {name!r} (known: {known})")
