"""Custom objects (CustomObjectsApi) of the simulated storage system: a ReplicatedVolume from
creation, through the storage simulation making it IOReady, to deletion."""

import pytest
from kubernetes.client import ApiException

import waits

GROUP, VERSION, PLURAL = "storage.deckhouse.io", "v1alpha1", "replicatedvolumes"


def volume(name, size="1Gi"):
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ReplicatedVolume",
        "metadata": {"name": name, "labels": {"suite": "pyclient"}},
        "spec": {"size": size, "replicatedStorageClassName": "rsc-a"},
    }


def test_replicated_volume_create_get_list_patch_delete(custom):
    created = custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, volume("py-crud"))
    assert created["metadata"]["uid"]
    assert created["spec"] == {"size": "1Gi", "replicatedStorageClassName": "rsc-a"}

    got = custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, "py-crud")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    assert got["kind"] == "ReplicatedVolume"

    listed = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, label_selector="suite=pyclient")
    assert "py-crud" in {o["metadata"]["name"] for o in listed["items"]}

    # A custom object's patch is a JSON merge patch: only the named fields change.
    patched = custom.patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, "py-crud", {"metadata": {"labels": {"tier": "gold"}}, "spec": {"size": "2Gi"}}
    )
    assert patched["metadata"]["labels"] == {"suite": "pyclient", "tier": "gold"}
    assert patched["spec"] == {"size": "2Gi", "replicatedStorageClassName": "rsc-a"}
    assert patched["metadata"]["generation"] > created["metadata"]["generation"]

    custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, "py-crud")
    # The storage system's finalizer holds the volume until its replicas are gone.
    waits.until_gone(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, name="py-crud")
    with pytest.raises(ApiException) as gone:
        custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, "py-crud")
    assert gone.value.status == 404


def test_a_watch_sees_the_volume_become_io_ready(custom):
    custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, volume("py-ioready"))
    try:
        ready = waits.until_object(
            custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            PLURAL,
            name="py-ioready",
            condition=lambda rv: waits.condition_status(rv, "IOReady") == "True",
        )
        assert waits.condition_status(ready, "Quorum") == "True"
        # Three diskful replicas (rsc-a is ConsistencyAndAvailability), all in sync.
        assert ready["status"]["diskfulReplicaCount"] == "3/3"
        assert ready["status"]["diskfulReplicasInSync"] == "3/3"
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, "py-ioready")
