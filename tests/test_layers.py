"""The house's import direction: the kernel at the bottom, ``config`` on top, every arrow down.

kernel ← accounts ← integrations ← inbox ← assistants ← campaigns ← (flows, appointments) ←
reports ← config. Apps at one level (flows, appointments) never import each other; they and any
app below reach higher code only through registries (router handlers, assistant tools, flow
node types, signals). The test reads every module's imports, at module level and inside
functions alike, and fails on an upward import or a cycle between modules.
"""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEVELS = {
    "kernel": 0,
    "accounts": 1,
    "integrations": 2,
    "inbox": 3,
    "assistants": 4,
    "campaigns": 5,
    "flows": 6,
    "appointments": 6,
    "reports": 7,
    "config": 8,
}


def _modules() -> dict[str, Path]:
    modules = {}
    for package in LEVELS:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(path: Path, *, module_level_only: bool) -> list[tuple[int, str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def test_no_module_imports_a_higher_app():
    upward = []
    for name, path in _modules().items():
        own = name.split(".")[0]
        for line, module, _names in _imports(path, module_level_only=False):
            top = module.split(".")[0]
            if top in LEVELS and top != own and LEVELS[top] >= LEVELS[own]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert upward == [], "Imports that point up (or sideways):\n" + "\n".join(upward)


def test_no_import_cycles_between_modules():
    modules = _modules()
    graph = defaultdict(set)
    for name, path in modules.items():
        for _line, module, names in _imports(path, module_level_only=True):
            for target in [module, *(f"{module}.{n}" for n in names)]:
                if target in modules and target != name:
                    graph[name].add(target)
    cycles, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(modules):
        if node not in index:
            visit(node)
    assert cycles == [], f"Modules that import each other: {cycles}"
