"""What the apiserver answers reads back into the generated models, for the shapes scenarios
commonly use (a mismatch between the API document and the server breaks every Python caller
that meets one: `list()` fails for everyone once one such scenario exists)."""

from __future__ import annotations

import uuid

from chaos_sdk import Chaos, NotFound


def probe_scenario(name: str) -> str:
    """A scenario that only measures an HTTP probe behind a service port given by number."""
    return f"""\
apiVersion: chaosctl.dev/v1alpha1
kind: Scenario
metadata:
  name: {name}
spec:
  cluster: default
  duration: 1m
  probes:
    - name: disk
      group: synthetic
      http:
        service: {{namespace: smoke-mini, name: smoke-mini, port: 80}}
        path: /disk
"""


def test_a_service_port_by_number_reads_back(chaos: Chaos) -> None:
    name = f"sdk-py-port-{uuid.uuid4().hex[:8]}"
    try:
        applied = chaos.apply(probe_scenario(name))
        service = applied.scenario.spec.to_dict()["probes"][0]["http"]["service"]
        assert service["port"] == 80
        assert name in [view.metadata.name for view in chaos.list()]
    finally:
        try:
            chaos.delete(name)
        except NotFound:
            pass
