"""The layout rules of ``docs/architecture.md``, checked on the source itself.

- Dependencies point down only: ``api -> generation -> retrieval -> index``. Every import
  counts, including the lazy ones inside functions (they are how heavy modules load late, and
  they must obey the same rule).
- No library file over 500 lines; no function body over 60 lines unless a ``# long:`` comment
  on its first lines says why (the size of the good codebases we imitate: files of a few
  hundred lines, functions of a screen).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("index", "retrieval", "generation", "api")  # bottom to top
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60


def _library_files() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")
                  if "migrations" not in p.parts)


def _imported_packages(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", _library_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    layer = path.relative_to(ROOT).parts[0]
    higher = set(LAYERS[LAYERS.index(layer) + 1:])
    wrong = _imported_packages(ast.parse(path.read_text())) & higher
    assert not wrong, f"{path.relative_to(ROOT)} ({layer}) imports the higher layer(s) {sorted(wrong)}"


def test_files_and_functions_stay_small() -> None:
    problems = []
    for path in _library_files():
        text = path.read_text()
        lines = text.splitlines()
        if len(lines) > MAX_FILE_LINES:
            problems.append(f"{path.relative_to(ROOT)}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            body_start = node.body[0].lineno
            length = node.end_lineno - body_start + 1
            head = "\n".join(lines[node.lineno - 1:body_start + 2])
            if length > MAX_FUNCTION_LINES and "# long:" not in head:
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}() has a "
                                f"{length}-line body")
    assert not problems, "split these (or say why not with a '# long:' comment):\n" + "\n".join(problems)


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an upward lazy import inside a function is found."""
    tree = ast.parse("def f():\n    from api.wiring import build_encoder\n    import generation.demo\n")
    assert _imported_packages(tree) == {"api", "generation"}
