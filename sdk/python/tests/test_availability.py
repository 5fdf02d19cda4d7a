"""Availability through the SDK: the probes measured now, and a range of past steps."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from chaos_client import AvailabilityRange, ProbeGroups
from chaos_sdk import BadRequest, Chaos


def test_probes_are_listed_by_group(chaos: Chaos) -> None:
    groups = chaos.probes()
    assert isinstance(groups, ProbeGroups)
    for group in groups.groups:
        assert all(probe.group == group.group for probe in group.probes)


def test_a_range_is_aligned_to_its_step(chaos: Chaos) -> None:
    now = int(time.time())
    answer = chaos.availability(from_=now - 3600, to=now, step=300)
    assert isinstance(answer, AvailabilityRange)
    assert answer.step == 300
    assert answer.var_from % 300 == 0 and answer.to % 300 == 0
    assert answer.var_from <= now - 3600 and answer.to >= now


def test_a_range_takes_datetimes_and_a_list_of_muted_types(chaos: Chaos) -> None:
    end = datetime.now(timezone.utc)
    answer = chaos.availability(start=end - timedelta(minutes=30), end=end, step=60, mute_downtime_types=[])
    assert answer.step == 60 and answer.muted == []


def test_a_range_backwards_is_a_bad_request(chaos: Chaos) -> None:
    now = int(time.time())
    with pytest.raises(BadRequest) as caught:
        chaos.availability(from_=now, to=now - 3600)
    assert caught.value.status == 400
