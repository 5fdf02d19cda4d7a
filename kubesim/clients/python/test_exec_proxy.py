"""Reaching a simulated application as real tools do: `pods/exec` over WebSocket through the
client's `stream`, and the API server's proxy to a Service and to a pod. Every call is bounded:
an application that answers nothing fails the test instead of hanging it."""

import json

import pytest
from kubernetes.client import ApiException
from kubernetes.stream import stream

import waits
import workloads


def exec_in(core, namespace, pod, command):
    """Runs `command` in the pod; returns (exit code, stdout, stderr)."""
    session = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=command,
        stdin=False,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    try:
        session.run_forever(timeout=waits.WAIT)
        assert not session.is_open(), f"{command} did not finish within {waits.WAIT}s"
        return session.returncode, session.read_stdout(), session.read_stderr()
    finally:
        session.close()


def test_exec_ps_lists_the_application_as_pid_1(core, smoke_app):
    namespace, pods = smoke_app
    output = stream(
        core.connect_get_namespaced_pod_exec,
        pods[0],
        namespace,
        command=["ps"],
        stdin=False,
        stdout=True,
        stderr=True,
        tty=False,
        _request_timeout=waits.WAIT,
    )
    pid_1 = [line for line in output.splitlines() if line.split()[:1] == ["1"]]
    assert len(pid_1) == 1, f"one process with PID 1 in:\n{output}"
    assert "smoke-mini" in pid_1[0]


# An unknown program exits 127, its name in the error (the wording is the container runtime's).
@pytest.mark.parametrize(
    ("command", "code", "stderr"),
    [(["true"], 0, ""), (["false"], 1, ""), (["no-such-program"], 127, "no-such-program")],
)
def test_exec_reports_the_exit_code(core, smoke_app, command, code, stderr):
    namespace, pods = smoke_app
    returncode, _, err = exec_in(core, namespace, pods[0], command)
    assert returncode == code
    assert stderr in err


# `/` answers; `/neighbor` finds the other Ready pod of the application.
@pytest.mark.parametrize("path", ["", "neighbor"])
def test_service_proxy_reaches_the_application(core, smoke_app, path):
    namespace, _ = smoke_app
    # Raw bytes: the client turns a JSON body it was told is a `str` into a Python repr.
    resp = core.connect_get_namespaced_service_proxy_with_path(
        "smoke", namespace, path=path, _request_timeout=waits.WAIT, _preload_content=False
    )
    assert json.loads(resp.data)["status"] == "ok"


def test_service_proxy_passes_the_application_error_on(core, smoke_app):
    namespace, _ = smoke_app
    with pytest.raises(ApiException) as failed:
        core.connect_get_namespaced_service_proxy_with_path(
            "smoke", namespace, path="error", _request_timeout=waits.WAIT
        )
    assert failed.value.status == 500


def test_pod_proxy_reaches_one_pod(core, smoke_app):
    namespace, pods = smoke_app
    pod = f"{pods[1]}:{workloads.SMOKE_MINI_PORT}"
    resp = core.connect_get_namespaced_pod_proxy_with_path(
        pod, namespace, path="", _request_timeout=waits.WAIT, _preload_content=False
    )
    body = json.loads(resp.data)
    assert body["status"] == "ok"
    assert body["pod"] == pods[1]
