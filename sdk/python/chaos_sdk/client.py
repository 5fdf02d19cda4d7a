"""The :class:`Chaos` client: scenarios, their journal and reports, availability.

It wraps the generated client (:mod:`chaos_client`) and returns its pydantic models; every
failure is raised as a :mod:`chaos_sdk.errors` type. One call goes around the generated
methods: applying a scenario sends the YAML text itself, so that a refusal names the line of
the field at fault (the generated ``apply_scenario`` takes a ``Scenario`` model, checks it
client-side and sends it as JSON on one line).
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any, Dict, Iterator, List, Mapping, Optional, Type, TypeVar, Union

import yaml

from chaos_client import (
    ActionResponse,
    ApiClient,
    ApplyResponse,
    AvailabilityApi,
    AvailabilityRange,
    Configuration,
    EventEntry,
    EventList,
    ProbeGroups,
    Report,
    Scenario,
    ScenarioPhase,
    ScenariosApi,
    ScenarioView,
    StopBody,
)

from ._version import __version__
from .config import PathLike, load_context
from .errors import translate_errors

__all__ = ["Chaos", "WaitTimeout", "ScenarioEnded", "FINAL_PHASES"]

#: A scenario to apply: YAML (or JSON) text, a mapping, or the generated ``Scenario`` model.
ScenarioInput = Union[str, bytes, Mapping[str, Any], Scenario]
#: A phase, by name (``"Running"``) or as the generated enum.
Phase = Union[str, ScenarioPhase]

#: Phases a scenario never leaves.
FINAL_PHASES = frozenset({"Stopped", "Failed"})

_Api = TypeVar("_Api")


class WaitTimeout(TimeoutError):
    """The scenario did not reach the phase in time; ``last_phase`` is the one seen last."""

    def __init__(self, name: str, phase: str, last_phase: Optional[str], waited: float) -> None:
        self.name = name
        self.phase = phase
        self.last_phase = last_phase
        self.waited = waited
        super().__init__(self._describe())

    def _describe(self) -> str:
        return (
            f"scenario {self.name!r} did not reach {self.phase} in {self.waited:.0f}s "
            f"(last seen: {self.last_phase or 'no status yet'})"
        )


class ScenarioEnded(WaitTimeout):
    """The scenario reached a final phase other than the one waited for: waiting cannot help."""

    def _describe(self) -> str:
        return f"scenario {self.name!r} ended {self.last_phase} while waiting for {self.phase}"


def _phase_name(phase: Phase) -> str:
    """``"Running"`` for ``"Running"`` or ``ScenarioPhase.RUNNING``."""
    return phase.value if isinstance(phase, ScenarioPhase) else str(phase)


def phase_of(view: ScenarioView) -> Optional[str]:
    """The scenario's phase, or ``None`` before the controller wrote a status."""
    if view.status is None or view.status.phase is None:
        return None
    return _phase_name(view.status.phase)


def scenario_yaml(scenario: ScenarioInput) -> bytes:
    """The bytes sent for ``scenario``: text as given, a mapping or model as YAML."""
    if isinstance(scenario, bytes):
        return scenario
    if isinstance(scenario, str):
        return scenario.encode("utf-8")
    if isinstance(scenario, Scenario):
        scenario = scenario.to_dict()
    if isinstance(scenario, Mapping):
        return yaml.safe_dump(dict(scenario), sort_keys=False).encode("utf-8")
    raise TypeError(f"a scenario is YAML text, a mapping or a Scenario, not {type(scenario).__name__}")


def _time_param(value: Union[str, int, float, datetime]) -> str:
    """A range bound as the API takes it: unix seconds or RFC 3339."""
    if isinstance(value, datetime):
        return value.astimezone().isoformat()  # a naive datetime is local time
    return str(int(value)) if isinstance(value, (int, float)) else value


def _range_params(params: Mapping[str, Any]) -> Dict[str, Any]:
    """``availability()``'s keywords as the generated method names them."""
    out: Dict[str, Any] = {}
    for key, value in params.items():
        key = {"from": "var_from", "from_": "var_from", "start": "var_from", "end": "to"}.get(key, key)
        if key == "mute_downtime_types" and not isinstance(value, str):
            value = ",".join(value)
        out[key] = _time_param(value) if key in ("var_from", "to") else value
    return out


class Chaos:
    """A client of one chaos-apiserver.

    Args:
        server: the apiserver's URL (``https://chaos.example:7443``).
        token: an API token (``chaosctl token create``); sent as a bearer token.
        ca: a PEM file of the CA that signed the server's certificate (HTTPS).
        timeout: seconds each HTTP request may take.
    """

    def __init__(
        self,
        server: str,
        token: Optional[str] = None,
        ca: Optional[PathLike] = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        ca_file = os.fspath(ca) if ca else None
        config = Configuration(host=server.rstrip("/"), access_token=token or None, ssl_ca_cert=ca_file)
        self.server = config.host
        self.timeout = float(timeout)
        self.api_client = ApiClient(config)
        self.api_client.user_agent = f"chaos-sdk/{__version__}/python"
        self._scenarios = ScenariosApi(self.api_client)
        self._availability = AvailabilityApi(self.api_client)

    @classmethod
    def from_config(cls, path: Optional[PathLike] = None, context: Optional[str] = None) -> "Chaos":
        """A client for a context of chaosctl's config file (see :mod:`chaos_sdk.config`).

        ``path`` defaults to ``$CHAOSCTL_CONFIG``, else ``~/.config/chaosctl/config.yaml``;
        ``context`` to ``$CHAOSCTL_CONTEXT``, else the file's ``current-context``.
        """
        found = load_context(path, context)
        return cls(found.server, found.token, found.ca)

    def __repr__(self) -> str:
        return f"Chaos({self.server!r})"

    def __enter__(self) -> "Chaos":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the pooled connections."""
        self.api_client.rest_client.pool_manager.clear()

    def api(self, api_class: Type[_Api]) -> _Api:
        """Any generated API class on this client's connection: ``chaos.api(ClusterApi)``.

        Its methods raise the generated ``ApiException``; wrap calls in
        :func:`chaos_sdk.translate_errors` for the typed errors.
        """
        return api_class(self.api_client)  # type: ignore[call-arg]

    # -- scenarios ---------------------------------------------------------------------------

    def apply(self, scenario: ScenarioInput, dry_run: bool = False) -> ApplyResponse:
        """Creates the scenario, or updates it when its spec changed.

        ``scenario`` is YAML (or JSON) text, sent as is, so that a refusal
        (:class:`~chaos_sdk.InvalidScenario`) names the line in it; or a mapping (or
        ``Scenario`` model), sent as YAML, the lines then being those of
        ``yaml.safe_dump(scenario, sort_keys=False)``. ``result`` of the answer is
        ``created``, ``configured`` or ``unchanged``. With ``dry_run``, nothing is stored:
        ``result`` is ``dry-run`` and ``targets`` says which pods each fault step would pick now.
        """
        body = scenario_yaml(scenario)
        path = "/v1/scenarios?dryRun=true" if dry_run else "/v1/scenarios"
        return self._request("POST", path, "ApplyResponse", body=body, content_type="application/yaml")

    def apply_file(self, path: PathLike) -> ApplyResponse:
        """Applies the scenario in a YAML file; errors name lines of that file."""
        with open(path, "rb") as file:
            return self.apply(file.read())

    def get(self, name: str) -> ScenarioView:
        """The scenario with its status."""
        with translate_errors():
            return self._scenarios.get_scenario(name, _request_timeout=self.timeout)

    def list(self) -> List[ScenarioView]:
        """Every scenario with its status."""
        with translate_errors():
            return self._scenarios.list_scenarios(_request_timeout=self.timeout).items

    def stop(self, name: str, reason: Optional[str] = None) -> ActionResponse:
        """Asks the controller to stop the scenario (``result``: ``stopping`` or ``already-stopping``)."""
        body = StopBody(reason=reason) if reason is not None else None
        with translate_errors():
            return self._scenarios.stop_scenario(name, body, _request_timeout=self.timeout)

    def delete(self, name: str) -> ActionResponse:
        """Deletes the scenario; one still running is stopped first and removed once stopped."""
        with translate_errors():
            return self._scenarios.delete_scenario(name, _request_timeout=self.timeout)

    def phase(self, name: str) -> Optional[str]:
        """The scenario's phase (``Pending``, ``Running``, ...), ``None`` before it has one."""
        return phase_of(self.get(name))

    def wait_for_phase(self, name: str, phase: Phase, timeout: float = 120.0, poll: float = 1.0) -> ScenarioView:
        """Polls the scenario until it is in ``phase``, and returns it.

        Raises:
            WaitTimeout: not there after ``timeout`` seconds (it names the last phase seen).
            ScenarioEnded: it reached another final phase (Stopped, Failed) first.
        """
        wanted = _phase_name(phase)
        deadline = time.monotonic() + timeout
        while True:
            view = self.get(name)
            seen = phase_of(view)
            if seen == wanted:
                return view
            if seen in FINAL_PHASES:
                raise ScenarioEnded(name, wanted, seen, timeout)
            if time.monotonic() + poll > deadline:
                raise WaitTimeout(name, wanted, seen, timeout)
            time.sleep(poll)

    # -- journal and report --------------------------------------------------------------------

    def events_page(self, name: str, after: int = 0, limit: int = 1000) -> EventList:
        """One page of the journal: up to ``limit`` entries with ``seq`` greater than ``after``,
        oldest first; ask for the next page after its ``last``."""
        with translate_errors():
            return self._scenarios.list_events(name, after=after, limit=limit, _request_timeout=self.timeout)

    def events(
        self,
        name: str,
        after: Optional[int] = None,
        *,
        follow: bool = True,
        poll: float = 1.0,
        page: int = 1000,
    ) -> Iterator[EventEntry]:
        """The scenario's journal entries, oldest first, as they come.

        Starts after the sequence number ``after`` (from the beginning by default: pass an
        entry's ``seq`` to resume). With ``follow`` it polls every ``poll`` seconds for new
        entries and ends once the scenario has stopped and its journal is read to the end;
        without, it ends at the journal's current end.
        """
        if page < 1:
            raise ValueError("page must be at least 1")
        cursor = after or 0
        ended = False
        while True:
            listing = self.events_page(name, cursor, page)
            yield from listing.items
            cursor = listing.last
            if len(listing.items) >= page:
                continue
            if not follow or ended:
                return
            # Once it has ended, one more pass reads what was written before the end.
            ended = self.phase(name) in FINAL_PHASES
            if not ended:
                time.sleep(poll)

    def report(self, name: str) -> Report:
        """The scenario's report: volumes, checks and verdicts, actions, faults, restarts,
        and the availability of its probes over its run."""
        with translate_errors():
            return self._scenarios.get_report(name, _request_timeout=self.timeout)

    # -- availability -----------------------------------------------------------------------

    def availability(self, **params: Any) -> AvailabilityRange:
        """Availability over a time range, per probe and step (``GET /v1/availability/range``).

        Keywords: ``from_`` (or ``start``) and ``to`` (or ``end``): unix seconds, RFC 3339 text
        or a ``datetime``; ``step`` (seconds); ``group``, ``probe``, ``scenario``;
        ``mute_downtime_types`` (a comma-separated string or a list).
        """
        with translate_errors():
            return self._availability.get_availability_range(**_range_params(params), _request_timeout=self.timeout)

    def probes(self, group: Optional[str] = None, scenario: Optional[str] = None) -> ProbeGroups:
        """Every probe measured now, by group, with its live state."""
        with translate_errors():
            return self._availability.list_probes(group=group, scenario=scenario, _request_timeout=self.timeout)

    # -- plumbing -----------------------------------------------------------------------------

    def _request(self, method: str, path: str, response_type: str, *, body: bytes, content_type: str) -> Any:
        """One request through the generated client's machinery (auth, TLS, deserialisation),
        for a body its generated methods cannot send."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        client = self.api_client
        request = client.param_serialize(
            method=method, resource_path=path, header_params=headers, body=body, auth_settings=["token"]
        )
        with translate_errors():
            response = client.call_api(*request, _request_timeout=self.timeout)
            response.read()
            return client.response_deserialize(response, {"2XX": response_type}).data
