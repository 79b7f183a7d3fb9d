"""The node registry: every node type a flow may use, with its properties, ports, validation
and behaviour. Built-in types register in ``flows.node_types``; other apps (appointments'
"book", later) call ``register_node`` from their ``AppConfig.ready`` without touching flows.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.functional import Promise


@dataclass(frozen=True)
class Field:
    """One property in the node's panel. ``kind``: text, textarea, number, select, bool,
    lines (one item per line, e.g. "id | title"), keyvalue (one "name = path" per line)."""

    name: str
    label: str | Promise
    kind: str = "text"
    choices: tuple[tuple[str, str | Promise], ...] = ()
    help: str | Promise = ""
    max_length: int | None = None


@dataclass
class Outcome:
    """What a step did. ``port`` names the outgoing edge to follow; ``wait`` stops the run:
    "input" until the customer answers, "time" until ``until``; ``end`` finishes it with a
    status ("completed", "handed_off", "failed"); ``jump`` starts another flow (its code)."""

    port: str = ""
    detail: str = ""
    wait: str = ""
    until: datetime | None = None
    end: str = ""
    jump: str = ""
    stay: bool = False  # with wait="time": wake up at this same node (a two-phase step)
    # With wait="time": the flow keeps holding the chat meanwhile (an AI step waiting for the
    # model): customer messages are queued on the run and answered in order when it goes on.
    hold: bool = False


@dataclass(frozen=True)
class NodeType:
    type: str
    label: str | Promise
    category: str
    run: Callable[[Any], Outcome]
    validate: Callable[[dict], list[str]]
    ports: Callable[[dict], list[str]]
    fields: tuple[Field, ...] = ()
    resume: Callable[[Any, Any], Outcome] | None = None  # (context, message) for input nodes
    pauses: bool = False  # may stop the run (an answer or a wait), so a cycle through it is fine
    defaults: dict = field(default_factory=dict)
    icon: str = "•"
    # How the editor names outputs that depend on the properties: "options" (opt1… + no_match,
    # one per line of ``options``), "intents" (intent1… + other, when ``mode`` is "classify").
    dynamic_ports: str = ""
    # Checks that need the organization (the team a step names is one of its own): called
    # with (organization id, props) when the flow is saved, published or imported there.
    validate_for: Callable[[int, dict], list[str]] | None = None


_registry: dict[str, NodeType] = {}


def register_node(
    type: str,
    *,
    label,
    run: Callable[[Any], Outcome],
    validate: Callable[[dict], list[str]] | None = None,
    ports: Callable[[dict], list[str]] | list[str] = ("next",),
    fields: tuple[Field, ...] = (),
    resume=None,
    category: str = "actions",
    pauses: bool = False,
    defaults: dict | None = None,
    icon: str = "•",
    dynamic_ports: str = "",
    validate_for: Callable[[int, dict], list[str]] | None = None,
) -> NodeType:
    """Add (or replace) a node type. ``ports`` is a list of edge names, or a function of the
    node's properties (a button per option)."""
    if isinstance(ports, list | tuple):
        fixed = list(ports)

        def port_names(_props, fixed=fixed):
            return fixed

    else:
        port_names = ports
    node_type = NodeType(
        type=type,
        label=label,
        category=category,
        run=run,
        validate=validate or (lambda props: []),
        ports=port_names,
        fields=tuple(fields),
        resume=resume,
        pauses=pauses or resume is not None,
        defaults=dict(defaults or {}),
        icon=icon,
        dynamic_ports=dynamic_ports,
        validate_for=validate_for,
    )
    _registry[type] = node_type
    return node_type


def get(type: str) -> NodeType | None:
    return _registry.get(type)


def all_types() -> list[NodeType]:
    return list(_registry.values())
