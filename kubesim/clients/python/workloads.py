"""Typed bodies of the workloads the tests run: a Deployment of a kubesim image and the Service in
front of it."""

from kubernetes import client

# The ports kubesim's images listen on (as documented in docs/kubesim.md).
SMOKE_MINI_PORT = 8080
HTTP_ECHO_PORT = 5678


def deployment(name, image, replicas, port):
    """A Deployment of `replicas` pods labelled app=`name`, one container of `image` declaring
    `port` as `http`."""
    labels = {"app": name}
    container = client.V1Container(
        name="app",
        image=image,
        ports=[client.V1ContainerPort(name="http", container_port=port)],
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container]),
            ),
        ),
    )


def service(name):
    """A Service on port 80 in front of the pods labelled app=`name`, to their port `http`."""
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(
            selector={"app": name},
            ports=[client.V1ServicePort(name="http", port=80, target_port="http")],
        ),
    )


def ready_replicas(dep):
    return (dep.status and dep.status.ready_replicas) or 0


def ready_addresses(endpoints):
    return sum(len(subset.addresses or []) for subset in endpoints.subsets or [])
