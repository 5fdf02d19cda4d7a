"""The typed apps API (AppsV1Api): a Deployment that kubesim's workload controller runs, through
its ReplicaSet, to Ready pods, and scales down."""

import waits
import workloads


def test_deployment_becomes_ready_lists_its_pods_and_scales_down(core, apps, namespace):
    apps.create_namespaced_deployment(
        namespace, workloads.deployment("echo", "kubesim/http-echo", 3, workloads.HTTP_ECHO_PORT)
    )
    ready = waits.until_object(
        apps.list_namespaced_deployment,
        namespace,
        name="echo",
        condition=lambda d: workloads.ready_replicas(d) == 3,
    )
    assert ready.status.replicas == 3

    pods = core.list_namespaced_pod(namespace, label_selector="app=echo").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.metadata.name.startswith("echo-")
        assert pod.spec.containers[0].image == "kubesim/http-echo"
        assert pod.status.phase == "Running"
        assert [c.status for c in pod.status.conditions if c.type == "Ready"] == ["True"]
        # Owned as the real controllers own them: Deployment -> ReplicaSet -> Pod.
        [owner] = pod.metadata.owner_references
        assert owner.kind == "ReplicaSet"
        replica_set = apps.read_namespaced_replica_set(owner.name, namespace)
        assert [(o.kind, o.name) for o in replica_set.metadata.owner_references] == [("Deployment", "echo")]

    apps.patch_namespaced_deployment("echo", namespace, {"spec": {"replicas": 1}})
    left = waits.until(
        core.list_namespaced_pod,
        namespace,
        label_selector="app=echo",
        condition=lambda found: len(found) == 1,
    )
    [survivor] = left.values()
    assert survivor.metadata.name in {p.metadata.name for p in pods}, "scaling down keeps a pod, makes none"
    scaled = waits.until_object(
        apps.list_namespaced_deployment,
        namespace,
        name="echo",
        condition=lambda d: d.status.replicas == 1 and workloads.ready_replicas(d) == 1,
    )
    assert scaled.spec.replicas == 1
