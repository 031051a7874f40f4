"""Packaging: the folder map reaches every package and the package data matches files.

A wheel only contains what ``setup.py`` declares; these checks fail on the checkout,
before a broken wheel is built (CI then installs the wheel and runs the suite on it).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _setup_module():
    spec = importlib.util.spec_from_file_location("ui2c_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not __main__: defines the map, builds nothing
    return module


def test_every_python_folder_is_a_discovered_package():
    setup = _setup_module()
    dirs = set(setup.package_dirs().values())
    for folder in setup.FOLDERS.values():
        for here, subdirs, files in os.walk(ROOT / folder):
            subdirs[:] = [d for d in subdirs if d != "__pycache__"]
            rel = Path(here).relative_to(ROOT).as_posix()
            if any(f.endswith(".py") for f in files):
                assert rel in dirs, f"{rel}/ holds Python files but is not a package (no __init__.py?)"


# Files under package folders that deliberately stay out of the wheel: measured results
# and the C++ runtime's sources (built with CMake, scripts/build_cpp.sh).
NOT_SHIPPED = ("benchmarks/RESULTS.md", "benchmarks/results/**/*", "runtime/cpp/**/*")


def test_every_data_file_is_shipped_or_deliberately_not():
    """A new asset or kernel source must be added to PACKAGE_DATA (or NOT_SHIPPED)."""
    setup = _setup_module()
    dirs = setup.package_dirs()
    shipped = {p for name, patterns in setup.PACKAGE_DATA.items() for pattern in patterns
               for p in (ROOT / dirs[name]).glob(pattern)}
    excluded = {p for pattern in NOT_SHIPPED for p in ROOT.glob(pattern)}
    for folder in setup.FOLDERS.values():
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".pyc", ".so") and "__pycache__" not in path.parts:
                assert path in shipped | excluded, f"{path.relative_to(ROOT)} is neither package data nor NOT_SHIPPED"


def test_backends_are_packaged():
    assert _setup_module().package_dirs()["ui2c.runtime.backends"] == "runtime/backends"


def test_package_data_patterns_match_files():
    setup = _setup_module()
    dirs = setup.package_dirs()
    for package, patterns in setup.PACKAGE_DATA.items():
        for pattern in patterns:
            assert list((ROOT / dirs[package]).glob(pattern)), f"{package}: {pattern} matches nothing"


def test_python_dash_m_from_the_checkout_imports_the_ui2c_under_test():
    """``python -m`` puts the checkout root first on ``sys.path``, where the bare ``ui2c/``
    folder lacks the sub-packages; after conftest.py the import must find the package
    this process tests (the wheel, in CI), sub-packages included."""
    import subprocess
    import sys

    import ui2c

    code = ("import runpy; runpy.run_path('tests/conftest.py'); "  # python -c starts sys.path with the cwd, as -m does
            "import ui2c, ui2c.runtime.session; print(ui2c.__file__)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ui2c.__file__


@pytest.mark.skipif(not os.environ.get("UI2C_EXPECT_INSTALLED"), reason="set by .ci/run, which tests the wheel")
def test_the_installed_wheel_is_under_test():
    """CI must not pass by importing the checkout: the package comes from site-packages."""
    import ui2c
    import ui2c.runtime.backends

    for module in (ui2c, ui2c.runtime.backends):  # CI's venv may sit inside the checkout (build/ci)
        assert "site-packages" in Path(module.__file__).resolve().parts, module.__file__


def test_matplotlib_is_only_needed_by_eval_plots():
    """It is an extra (eval, dev): the CLI, the demo and the runtime must not import it."""
    import subprocess
    import sys

    code = ("import sys; from ui2c.cli import build_parser; build_parser(); import ui2c.demo, ui2c.runtime.api; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


LOWER_LAYERS = ("models", "entropy", "plugins", "export", "engines", "training")


def _imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of the ``ui2c`` modules a file imports (relative imports resolved)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from ui2c import runtime`
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "ui2c" or name.startswith("ui2c.")}


def test_imported_modules_sees_every_spelling_of_a_runtime_import(tmp_path):
    source = tmp_path / "x.py"
    for line in ("import ui2c.runtime.api", "from ui2c.runtime import api", "from ui2c import runtime",
                 "from .. import runtime", "from ..runtime.session import Encoder"):
        source.write_text(line + "\n")
        assert any(m.startswith("ui2c.runtime") for m in _imported_modules(source, "ui2c.engines")), line


@pytest.mark.parametrize("folder", LOWER_LAYERS)
def test_lower_layers_never_import_the_runtime(folder):
    """The runtime builds on networks, entropy coding, exports and engines, never the
    other way round: an import of ``ui2c.runtime`` from below would be a cycle."""
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        package = ".".join(("ui2c", *parts[:-1]))
        if any(m.startswith("ui2c.runtime") for m in _imported_modules(path, package)):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
