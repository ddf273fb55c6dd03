"""A corpus of hostile batches against a real `rates worker`: each ends rejected with line and
field, adds no row, and the worker's peak memory stays under 150 MB.

The big payloads are made at test time; the gzip ones as many small gzip members of one
repeated block, so a 3 GB expansion costs a 3 MB file and milliseconds to write."""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from rates.ingest.formats import Compression, Format
from rates.settings import Settings
from tests.e2e.test_worker import wait_for_status
from tests.ingest_helpers import queue_file, total_prices

HEADER = b"orig_code,dest_code,day,price\n"
GOOD = b"CNSGH,NLRTM,2021-02-01,1000\n"
PEAK_RSS_LIMIT_BYTES = 150 * 1024**2
DECOMPRESSED_LIMIT_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class Hostile:
    name: str
    fmt: Format
    compression: Compression
    line: int
    field: str


def _gzip_repeated(path: Path, head: bytes, block: bytes, times: int) -> None:
    member = gzip.compress(block)
    with path.open("wb") as out:
        out.write(gzip.compress(head))
        for _ in range(times):
            out.write(member)


def _ndjson(**values: object) -> bytes:
    row = {"orig_code": "CNSGH", "dest_code": "NLRTM", "day": "2021-02-01", "price": 5}
    return orjson.dumps({**row, **values}) + b"\n"


def write_payload(case: Hostile, path: Path) -> None:
    if case.name == "nul in a code":
        path.write_bytes(HEADER + GOOD + b"CN\x00GH,NLRTM,2021-02-01,10\n")
    elif case.name == "control characters":
        path.write_bytes(HEADER + b"CNSGH,NLRTM,2021-02-01\x1b[2J\x07,10\n")
    elif case.name == "nul in ndjson":
        path.write_bytes(_ndjson() + _ndjson(dest_code="NL\u0000RTM"))
    elif case.name == "6000-digit price":
        path.write_bytes(HEADER + b"CNSGH,NLRTM,2021-02-01," + b"7" * 6000 + b"\n")
    elif case.name == "6000-digit ndjson price":
        path.write_bytes(_ndjson().replace(b'"price":5', b'"price":' + b"7" * 6000))
    elif case.name == "iso week date":
        path.write_bytes(HEADER + GOOD + GOOD + b"CNSGH,NLRTM,2021-W01-1,10\n")
    elif case.name == "3 GB line from 3 MB of gzip":
        _gzip_repeated(path, HEADER + GOOD, b"x" * 2**20, 3000)
    elif case.name == "past the decompressed limit":
        line = b"y" * (64 * 1024 - 1) + b"\n"  # each line just within the line limit
        _gzip_repeated(path, HEADER, line * 16, DECOMPRESSED_LIMIT_BYTES // 2**20 + 10)
    elif case.name == "200k distinct 1 KB non-dates":
        with path.open("wb") as out:
            out.write(HEADER)
            for i in range(200_000):
                out.write(b"CNSGH,NLRTM," + str(i).encode().rjust(1024, b"d") + b",5\n")
    elif case.name == "gzip cut short":
        whole = gzip.compress(HEADER + GOOD * 50_000)
        path.write_bytes(whole[: len(whole) // 2])
    elif case.name == "bad utf-8 on every line":
        path.write_bytes(HEADER + b"CNSGH,NLRTM,2021-02-01,\xff\xfe\n" * 100_000)
    else:
        raise AssertionError(case.name)


CORPUS = [
    Hostile("nul in a code", "csv", "none", 3, "orig_code"),
    Hostile("control characters", "csv", "none", 2, "day"),
    Hostile("nul in ndjson", "ndjson", "none", 2, "dest_code"),
    Hostile("6000-digit price", "csv", "none", 2, "price"),
    Hostile("6000-digit ndjson price", "ndjson", "none", 1, "row"),
    Hostile("iso week date", "csv", "none", 4, "day"),
    Hostile("3 GB line from 3 MB of gzip", "csv", "gzip", 3, "row"),
    # The header, 4,095 whole lines of 64 KiB, then the limit within line 4,097.
    Hostile("past the decompressed limit", "csv", "gzip", 4097, "file"),
    Hostile("200k distinct 1 KB non-dates", "csv", "none", 2, "day"),
    Hostile("gzip cut short", "csv", "gzip", 0, "file"),  # line: wherever the data ends
    Hostile("bad utf-8 on every line", "csv", "none", 2, "row"),
]


def peak_rss_bytes(pid: int) -> int:
    """The process's high-water mark of resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_every_hostile_batch_ends_rejected_with_line_and_field_in_bounded_memory(
    settings: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """Each batch of the corpus ends `rejected` after one attempt, naming its line and field
    (quoted input escaped, so the report is stored), with no row added; the worker's peak RSS
    over the whole corpus stays under 150 MB."""
    queued = {}
    for number, case in enumerate(CORPUS):
        path = tmp_path / f"hostile-{number}"
        write_payload(case, path)
        queued[case.name] = queue_file(settings, path, case.fmt, case.compression)
        path.unlink()
    worker = start_worker(
        "hostile", RATES_MAX_BATCH_DECOMPRESSED_BYTES=str(DECOMPRESSED_LIMIT_BYTES)
    )
    for case in CORPUS:
        done = wait_for_status(
            settings, queued[case.name], {"succeeded", "rejected", "failed"}, timeout_s=300
        )
        assert done["status"] == "rejected", (case.name, done["attempt_log"])
        assert done["attempts"] == 1, case.name
        assert done["rows"]["inserted"] == 0
        named = [(e["line"], e["field"]) for e in done["report"]["errors"]]
        if case.line:
            assert (case.line, case.field) in named, (case.name, named)
        else:
            assert case.field in {field for _, field in named}, (case.name, named)
        assert "\x00" not in orjson.dumps(done["report"]).decode()
    assert total_prices(settings.conninfo() or "") == 0
    peak = peak_rss_bytes(worker.pid)
    record_property("worker_peak_rss_mb", round(peak / 2**20, 1))
    print(f"worker peak RSS over the hostile corpus: {peak / 2**20:.1f} MB")
    assert peak < PEAK_RSS_LIMIT_BYTES
