"""`rates env`: isolated copies side by side; taking one down leaves the other running."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import SAMPLE_DUMP
from tests.e2e.conftest import rates_env


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="rates-envs-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    for env in (root / "envs").glob("*"):
        subprocess.run(
            [sys.executable, "-m", "rates", "env", "down", env.name, "--data-dir", str(root)],
            env=rates_env(),
            capture_output=True,
        )
    shutil.rmtree(root, ignore_errors=True)


def rates(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rates", *args, "--data-dir", str(data_dir)],
        env=rates_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def url_of(output: subprocess.CompletedProcess[str]) -> str:
    assert output.returncode == 0, output.stderr
    match = re.search(r"environment \w+: (http://127\.0\.0\.1:\d+)", output.stderr)
    assert match, output.stderr
    return match.group(1)


@pytest.mark.skipif(not SAMPLE_DUMP.exists(), reason="sample dump not present")
def test_two_copies_run_side_by_side_and_one_goes_down_alone(data_dir: Path) -> None:
    """a (demo data) and b (10% of the sample) answer from their own data; down a keeps b."""
    a = url_of(rates("env", "up", "a", data_dir=data_dir))
    b = url_of(
        rates("env", "up", "b", "--dump", str(SAMPLE_DUMP), "--sample", "0.1", data_dir=data_dir)
    )
    assert a != b
    demo_query = {
        "date_from": "2021-01-01",
        "date_to": "2021-01-31",
        "origin": "area_1",
        "destination": "area_2",
    }
    sample_query = {
        "date_from": "2021-01-01",
        "date_to": "2021-01-31",
        "origin": "china_main",
        "destination": "northern_europe",
    }
    assert httpx.get(f"{a}/rates", params=demo_query).status_code == 200
    assert httpx.get(f"{a}/rates", params=sample_query).status_code == 404
    assert httpx.get(f"{b}/rates", params=demo_query).status_code == 404
    sampled = sum(r["count"] for r in httpx.get(f"{b}/rates", params=sample_query).json()["rates"])
    assert 0 < sampled < 56_689 * 0.2  # roughly a tenth of the sample's prices

    listing = rates("env", "list", data_dir=data_dir)
    assert listing.stdout.count("running") == 2

    assert rates("env", "down", "a", data_dir=data_dir).returncode == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{a}/healthz", timeout=2)
    assert not (data_dir / "envs" / "a").exists()
    assert httpx.get(f"{b}/readyz").status_code == 200
    assert "a " not in rates("env", "list", data_dir=data_dir).stdout


def test_bad_names_and_unknown_environments_are_clear_errors(data_dir: Path) -> None:
    """Names are validated; taking down an unknown copy says so."""
    bad = rates("env", "up", "../escape", data_dir=data_dir)
    assert bad.returncode == 1 and "environment name" in bad.stderr
    missing = rates("env", "down", "nope", data_dir=data_dir)
    assert missing.returncode == 1 and "no environment nope" in missing.stderr
