"""The linter and type checker the project is configured with (pyproject.toml) pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*module_and_args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *module_and_args], cwd=ROOT,
                          capture_output=True, text=True, check=False)


def test_ruff_is_clean() -> None:
    done = run("ruff", "check", "optirebal", "tests", "benchmarks")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    done = run("mypy")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_docs_build_strictly(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          check=False, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_notebooks_are_valid_nbformat_with_cell_ids(path: Path) -> None:
    """Every notebook validates as it is on disk: a cell without an id is a warning of nbformat
    now and an error in its future versions."""
    import json
    import warnings

    nbformat = pytest.importorskip("nbformat")
    cells = json.loads(path.read_text())["cells"]
    assert all("id" in cell for cell in cells), "run nbformat.validator.normalize on it"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nbformat.validate(nbformat.read(path, as_version=4))
