"""ROS 2 name rules: validate node names and namespaces, resolve topic names.

Resolution follows rcl (``rcl_expand_topic_name``)::

    namespace  node   name                 resolved
    /line1     cam    camera/image_raw  -> /line1/camera/image_raw
    /line1     cam    /sim/ground_truth -> /sim/ground_truth
    /line1     cam    ~/debug           -> /line1/cam/debug
    /          cam    status            -> /status

A token (the text between slashes) is ``[A-Za-z_][A-Za-z0-9_]*``; a relative
topic name may start with a digit-free token only. Substitutions such as
``{node}`` are not supported. Every violation raises
:class:`~sorting.errors.InvalidNameError` saying what is wrong and where.
"""

from __future__ import annotations

import re

from sorting.errors import InvalidNameError

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _check_tokens(kind: str, full: str, body: str) -> None:
    """Check the slash-separated tokens of ``body`` (``full`` is quoted in errors)."""
    if "//" in full:
        raise InvalidNameError(f"{kind} {full!r} contains '//' (empty token)")
    if full.endswith("/") and full != "/":
        raise InvalidNameError(f"{kind} {full!r} must not end with '/'")
    for token in body.split("/"):
        if not token:
            continue
        if not _TOKEN.match(token):
            if token[0].isdigit():
                raise InvalidNameError(f"{kind} {full!r}: token {token!r} starts with a digit")
            bad = sorted({c for c in token if not (c.isascii() and (c.isalnum() or c == "_"))})
            raise InvalidNameError(
                f"{kind} {full!r}: token {token!r} has invalid character(s) {bad}; "
                f"allowed are letters, digits and '_'"
            )


def validate_node_name(name: str) -> str:
    """Return ``name`` if it is a valid node name (one token), else raise InvalidNameError."""
    if not name:
        raise InvalidNameError("node name is empty")
    if "/" in name or "~" in name:
        raise InvalidNameError(f"node name {name!r} must not contain '/' or '~'; use namespace=")
    _check_tokens("node name", name, name)
    return name


def normalize_namespace(namespace: str) -> str:
    """Return the absolute form of ``namespace`` (``""`` → ``/``, ``line1`` → ``/line1``).

    Raises InvalidNameError for '//', a trailing '/', '~' or bad characters.
    """
    ns = namespace if namespace.startswith("/") else "/" + namespace
    if "~" in ns:
        raise InvalidNameError(f"namespace {namespace!r} must not contain '~'")
    _check_tokens("namespace", ns, ns)
    return ns


def join(namespace: str, name: str) -> str:
    """Join an absolute namespace and a relative name (``/`` + ``x`` → ``/x``)."""
    return namespace + name if namespace == "/" else f"{namespace}/{name}"


def resolve_topic(name: str, namespace: str, node: str) -> str:
    """Resolve topic ``name`` for node ``node`` in absolute ``namespace`` (see module docstring).

    Raises InvalidNameError for an empty name, '//', a trailing '/', '~' anywhere
    but a leading ``~`` or ``~/``, or characters outside ``[A-Za-z0-9_/]``.
    """
    if not name:
        raise InvalidNameError(f"empty topic name (node {join(namespace, node)!r})")
    if name == "~":
        resolved = join(namespace, node)
    elif name.startswith("~/"):
        resolved = join(join(namespace, node), name[2:])
    elif name.startswith("~"):
        raise InvalidNameError(f"topic {name!r}: '~' must be followed by '/'")
    elif name.startswith("/"):
        resolved = name
    else:
        resolved = join(namespace, name)
    if "~" in resolved:
        raise InvalidNameError(f"topic {name!r}: '~' is only allowed at the start")
    if resolved == "/":
        raise InvalidNameError(f"topic {name!r} resolves to '/', which is not a topic")
    _check_tokens("topic", name if "//" in name or name.endswith("/") else resolved, resolved)
    return resolved


def validate_topic(name: str) -> str:
    """Return ``name`` if it is a valid absolute topic name, else raise InvalidNameError."""
    if not name.startswith("/"):
        raise InvalidNameError(f"topic {name!r} must be absolute (start with '/') here")
    return resolve_topic(name, "/", "_")
