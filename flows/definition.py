"""A flow's definition (the graph as JSON): validation, export and import.

Layout (``SCHEMA`` 1)::

    {"nodes": [{"id": "menu", "type": "buttons", "props": {...}, "x": 120, "y": 40}, ...],
     "edges": [{"from": "menu", "port": "b1", "to": "price"}, ...]}

Export wraps it as ``{"porfin_flow": 1, "name": ..., "description": ..., "definition": ...}``.
Every problem names its node, so the editor can mark it and an import can say what is wrong.
"""

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

from flows import nodes

SCHEMA = 1
MAX_NODES = 200
NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Problem:
    node: str  # "" for the flow as a whole
    message: str
    blocking: bool = True  # warnings (unreachable nodes) do not stop a save or a publish

    def as_dict(self) -> dict:
        return {"node": self.node, "message": self.message, "blocking": self.blocking}


class DefinitionError(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(_describe(p) for p in problems))


def _describe(problem: Problem) -> str:
    if problem.node:
        return _("node %(node)s: %(message)s") % {"node": problem.node, "message": problem.message}
    return problem.message


def empty() -> dict:
    return {
        "nodes": [{"id": "start", "type": "start", "props": {}, "x": 40, "y": 120}],
        "edges": [],
    }


def check(
    definition, *, for_publish: bool = False, organization_id: int | None = None
) -> list[Problem]:
    """Every problem of ``definition``. Structure errors always block; when ``for_publish``,
    so do missing properties and dangling ports (a draft may be incomplete while edited).
    With ``organization_id``, also what only the organization can tell (``validate_for``:
    the team a step names is one of its teams)."""
    if not isinstance(definition, dict):
        return [Problem("", _("The flow must be a JSON object with nodes and edges."))]
    raw_nodes, raw_edges = definition.get("nodes"), definition.get("edges", [])
    if not isinstance(raw_nodes, list) or not isinstance(raw_edges, list):
        return [Problem("", _('"nodes" and "edges" must be lists.'))]
    if len(raw_nodes) > MAX_NODES:
        return [Problem("", _("A flow may have at most %(n)d nodes.") % {"n": MAX_NODES})]
    problems: list[Problem] = []
    by_id: dict[str, dict] = {}
    for position, node in enumerate(raw_nodes, start=1):
        if not isinstance(node, dict) or not NODE_ID.match(str(node.get("id", ""))):
            problems.append(
                Problem(
                    "",
                    _("Node #%(n)d has no valid id (letters, digits, - and _).") % {"n": position},
                )
            )
            continue
        node_id = node["id"]
        if node_id in by_id:
            problems.append(Problem(node_id, _("Two nodes have this id.")))
            continue
        by_id[node_id] = node
        node_type = nodes.get(str(node.get("type", "")))
        if node_type is None:
            problems.append(
                Problem(node_id, _('Unknown node type "%(type)s".') % {"type": node.get("type")})
            )
            continue
        props = node.get("props", {})
        if not isinstance(props, dict):
            problems.append(Problem(node_id, _('"props" must be an object.')))
            continue
        messages = node_type.validate(props)
        if not messages and organization_id is not None and node_type.validate_for:
            messages = node_type.validate_for(organization_id, props)
        for message in messages:
            problems.append(Problem(node_id, str(message), blocking=True))
    starts = [n for n in by_id.values() if n.get("type") == "start"]
    if not starts:
        problems.append(Problem("", _("The flow has no start node.")))
    elif len(starts) > 1:
        problems.append(Problem(starts[1]["id"], _("A flow has exactly one start node.")))
    edges: dict[tuple[str, str], str] = {}
    for edge in raw_edges:
        if not isinstance(edge, dict):
            problems.append(Problem("", _("Each edge must be an object with from, port and to.")))
            continue
        source, port, target = (
            str(edge.get("from", "")),
            str(edge.get("port", "")),
            str(edge.get("to", "")),
        )
        if source not in by_id:
            problems.append(Problem(source, _("An edge starts at a node that does not exist.")))
            continue
        if target not in by_id:
            problems.append(
                Problem(
                    source,
                    _('Its "%(port)s" edge goes to a missing node "%(to)s".')
                    % {"port": port, "to": target},
                )
            )
            continue
        source_type = nodes.get(by_id[source].get("type", ""))
        if source_type and port not in source_type.ports(by_id[source].get("props") or {}):
            problems.append(Problem(source, _('It has no output "%(port)s".') % {"port": port}))
            continue
        if (source, port) in edges:
            problems.append(
                Problem(source, _('Its output "%(port)s" is connected twice.') % {"port": port})
            )
            continue
        if by_id[target].get("type") == "start":
            problems.append(Problem(source, _("Nothing may lead back to the start node.")))
            continue
        edges[(source, port)] = target
    if any(p.blocking for p in problems):
        return problems
    problems += _graph_problems(by_id, edges, starts[0]["id"], for_publish)
    return problems


def _graph_problems(by_id, edges, start, for_publish) -> list[Problem]:
    problems = []
    for node_id, node in by_id.items():
        node_type = nodes.get(node["type"])
        ports = node_type.ports(node.get("props") or {})
        connected = {port for (source, port) in edges if source == node_id}
        if node["type"] == "start" and "next" not in connected:
            problems.append(
                Problem(node_id, _("Connect the start to the first step."), blocking=for_publish)
            )
        elif node["type"] != "start" and ports and not connected:
            problems.append(
                Problem(node_id, _("No output is connected: the flow ends here."), blocking=False)
            )
    reachable, frontier = {start}, [start]
    while frontier:
        current = frontier.pop()
        for (source, _port), target in edges.items():
            if source == current and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    for node_id in by_id:
        if node_id not in reachable:
            problems.append(
                Problem(node_id, _("No path from the start reaches this node."), blocking=False)
            )
    # A loop with no question and no wait would run forever without the customer.
    cycle = _cycle_without_pause(by_id, edges)
    if cycle:
        problems.append(
            Problem(
                cycle[0],
                _("These nodes loop without a question or a wait: %(nodes)s.")
                % {"nodes": " → ".join(cycle)},
            )
        )
    return problems


def _cycle_without_pause(by_id, edges) -> list[str]:
    pausing = {n for n, node in by_id.items() if nodes.get(node["type"]).pauses}
    graph: dict[str, list[str]] = {}
    for (source, _port), target in edges.items():
        if source not in pausing and target not in pausing:
            graph.setdefault(source, []).append(target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node_id) -> list[str]:
        state[node_id] = 1
        stack.append(node_id)
        for target in graph.get(node_id, []):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node_id] = 2
        return []

    for node_id in graph:
        if node_id not in state:
            found = visit(node_id)
            if found:
                return found
    return []


def normalized(definition: dict) -> dict:
    """Only the known keys, so nothing unexpected is stored."""
    return {
        "nodes": [
            {
                "id": n["id"],
                "type": n["type"],
                "props": n.get("props") or {},
                "x": _number(n.get("x")),
                "y": _number(n.get("y")),
            }
            for n in definition["nodes"]
        ],
        "edges": [
            {"from": str(e["from"]), "port": str(e["port"]), "to": str(e["to"])}
            for e in definition.get("edges", [])
        ],
    }


def _number(value) -> float:
    try:
        return round(float(value), 1)
    except (TypeError, ValueError):
        return 0.0


def validated(definition, *, for_publish: bool = False, organization_id: int | None = None) -> dict:
    """The normalized definition, or ``DefinitionError`` with the blocking problems."""
    problems = [
        p
        for p in check(definition, for_publish=for_publish, organization_id=organization_id)
        if p.blocking
    ]
    if problems:
        raise DefinitionError(problems)
    return normalized(definition)


def export(*, name: str, description: str, definition: dict) -> dict:
    return {
        "porfin_flow": SCHEMA,
        "name": name,
        "description": description,
        "definition": definition,
    }


def parse_import(data, *, organization_id: int | None = None) -> tuple[str, str, dict]:
    """(name, description, definition) from an exported file, or ``DefinitionError``."""
    if not isinstance(data, dict) or "porfin_flow" not in data:
        raise DefinitionError(
            [Problem("", _('This is not a Porfin flow export (no "porfin_flow" key).'))]
        )
    if data["porfin_flow"] != SCHEMA:
        raise DefinitionError(
            [
                Problem(
                    "",
                    _("Unsupported flow schema version %(v)s (this Porfin reads %(s)d).")
                    % {"v": data["porfin_flow"], "s": SCHEMA},
                )
            ]
        )
    name = str(data.get("name") or "").strip()[:120]
    if not name:
        raise DefinitionError([Problem("", _("The flow has no name."))])
    definition = validated(
        data.get("definition"), for_publish=True, organization_id=organization_id
    )
    return name, str(data.get("description") or "")[:500], definition


def graph(definition: dict) -> tuple[dict[str, dict], dict[tuple[str, str], str]]:
    """(nodes by id, {(node, port): next node}) for the runtime."""
    by_id = {n["id"]: n for n in definition["nodes"]}
    edges = {(e["from"], e["port"]): e["to"] for e in definition["edges"]}
    return by_id, edges
