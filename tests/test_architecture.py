"""Structure the package promises: no import circles, a torch-free weights manifest, one size rule."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vpscli"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module → the vpscli modules it imports anywhere in its text (function-level imports too: a
    circle hidden inside functions is still a circle)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_in_a_circle():
    graph = _import_graph()
    assert graph["vpscli.weights.store"] >= {
        "vpscli.models.registry",
        "vpscli.weights.manifest",
    }  # it sees imports
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"]
    ]  # and finds circles
    assert _circles(graph) == []


def test_weights_manifest_and_doctor_checks_stay_free_of_torch():
    code = (
        "import sys; from vpscli.weights import read_manifest, default_model, verify_checksums; "
        "verify_checksums(); default_model(); print('torch' in sys.modules)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=PACKAGE.parent
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_one_size_rule():
    """``--size`` is WIDTHxHEIGHT everywhere; every input_size in vps is (H, W); sizes are shown W×H."""
    from vpscli.cli.options import parse_size
    from vpscli.errors import UsageError
    from vpscli.weights import format_size
    from vpscli.weights.store import metadata_input_size

    assert parse_size("448x320") == (320, 448) and format_size((320, 448)) == "448×320"
    assert metadata_input_size({"input_size": "[160, 224]"}) == (160, 224)
    assert metadata_input_size({"input_size": "256x448"}) == (256, 448)  # as older checkpoints wrote it (H×W)
    assert metadata_input_size({}) is None
    with pytest.raises(UsageError, match="WIDTHxHEIGHT"):
        parse_size("448")


#: the longest function body (after its docstring) that needs no reason written next to it
LONGEST_BODY = 65


def test_functions_fit_in_one_sitting():
    """No function in vpscli/ is longer than about 60 lines unless a ``# long:`` comment above it says why."""
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body
            has_doc = isinstance(body[0], ast.Expr) and isinstance(
                getattr(body[0], "value", None), ast.Constant
            )
            first = body[1].lineno if has_doc and len(body) > 1 else body[0].lineno
            first_line = min([node.lineno] + [d.lineno for d in node.decorator_list])
            reason = lines[first_line - 2].strip().startswith("# long:") if first_line >= 2 else False
            if node.end_lineno - first + 1 > LONGEST_BODY and not reason:
                too_long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    assert too_long == []
