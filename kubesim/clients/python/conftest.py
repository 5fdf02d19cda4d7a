"""Fixtures of the Python client suite: API objects bound to the kubesim that scripts/pyclient.sh
started (its URL in KUBESIM_URL), a namespace of its own for each test, and a running smoke-mini
application behind a Service."""

import contextlib
import os
import re

import pytest
from kubernetes import client

import waits
import workloads


@pytest.fixture(scope="session")
def api_client():
    url = os.environ.get("KUBESIM_URL")
    if not url:
        pytest.exit("KUBESIM_URL is not set: run the suite with scripts/pyclient.sh", returncode=2)
    # kubesim serves plain HTTP without authentication: a bare Configuration is all a client needs,
    # and no kubeconfig of the machine is read.
    config = client.Configuration(host=url)
    with client.ApiClient(config) as api:
        yield api


@pytest.fixture(scope="session")
def core(api_client):
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client):
    return client.AppsV1Api(api_client)


@pytest.fixture(scope="session")
def custom(api_client):
    return client.CustomObjectsApi(api_client)


@contextlib.contextmanager
def scratch_namespace(core, name):
    """Creates the namespace `name`; deletes it, with everything in it, on leaving."""
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)
        waits.until_gone(core.list_namespace, name=name)


@pytest.fixture
def namespace(core, request):
    """A namespace of the test's own, named after it."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:50].rstrip("-")
    with scratch_namespace(core, f"py-{name}") as ns:
        yield ns


@pytest.fixture(scope="module")
def smoke_app(core, apps):
    """Two Ready `kubesim/smoke-mini` pods of the Deployment `smoke`, in the Endpoints of the
    Service `smoke`: (namespace, names of the pods)."""
    with scratch_namespace(core, "py-smoke-mini") as ns:
        apps.create_namespaced_deployment(
            ns, workloads.deployment("smoke", "kubesim/smoke-mini", 2, workloads.SMOKE_MINI_PORT)
        )
        core.create_namespaced_service(ns, workloads.service("smoke"))
        waits.until_object(
            apps.list_namespaced_deployment, ns, name="smoke", condition=lambda d: workloads.ready_replicas(d) == 2
        )
        waits.until_object(
            core.list_namespaced_endpoints, ns, name="smoke", condition=lambda e: workloads.ready_addresses(e) == 2
        )
        pods = core.list_namespaced_pod(ns, label_selector="app=smoke").items
        yield ns, sorted(p.metadata.name for p in pods)
