"""The import rules of docs/architecture.md, checked on the source: no cycle, the read
side never reaches the write service, the domain imports nothing outside it, doors are
imported by no other module, and only the command line imports the tools."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Installed package → folder (pyproject.toml [tool.setuptools.package-dir]).
FOLDERS = {"ticketflow": "ticketflow", "ticketflow.domain": "domain",
           "ticketflow.schemas": "schemas", "ticketflow.projections": "projections",
           "ticketflow.consumers": "consumers", "ticketflow.producers": "producers",
           "ticketflow.console": "ticketflow/console", "ticketflow.http": "ticketflow/http",
           "ticketflow.tools": "ticketflow/tools"}
WRITE_SERVICE = "ticketflow.application"
#: What the read side is: the log and its readers. None of it may import the write
#: service, directly or through another module.
READ_SIDE = ("ticketflow.event_log", "ticketflow.policy_store", "ticketflow.store",
             "ticketflow.queries", "ticketflow.verification", "ticketflow.verification_copies",
             "ticketflow.export", "ticketflow.snapshots", "ticketflow.projections.",
             "ticketflow.producers.relay", "ticketflow.producers.sdk",
             "ticketflow.consumers.projections", "ticketflow.audit_log",
             "ticketflow.checkpoint_verification", "ticketflow.checkpoints", "ticketflow.bundles",
             "ticketflow.answers", "ticketflow.notifications", "ticketflow.webhooks",
             "ticketflow.consumers.webhooks", "ticketflow.consumers.group")


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """The project modules a module imports when it is loaded: its module-level
    statements, with those nested in `if`, `try`, `with`, loops and class bodies (an
    import under `if TYPE_CHECKING:` or inside a function is not followed)."""
    return _imported(loaded(ast.parse(path.read_text()).body), known)


def every_import(path: Path, known: set[str]) -> set[str]:
    """The project modules a module imports at all: inside functions too (an import
    that waits until it is called), but not under `if TYPE_CHECKING:`."""
    def below(node: ast.AST) -> Iterator[ast.AST]:
        children = (node.orelse if isinstance(node, ast.If) and _type_checking(node)
                    else list(ast.iter_child_nodes(node)))
        for child in children:
            yield child
            yield from below(child)

    return _imported(below(ast.parse(path.read_text())), known)


def loaded(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements run when a module is loaded: `body` and the blocks nested in it,
    but not a function's body nor a `TYPE_CHECKING` block."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and _type_checking(node):
            yield from loaded(node.orelse)
            continue
        yield node
        blocks = [getattr(node, name, []) for name in ("body", "orelse", "finalbody")]
        blocks += [inner.body for inner in [*getattr(node, "handlers", []),
                                            *getattr(node, "cases", [])]]
        for block in blocks:
            yield from loaded(block)


def _type_checking(node: ast.If) -> bool:
    return ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _imported(nodes: Iterable[ast.AST], known: set[str]) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in known}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) for name, path in found.items()}


def reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def test_the_import_graph_has_no_cycle(graph: dict[str, set[str]]) -> None:
    cycles = sorted(name for name in graph if name in reach(graph, name))
    assert cycles == []


def test_no_cycle_hides_in_a_function_or_a_type_checking_block() -> None:
    """A cycle closed by an import that waits until it is called, or one only the type
    checker follows, is still two modules that need each other."""
    found = modules()
    everything = {name: _imported(ast.walk(ast.parse(path.read_text())), set(found))
                  for name, path in found.items()}
    cycles = sorted(name for name in everything if name in reach(everything, name))
    assert cycles == []


def test_the_read_side_never_imports_the_write_service(graph: dict[str, set[str]]) -> None:
    read_side = [name for name in graph if name.startswith(READ_SIDE)]
    assert "ticketflow.queries" in read_side and "ticketflow.projections.runner" in read_side
    assert {name: WRITE_SERVICE in reach(graph, name) for name in read_side} == \
        dict.fromkeys(read_side, False)


#: The value types the domain's typed payloads are made of (ids, instants, text), and
#: the character rules they check: pure, no I/O.
DOMAIN_MAY_USE = ("ticketflow.domain", "ticketflow.schemas.fields", "ticketflow.schemas.characters")


def test_the_domain_imports_nothing_outside_the_domain(graph: dict[str, set[str]]) -> None:
    outside = {name: sorted(other for other in graph[name]
                            if not other.startswith(DOMAIN_MAY_USE))
               for name in graph if name.startswith("ticketflow.domain.")}
    assert {name: found for name, found in outside.items() if found} == {}


def inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


#: Doors: adapters that take requests in. Nothing of the engine imports a door. The
#: HTTP API serves the console (SPEC §9: `/ui/`), so its application, and it alone,
#: imports the console; the console imports nothing of the HTTP API (it is handed its
#: services).
HTTP, CONSOLE, SERVES_THE_CONSOLE = "ticketflow.http", "ticketflow.console", "ticketflow.http.app"


def test_the_http_door_is_imported_by_no_other_module(graph: dict[str, set[str]]) -> None:
    """The HTTP API is a door like the command line: it may import the engine, and
    nothing of the engine imports it (the command line starts it from inside a handler)."""
    assert "ticketflow.http.routes" in graph
    importers = {name for name, imported in graph.items()
                 if any(inside(other, HTTP) for other in imported)}
    assert {name for name in importers if not inside(name, HTTP)} == set()
    assert not any(other.startswith("ticketflow.cli") for name in graph
                   if inside(name, HTTP) for other in graph[name])


def test_only_the_http_app_imports_the_console_a_door(graph: dict[str, set[str]]) -> None:
    assert any(name.startswith(CONSOLE + ".") for name in graph)
    importers = {name for name, found in graph.items()
                 if not inside(name, CONSOLE) and any(inside(o, CONSOLE) for o in found)}
    assert importers == {SERVES_THE_CONSOLE}


def test_the_console_decides_nothing_it_reaches_the_engine_through_its_services(
        graph: dict[str, set[str]]) -> None:
    """The console's pages read through the query layer and write through the write
    service they are handed; no module of the console touches the read models' tables,
    the event store or the aggregate."""
    reached = set().union(*(graph[n] for n in graph if inside(n, CONSOLE)))
    assert not {n for n in reached if n.startswith(("ticketflow.projections.runner",
                                                    "ticketflow.projections.db",
                                                    "ticketflow.domain.ticket",
                                                    "ticketflow.event_log",
                                                    "ticketflow.bootstrap"))}


#: Tooling is not the engine (the demo and its workload, the local Kafka broker, the
#: soak, the test workers, the AsyncAPI writer). Of the package's modules only the
#: command line imports it, to run `demo` and `kafka start|stop|status`; outside the
#: package, the tests and the benchmarks do.
TOOLS, TOOL_USERS = "ticketflow.tools", {"ticketflow.cli"}


def test_the_engine_does_not_import_the_tools_only_the_command_line_does() -> None:
    found = modules()
    assert "ticketflow.tools.workload" in found and "ticketflow.tools.kafka_broker" in found
    importers = {name for name, path in found.items() if not inside(name, TOOLS)
                 and any(inside(other, TOOLS) for other in every_import(path, set(found)))}
    assert importers == TOOL_USERS
