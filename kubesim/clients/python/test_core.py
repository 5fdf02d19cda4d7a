"""The typed core API (CoreV1Api): what a user of the client reads and writes first."""

import json

import pytest
from kubernetes import client
from kubernetes.client import ApiException

STORAGE_NAMESPACE = "d8-sds-replicated-volume"


def test_lists_the_nodes_and_namespaces_of_the_simulated_cluster(core):
    nodes = core.list_node().items
    assert sorted(n.metadata.name for n in nodes) == [f"node-{i}" for i in range(1, 6)]
    for node in nodes:
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert [c.status for c in ready] == ["True"], f"{node.metadata.name} is not Ready"

    namespaces = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "kube-system", STORAGE_NAMESPACE} <= namespaces


def test_config_map_create_read_patch_delete(core, namespace):
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="settings", labels={"app": "demo"}),
        data={"mode": "fast"},
    )
    created = core.create_namespaced_config_map(namespace, body)
    assert created.metadata.uid
    assert created.metadata.resource_version

    read = core.read_namespaced_config_map("settings", namespace)
    assert read.data == {"mode": "fast"}
    assert read.metadata.labels == {"app": "demo"}
    assert read.metadata.uid == created.metadata.uid

    # A dict body is sent as a strategic merge patch: the new key joins the old one.
    patched = core.patch_namespaced_config_map("settings", namespace, {"data": {"level": "3"}})
    assert patched.data == {"mode": "fast", "level": "3"}
    assert patched.metadata.resource_version != created.metadata.resource_version

    core.delete_namespaced_config_map("settings", namespace)
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("settings", namespace)
    assert gone.value.status == 404


def test_lists_pods_by_label_selector(core):
    agents = core.list_namespaced_pod(STORAGE_NAMESPACE, label_selector="app=agent").items
    assert len(agents) == 5
    assert {p.metadata.labels["app"] for p in agents} == {"agent"}
    # One agent per node, as a DaemonSet's pods are.
    assert sorted(p.spec.node_name for p in agents) == [f"node-{i}" for i in range(1, 6)]

    others = core.list_namespaced_pod(STORAGE_NAMESPACE, label_selector="app!=agent").items
    assert others, "the storage controller's pods are listed too"
    assert all(p.metadata.labels.get("app") != "agent" for p in others)


def test_a_missing_object_is_a_404_api_exception_with_a_status_body(core, namespace):
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("no-such-map", namespace)
    assert missing.value.status == 404
    status = json.loads(missing.value.body)
    assert status["kind"] == "Status"
    assert status["status"] == "Failure"
    assert status["reason"] == "NotFound"
    assert status["code"] == 404
    assert status["details"]["name"] == "no-such-map"
