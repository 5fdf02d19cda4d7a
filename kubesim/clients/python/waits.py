"""Bounded waits on the cluster's state, through the client's own watch streams.

Each wait lists first (the state may already hold), then watches from the list's version until
its condition holds; none waits longer than WAIT, and then it fails the test with the last state
seen. Objects are typed models or, for custom objects, plain dicts; both are handled."""

import time

from kubernetes import watch

# How long any single wait may take (generous: a busy 2-core machine, kubesim at 50x speed).
WAIT = 30.0


def meta(obj, field):
    """A metadata field of a typed model (snake_case) or of a dict (camelCase)."""
    if isinstance(obj, dict):
        camel = field.split("_")[0] + "".join(w.title() for w in field.split("_")[1:])
        return obj.get("metadata", {}).get(camel)
    return getattr(obj.metadata, field)


def items(listing):
    return listing["items"] if isinstance(listing, dict) else listing.items


def until(list_func, *args, condition, timeout=WAIT, **kwargs):
    """Waits until `condition(objects)` holds for the objects `list_func(*args, **kwargs)` lists,
    as a dict by name; returns them."""
    deadline = time.monotonic() + timeout
    listing = list_func(*args, **kwargs)
    objects = {meta(o, "name"): o for o in items(listing)}
    version = meta(listing, "resource_version")
    while not condition(objects):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"condition not met within {timeout}s; last seen:\n{describe(objects)}")
        stream = watch.Watch().stream(
            list_func,
            *args,
            resource_version=version,
            timeout_seconds=max(1, int(remaining)),
            _request_timeout=remaining + 5,
            **kwargs,
        )
        for event in stream:
            obj = event["object"]
            version = meta(obj, "resource_version")
            if event["type"] == "DELETED":
                objects.pop(meta(obj, "name"), None)
            elif event["type"] in ("ADDED", "MODIFIED"):
                objects[meta(obj, "name")] = obj
            if condition(objects):
                stream.close()
                break
    return objects


def describe(objects):
    """The objects' statuses, for a failure message (cut short: a pod's status is long)."""
    statuses = {}
    for name, obj in objects.items():
        status = obj.get("status") if isinstance(obj, dict) else getattr(obj, "status", None)
        statuses[name] = status.to_dict() if hasattr(status, "to_dict") else status
    return repr(statuses)[:2000]


def until_object(list_func, *args, name, condition, timeout=WAIT, **kwargs):
    """Waits until the object `name` exists and `condition(obj)` holds; returns it."""
    objects = until(
        list_func,
        *args,
        condition=lambda objs: name in objs and condition(objs[name]),
        timeout=timeout,
        field_selector=f"metadata.name={name}",
        **kwargs,
    )
    return objects[name]


def until_gone(list_func, *args, name, timeout=WAIT, **kwargs):
    """Waits until the object `name` no longer exists."""
    until(
        list_func,
        *args,
        condition=lambda objs: name not in objs,
        timeout=timeout,
        field_selector=f"metadata.name={name}",
        **kwargs,
    )


def condition_status(obj, kind):
    """The status ("True", "False", ...) of a custom object's condition, or None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond.get("status")
    return None
