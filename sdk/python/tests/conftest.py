"""Fixtures of the SDK's tests: a client of a live stack, named by the environment.

    CHAOS_SERVER  the apiserver's URL (https://127.0.0.1:PORT)
    CHAOS_TOKEN   a token that may operate scenarios (chaosctl up's admin token)
    CHAOS_CA      the CA of the server's certificate (needed for https://)

scripts/sdk.sh starts a stack and sets them. The package is imported from this checkout (this
directory's parent goes first on sys.path), so nothing needs installing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, Iterator

import pytest

SDK_DIR = Path(__file__).resolve().parents[1]
REPO = SDK_DIR.parents[1]
sys.path.insert(0, str(SDK_DIR))
# No __pycache__ in the checkout: one in chaos_client would fail scripts/sdk-generate.sh --check.
sys.dont_write_bytecode = True

from chaos_sdk import Chaos  # noqa: E402  (needs the path above)

EXAMPLES = REPO / "examples"


def _stack_env() -> Dict[str, str]:
    """CHAOS_SERVER, CHAOS_TOKEN and CHAOS_CA; a clear failure (not a skip) when missing."""
    env = {key: os.environ.get(key, "") for key in ("CHAOS_SERVER", "CHAOS_TOKEN", "CHAOS_CA")}
    missing = [key for key in ("CHAOS_SERVER", "CHAOS_TOKEN") if not env[key]]
    if env["CHAOS_SERVER"].startswith("https://") and not env["CHAOS_CA"]:
        missing.append("CHAOS_CA")
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not set: these tests need a running stack "
            "(scripts/sdk.sh starts one; or `chaosctl up` and export CHAOS_SERVER, CHAOS_TOKEN "
            "and CHAOS_CA from its state directory's chaosctl.yaml)",
            pytrace=False,
        )
    return env


@pytest.fixture(scope="session")
def stack() -> Dict[str, str]:
    """The stack's coordinates, from the environment."""
    return _stack_env()


@pytest.fixture(scope="session")
def chaos(stack: Dict[str, str]) -> Iterator[Chaos]:
    """A client of the stack, with its token."""
    with Chaos(stack["CHAOS_SERVER"], stack["CHAOS_TOKEN"], stack["CHAOS_CA"] or None, timeout=15) as client:
        yield client
