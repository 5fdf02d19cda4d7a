"""The Python SDK of the chaos orchestrator.

:class:`Chaos` is the client; the models it returns are the generated ones of
:mod:`chaos_client` (``ScenarioView``, ``Report``, ``EventEntry``, ...); every refusal is a
:class:`ChaosError` subclass::

    from chaos_sdk import Chaos, InvalidScenario

    chaos = Chaos.from_config()             # chaosctl's current context
    chaos.apply_file("scenario.yaml")
    chaos.wait_for_phase("demo", "Running")
"""

from ._version import __version__
from .client import FINAL_PHASES, Chaos, ScenarioEnded, WaitTimeout, phase_of
from .config import ConfigError, Context, default_config_path, load_context
from .errors import (
    BadRequest,
    ChaosError,
    Conflict,
    ConnectionFailed,
    FieldError,
    Forbidden,
    InvalidScenario,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unauthorized,
    translate_errors,
)

__all__ = [
    "__version__",
    "Chaos",
    "FINAL_PHASES",
    "WaitTimeout",
    "ScenarioEnded",
    "phase_of",
    "ConfigError",
    "Context",
    "default_config_path",
    "load_context",
    "ChaosError",
    "FieldError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "Conflict",
    "PayloadTooLarge",
    "InvalidScenario",
    "RateLimited",
    "ServerError",
    "ConnectionFailed",
    "translate_errors",
]
