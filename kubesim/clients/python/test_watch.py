"""Watch streams through the client's `watch.Watch().stream`: live events in order, resuming
from a resourceVersion, and the 410 a version too old for the server's history gets."""

import pytest
from kubernetes import client, watch
from kubernetes.client import ApiException

import waits


def config_map(name, **data):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data)


def test_a_live_watch_sees_added_modified_deleted_in_order(core, namespace):
    core.create_namespaced_config_map(namespace, config_map("marker"))
    written = {}  # the version each write returned, by event type
    seen = []  # (type, name, version) as the stream delivers them
    w = watch.Watch()
    # Each write follows the event of the one before, so every event arrives on the live stream
    # (without a resourceVersion the watch starts with the current objects as ADDED).
    for event in w.stream(core.list_namespaced_config_map, namespace, timeout_seconds=int(waits.WAIT)):
        obj = event["object"]
        seen.append((event["type"], obj.metadata.name, obj.metadata.resource_version))
        if (event["type"], obj.metadata.name) == ("ADDED", "marker"):
            written["ADDED"] = core.create_namespaced_config_map(namespace, config_map("watched", v="1"))
        elif (event["type"], obj.metadata.name) == ("ADDED", "watched"):
            written["MODIFIED"] = core.patch_namespaced_config_map("watched", namespace, {"data": {"v": "2"}})
        elif (event["type"], obj.metadata.name) == ("MODIFIED", "watched"):
            assert obj.data == {"v": "2"}
            core.delete_namespaced_config_map("watched", namespace)
        elif (event["type"], obj.metadata.name) == ("DELETED", "watched"):
            w.stop()

    watched = [(kind, version) for kind, name, version in seen if name == "watched"]
    assert [kind for kind, _ in watched] == ["ADDED", "MODIFIED", "DELETED"]
    assert watched[0][1] == written["ADDED"].metadata.resource_version
    assert watched[1][1] == written["MODIFIED"].metadata.resource_version
    assert len({version for _, version in watched}) == 3, f"each event has its own version: {watched}"
    # The client remembers the last version it saw, to resume from.
    assert w.resource_version == watched[2][1]


def test_a_watch_resumes_from_a_resource_version(core, namespace):
    created = core.create_namespaced_config_map(namespace, config_map("resumed", v="1"))
    core.patch_namespaced_config_map("resumed", namespace, {"data": {"v": "2"}})
    core.patch_namespaced_config_map("resumed", namespace, {"data": {"v": "3"}})

    # From the creation's version: the changes after it, not the creation itself.
    events = []
    w = watch.Watch()
    stream = w.stream(
        core.list_namespaced_config_map,
        namespace,
        resource_version=created.metadata.resource_version,
        timeout_seconds=int(waits.WAIT),
    )
    for event in stream:
        events.append((event["type"], event["object"].data["v"]))
        if len(events) == 2:
            w.stop()
    assert events == [("MODIFIED", "2"), ("MODIFIED", "3")]


def test_a_too_old_resource_version_is_410_and_a_fresh_list_recovers(core, namespace):
    old = core.create_namespaced_config_map(namespace, config_map("churn", n="0")).metadata.resource_version
    # scripts/pyclient.sh runs kubesim with a history of 256 events: 300 writes push `old` out.
    for n in range(1, 301):
        core.patch_namespaced_config_map("churn", namespace, {"data": {"n": str(n)}})

    # Without timeout_seconds the client handles a 410 by resuming once from the last version it
    # saw, here still `old`; the second 410 reaches the caller.
    with pytest.raises(ApiException) as expired:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map, namespace, resource_version=old, _request_timeout=waits.WAIT
        ):
            pytest.fail("a watch from an expired version delivers no event")
    assert expired.value.status == 410

    # The client's documented recovery: list for a fresh version, and watch from there.
    fresh = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.patch_namespaced_config_map("churn", namespace, {"data": {"n": "after"}})
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_config_map, namespace, resource_version=fresh, timeout_seconds=int(waits.WAIT)
    ):
        assert (event["type"], event["object"].data["n"]) == ("MODIFIED", "after")
        w.stop()
    assert w.resource_version != fresh, "the watch saw the change after the fresh list"
