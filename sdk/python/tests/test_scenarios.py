"""A scenario's life through the SDK, against a live stack: apply, list, refuse a bad one,
wait for Running, read the journal, stop, report, delete.

The tests of this module run in order and share one scenario (a copy of examples/demo.yaml
under a name of its own): each step needs the one before.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from typing import Dict, Iterator, List

import pytest

from chaos_client import EventEntry
from chaos_sdk import Chaos, InvalidScenario, NotFound, ScenarioEnded, Unauthorized, WaitTimeout
from conftest import EXAMPLES

STOP_REASON = "sdk test: enough"


def demo_text(name: str) -> str:
    """examples/demo.yaml, renamed (lines unchanged)."""
    text = (EXAMPLES / "demo.yaml").read_text()
    renamed, count = re.subn(r"(?m)^  name: demo$", f"  name: {name}", text)
    assert count == 1, "examples/demo.yaml no longer has `  name: demo`"
    return renamed


def line_of(text: str, line: str) -> int:
    """The 1-based number of the line that is exactly ``line``."""
    return text.splitlines().index(line) + 1


def wait_gone(chaos: Chaos, name: str, timeout: float = 30.0) -> None:
    """Until the scenario is no more (a deleted one with work is stopped first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chaos.get(name)
        except NotFound:
            return
        time.sleep(0.5)
    pytest.fail(f"scenario {name} still there {timeout}s after its delete")


@pytest.fixture(scope="module")
def name(chaos: Chaos) -> Iterator[str]:
    """A fresh scenario name; whatever is left of it is deleted at the end."""
    fresh = f"sdk-py-{uuid.uuid4().hex[:8]}"
    yield fresh
    try:
        chaos.delete(fresh)
    except NotFound:
        pass


@pytest.fixture(scope="module")
def seen() -> Dict[str, List[EventEntry]]:
    """What one test read of the journal, for a later one."""
    return {}


def test_apply_creates_and_lists_it(chaos: Chaos, name: str) -> None:
    applied = chaos.apply(demo_text(name))
    assert applied.result.value == "created"
    assert applied.scenario.metadata.name == name
    assert name in [view.metadata.name for view in chaos.list()]
    # The same text again changes nothing.
    assert chaos.apply(demo_text(name)).result.value == "unchanged"


def test_a_wrong_type_names_the_field_and_its_line(chaos: Chaos, name: str) -> None:
    bad_name = f"{name}-bad"
    text = demo_text(bad_name).replace("\n    max: 6\n", "\n    max: lots\n")
    with pytest.raises(InvalidScenario) as caught:
        chaos.apply(text)
    error = caught.value
    assert (error.status, error.code) == (422, "Invalid")
    assert (error.field, error.line) == ("spec.volumes.max", line_of(text, "    max: lots"))
    assert "lots" in error.message
    with pytest.raises(NotFound):
        chaos.get(bad_name)


def test_an_unknown_field_names_the_field_and_its_line(chaos: Chaos, name: str) -> None:
    text = demo_text(f"{name}-bad").replace("\n    size: 100Mi\n", "\n    size: 100Mi\n    colour: red\n")
    with pytest.raises(InvalidScenario) as caught:
        chaos.apply(text)
    where = [(e.path, e.line) for e in caught.value.errors]
    assert where == [("spec.volumes.colour", line_of(text, "    colour: red"))]


def test_it_runs(chaos: Chaos, name: str) -> None:
    view = chaos.wait_for_phase(name, "Running", timeout=30, poll=0.25)
    assert view.status is not None and view.status.started_at is not None
    with pytest.raises(TimeoutError) as caught:
        chaos.wait_for_phase(name, "Stopped", timeout=0.3, poll=0.1)
    assert isinstance(caught.value, WaitTimeout) and caught.value.last_phase == "Running"
    assert "last seen: Running" in str(caught.value)


def test_the_journal_streams(chaos: Chaos, name: str, seen: Dict[str, List[EventEntry]]) -> None:
    first = list(itertools.islice(chaos.events(name, poll=0.25), 3))
    assert len(first) == 3 and all(event.kind for event in first)
    assert [e.seq for e in first] == sorted({e.seq for e in first})
    # Resuming after an entry starts past it (at the next one, or one written since between them).
    resumed = next(iter(chaos.events(name, after=first[0].seq, follow=False)))
    assert first[0].seq < resumed.seq <= first[1].seq
    seen["first"] = first


def test_stop_ends_it(chaos: Chaos, name: str) -> None:
    assert chaos.stop(name, STOP_REASON).result.value == "stopping"
    assert chaos.stop(name).result.value == "already-stopping"
    view = chaos.wait_for_phase(name, "Stopped", timeout=45, poll=0.5)
    assert view.stop is not None and view.stop.reason == STOP_REASON
    assert view.status is not None and view.status.reason == STOP_REASON
    # Stopped is final: waiting for Running again fails at once.
    with pytest.raises(ScenarioEnded) as caught:
        chaos.wait_for_phase(name, "Running", timeout=30)
    assert caught.value.last_phase == "Stopped"


def test_the_journal_of_a_stopped_scenario_ends(chaos: Chaos, name: str, seen: Dict[str, List[EventEntry]]) -> None:
    # Followed, it ends by itself once the scenario has stopped; pages of 2 give the same entries.
    journal = list(chaos.events(name, poll=0.25))
    paged = list(itertools.islice(chaos.events(name, follow=False, page=2), 20))
    assert len(paged) >= 3
    assert [e.seq for e in paged] == [e.seq for e in journal[: len(paged)]]
    assert {e.seq for e in seen["first"]} <= {e.seq for e in journal}
    assert "run-ended" in {event.kind for event in journal}
    # One page: `limit` entries, and `last` to ask after next time.
    page = chaos.events_page(name, after=0, limit=2)
    assert [e.seq for e in page.items] == [e.seq for e in journal[:2]] and page.last == journal[1].seq
    assert chaos.events_page(name, after=page.last, limit=1).items[0].seq == journal[2].seq


def test_the_report(chaos: Chaos, name: str) -> None:
    report = chaos.report(name)
    assert (report.scenario, report.phase) == (name, "Stopped")
    assert report.volumes.started >= 1 and report.volumes.alive == 0
    assert report.journal_entries > 0
    assert {a.action for a in report.actions} >= {"create-volume"}
    assert sum(report.verdicts.to_dict().values()) == len(report.checks)


def test_a_missing_scenario_is_not_found(chaos: Chaos, name: str) -> None:
    missing = f"{name}-missing"
    for call in (chaos.get, chaos.report, chaos.stop, chaos.delete, chaos.events_page):
        with pytest.raises(NotFound) as caught:
            call(missing)
        assert (caught.value.status, caught.value.code) == (404, "NotFound")
        assert missing in caught.value.message


def test_delete_removes_it(chaos: Chaos, name: str) -> None:
    assert chaos.delete(name).result.value in ("deleted", "deleting")
    wait_gone(chaos, name)
    assert name not in [view.metadata.name for view in chaos.list()]


def test_a_wrong_token_is_unauthorized(stack: Dict[str, str]) -> None:
    with Chaos(stack["CHAOS_SERVER"], "not-a-token", stack["CHAOS_CA"] or None) as stranger:
        with pytest.raises(Unauthorized) as caught:
            stranger.list()
    assert caught.value.status == 401
