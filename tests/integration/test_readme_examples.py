"""The README's examples work on the default demo data, as a new user meets them."""

from __future__ import annotations

import re

import psycopg

from rates.db.demo import DemoSpec, generate_demo
from tests.conftest import REPO_ROOT


def test_the_batch_example_uses_ports_of_the_demo_data(database_url: str) -> None:
    """Every port code in the README's example batch exists in `rates up`'s demo data, so
    the example is accepted instead of rejected as unknown ports."""
    readme = (REPO_ROOT / "README.md").read_text()
    example = re.search(r"printf 'orig_code,dest_code,day,price\\n(.*?)' > batch\.csv", readme)
    assert example, "the README's batch example is missing"
    rows = [line.split(",") for line in example.group(1).split("\\n") if line]
    codes = {code for row in rows for code in row[:2]}
    with psycopg.connect(database_url, autocommit=True) as conn:
        generate_demo(conn, DemoSpec())
        known = {code for (code,) in conn.execute("SELECT code FROM ports").fetchall()}
    assert codes and codes <= known, codes - known
