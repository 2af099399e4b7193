"""Architecture: no import cycle among the service's modules, and the dependency direction
api -> actions -> providers (grimp builds the import graph, TYPE_CHECKING imports included)."""

from __future__ import annotations

import grimp
import pytest


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("service")


def test_no_import_cycle_among_service_modules(graph):
    """Finding (issue #16, taken here): service.actions.idempotency, service.actions.ledger and service.db
    imported each other in a circle."""
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain:
                cycles.add(" -> ".join((module, *chain)))
    assert cycles == set()


LAYERS = ("service.api", "service.actions", "service.providers")  # each may import only those after it


def _layer(module: str) -> int | None:
    for rank, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return None


def test_dependencies_go_one_way_api_actions_providers(graph):
    wrong = []
    for module in graph.modules:
        rank = _layer(module)
        if rank is None:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            other = _layer(imported)
            if other is not None and other < rank:
                wrong.append(f"{module} -> {imported}")
    assert wrong == []


def test_providers_never_import_the_web_framework():
    external = grimp.build_graph("service", include_external_packages=True)
    for module in (m for m in external.modules if _layer(m) == 2):
        imported = external.find_modules_directly_imported_by(module)
        assert not {m for m in imported if m.split(".")[0] in ("flask", "connexion", "starlette")}, module


def test_providers_never_import_the_actions(graph):
    """The runner hands a guard down (service.providers.http.UnsafeCallGuard); a provider never reaches up."""
    wrong = [f"{m} -> {i}" for m in graph.modules if _layer(m) == 2
             for i in graph.find_modules_directly_imported_by(m) if i.startswith("service.actions")]
    assert wrong == []


#: where a module-level ContextVar may live: request-scoped state of the HTTP layer, the log's request id and
#: the runtime of the current request; everything else gets what it needs handed down explicitly
CONTEXTVAR_HOMES = ("service/logs.py", "service/runtime.py", "service/api/")


def test_module_level_context_vars_only_in_the_request_layers():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    wrong = []
    for path in sorted((root / "service").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(CONTEXTVAR_HOMES):
            continue
        for node in ast.parse(path.read_text()).body:  # module level only
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if isinstance(value, ast.Call) and ast.unparse(value.func).split(".")[-1] == "ContextVar":
                wrong.append(f"{rel}:{node.lineno}")
    assert wrong == []


MAX_LINES = 600  # the developers' guide: no file over ~600 lines in service/ (outside service/sandbox/) and bench/


def test_no_file_over_600_lines_outside_the_simulators():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = [p for folder in ("service", "bench") for p in (root / folder).rglob("*.py")
             if "sandbox" not in p.relative_to(root).parts]
    long = {str(p.relative_to(root)): n for p in files if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert len(files) > 100 and long == {}
