"""The package layout's rules, read from the source with ast (nothing is imported or run)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "omni_mer"


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, at any depth (function-level imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # `from omni_mer import cli` names the CLI as an attribute of the package
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def _is_cli(module: str) -> bool:
    return module == "omni_mer.cli" or module.startswith("omni_mer.cli.")


def test_no_package_module_imports_the_cli():
    cli_dir = PACKAGE / "cli"
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if cli_dir in path.parents:
            continue
        for line, module in _imported_modules(path):
            if _is_cli(module):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not offenders, "the CLI is the entry point, not a dependency of the package:\n" + "\n".join(offenders)


def test_no_relative_imports():
    # absolute imports only: a module's imports read the same wherever it is moved to
    rel = [f"{p.relative_to(PACKAGE.parent)}:{line}" for p in sorted(PACKAGE.rglob("*.py"))
           for line, module in _imported_modules(p) if module.startswith(".")]
    assert not rel, rel


def test_the_checker_sees_a_cli_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from omni_mer.cli import emit\n\nfrom omni_mer import cli\nimport omni_mer.cli.x\n")
    assert {line for line, m in _imported_modules(probe) if _is_cli(m)} == {2, 4, 5}


def test_the_package_needs_nothing_of_the_tests():
    # the wheel ships omni_mer/ alone; scikit-image is a test dependency (pyproject's [test] extra)
    bad = [f"{p.relative_to(PACKAGE.parent)}:{line} imports {module}" for p in sorted(PACKAGE.rglob("*.py"))
           for line, module in _imported_modules(p) if module.split(".")[0] in ("tests", "skimage")]
    assert not bad, bad
