"""Typed errors of the chaos SDK, and the one place the generated client's failures become them.

Every error response of the apiserver has the same JSON body: ``{code, message, field?, line?,
errors?}``. A rejected scenario (``422``) names the field at fault as a path
(``spec.volumes.max``) and the line of the submitted YAML or JSON it is on; when there are
several problems, ``errors`` lists each one. :func:`raise_for` turns that body into a
:class:`ChaosError` subclass chosen by the HTTP status.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Type

import urllib3

from chaos_client.exceptions import ApiException

__all__ = [
    "FieldError",
    "ChaosError",
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


@dataclass(frozen=True)
class FieldError:
    """One problem of a rejected document: the field's path, its line, and what is wrong.

    ``path`` is empty when the problem is the document as a whole (invalid YAML, say); ``line``
    is 1-based and ``None`` when the server could not tell.
    """

    path: str
    line: Optional[int]
    message: str

    def __str__(self) -> str:
        where = self.path or "<document>"
        if self.line is not None:
            where = f"{where} (line {self.line})"
        return f"{where}: {self.message}"


class ChaosError(Exception):
    """A request the apiserver refused or could not answer.

    Attributes:
        status: the HTTP status (0 when no response came back).
        code: the server's stable machine-readable reason (``Invalid``, ``NotFound``, ...).
        message: what is wrong, for people.
        errors: the fields at fault, when the server named any.
        body: the raw response body, for what the attributes above leave out.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: Sequence[FieldError] = (),
        body: Optional[str] = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.errors: List[FieldError] = list(errors)
        self.body = body
        super().__init__(self._describe())

    def _describe(self) -> str:
        head = f"{self.status} {self.code}: {self.message}" if self.status else self.message
        if len(self.errors) > 1 or (self.errors and self.errors[0].message != self.message):
            return head + "".join(f"\n  {e}" for e in self.errors)
        if self.errors:
            return f"{self.status} {self.code}: {self.errors[0]}"
        return head


class BadRequest(ChaosError):
    """400: a malformed parameter or body (the message names it)."""


class Unauthorized(ChaosError):
    """401: no token, or one that is malformed, unknown, revoked or expired."""


class Forbidden(ChaosError):
    """403: the token's role lacks the permission, or every scenario is stopped (stop --all)."""


class NotFound(ChaosError):
    """404: no such scenario (or plugin, token, downtime...)."""


class Conflict(ChaosError):
    """409: the object kept changing under the request; trying again usually works."""


class PayloadTooLarge(ChaosError):
    """413: the body is over the server's limit (1 MiB for a scenario)."""


class InvalidScenario(ChaosError):
    """422: the scenario (or another document) was refused; ``errors`` names each field and line."""

    @property
    def field(self) -> Optional[str]:
        """The path of the first field at fault (``spec.volumes.max``), if any."""
        return self.errors[0].path if self.errors and self.errors[0].path else None

    @property
    def line(self) -> Optional[int]:
        """The line of the first problem in the submitted text, if known."""
        return self.errors[0].line if self.errors else None


class RateLimited(ChaosError):
    """429: the token's request rate is used up; retry after ``retry_after`` seconds."""

    def __init__(self, *args: Any, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class ServerError(ChaosError):
    """5xx: the apiserver failed (``Internal``) or its store is away (``Unavailable``)."""


class ConnectionFailed(ChaosError):
    """No HTTP answer at all: the server is unreachable, or its certificate was refused."""


_BY_STATUS: Dict[int, Type[ChaosError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidScenario,
    429: RateLimited,
}


def _body_of(text: Optional[str]) -> Dict[str, Any]:
    """The JSON error body, or an empty dict when the body is not one."""
    try:
        value = json.loads(text or "")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def field_errors(body: Mapping[str, Any]) -> List[FieldError]:
    """The problems an error body names: its ``errors`` list, else its ``field``/``line``."""
    listed = body.get("errors") or []
    if listed:
        return [FieldError(e.get("path", ""), e.get("line"), e.get("message", "")) for e in listed]
    if body.get("field") is None and body.get("line") is None:
        return []
    return [FieldError(body.get("field") or "", body.get("line"), body.get("message", ""))]


def _retry_after(headers: Optional[Mapping[str, str]]) -> Optional[float]:
    """The Retry-After header in seconds (the apiserver sends whole seconds)."""
    value = (headers or {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def from_api_exception(error: ApiException) -> ChaosError:
    """The typed error for a failure of the generated client."""
    status = int(error.status or 0)
    body = _body_of(error.body)
    code = str(body.get("code") or ("Transport" if status == 0 else f"HTTP{status}"))
    message = str(body.get("message") or error.reason or error.body or "request failed")
    args = (status, code, message, field_errors(body), error.body)
    if status == 0:
        return ConnectionFailed(*args)
    if status == 429:
        return RateLimited(*args, retry_after=_retry_after(error.headers))
    if status >= 500:
        return ServerError(*args)
    return _BY_STATUS.get(status, ChaosError)(*args)


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Runs a call of the generated client, raising its failures as :class:`ChaosError`."""
    try:
        yield
    except ApiException as error:
        raise from_api_exception(error) from error
    except urllib3.exceptions.HTTPError as error:
        raise ConnectionFailed(0, "Transport", f"no answer from the apiserver: {error}") from error
