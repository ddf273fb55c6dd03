"""The hashed lock files in requirements/ match pyproject.toml, and every install uses them.

`scripts/lock --check` runs as a real process, on the repository and on copies of it whose
pyproject.toml was edited the way a developer adding a dependency would.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_SCRIPT = REPO_ROOT / "scripts" / "lock"


def run_check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "lock"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def copy_of_repo(tmp_path: Path) -> Path:
    """pyproject.toml, requirements/ and scripts/lock copied into a scratch tree."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(LOCK_SCRIPT, tmp_path / "scripts" / "lock")
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO_ROOT / "requirements", tmp_path / "requirements")
    return tmp_path


def test_lock_files_match_pyproject() -> None:
    """The committed lock files were resolved from the current pyproject.toml and *.in files."""
    result = run_check(REPO_ROOT)
    assert result.returncode == 0, result.stderr


def test_a_new_runtime_dependency_fails_the_check_and_names_the_fix(copy_of_repo: Path) -> None:
    """Adding a runtime dependency without re-locking fails, naming the stale files and telling
    the developer to run scripts/lock."""
    pyproject = copy_of_repo / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(
        text.replace("\ndependencies = [\n", '\ndependencies = [\n    "attrs>=23",\n')
    )
    assert pyproject.read_text() != text

    result = run_check(copy_of_repo)

    assert result.returncode != 0
    assert "run scripts/lock" in result.stderr
    assert "requirements/image.txt" in result.stderr
    assert "requirements/dev.txt" in result.stderr
    assert "pins no version of attrs" in result.stderr


def test_a_new_dev_dependency_fails_only_the_dev_lock(copy_of_repo: Path) -> None:
    """A dev-only addition makes dev.txt stale and leaves the image's lock valid."""
    pyproject = copy_of_repo / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace("\ndev = [\n", '\ndev = [\n    "hypothesis>=6",\n'))
    assert pyproject.read_text() != text

    result = run_check(copy_of_repo)

    assert result.returncode != 0
    assert "requirements/dev.txt" in result.stderr
    assert "requirements/image.txt" not in result.stderr


def test_diverging_pins_between_image_and_dev_locks_fail(copy_of_repo: Path) -> None:
    """dev.txt must pin the image's versions: tests run what production runs."""
    dev = copy_of_repo / "requirements" / "dev.txt"
    dev.write_text(re.sub(r"^fastapi==\S+", "fastapi==0.0.1", dev.read_text(), flags=re.MULTILINE))

    result = run_check(copy_of_repo)

    assert result.returncode != 0
    assert "dev.txt pins fastapi==0.0.1 but image.txt pins" in result.stderr


def test_every_lock_entry_is_pinned_and_hashed() -> None:
    """Each requirement in each lock file is `name==version` followed by sha256 hashes."""
    for lock in sorted((REPO_ROOT / "requirements").glob("*.txt")):
        entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text().split("\n", 4)[-1].strip())
        assert entries, lock
        for entry in entries:
            assert re.match(r"^[A-Za-z0-9._-]+(\[[\w,]+\])?==[^\s;]+", entry), (lock.name, entry)
            assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), (lock.name, entry)


def test_bootstrap_installs_from_the_hashed_locks_only() -> None:
    """scripts/bootstrap checks the locks first, installs the dev and build locks in
    --require-hashes mode, then the project itself with --no-deps and no build isolation."""
    bootstrap = (REPO_ROOT / "scripts" / "bootstrap").read_text()
    pip_lines = [line.strip() for line in bootstrap.splitlines() if "pip install" in line]
    assert pip_lines == [
        ".venv/bin/python -m pip install --quiet --require-hashes"
        " -r requirements/dev.txt -r requirements/build.txt",
        ".venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .",
        ".venv-checkov/bin/python -m pip install --quiet --require-hashes"
        " -r requirements/checkov.txt",
    ]
    assert bootstrap.index("scripts/lock --check") < bootstrap.index("pip install")
