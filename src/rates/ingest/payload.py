"""Reading a stored payload within limits, whatever its sender put in it.

The payload is decompressed and cut into lines as it streams, never held whole: a line may be
at most ``max_line_bytes`` long and the decompressed payload at most ``max_total_bytes``, so a
gzip bomb or a line without end costs a bounded amount of memory and time. Breaking a limit, or
a gzip stream that turns out corrupt or cut short, is the sender's problem, not a retryable
error: it raises PayloadProblem naming the line, and the batch is rejected there.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import IO


class PayloadProblem(Exception):
    """The payload breaks a limit or is not what it claims; reading stops at ``line``."""

    def __init__(self, line: int, field: str, reason: str) -> None:
        super().__init__(f"line {line} {field}: {reason}")
        self.line = line
        self.field = field
        self.reason = reason


class PayloadReader:
    """The decompressed payload as a binary stream (``read`` only), counting its bytes and
    lines, raising PayloadProblem past ``max_total_bytes`` or on corrupt gzip. Errors of the
    store itself (network, missing object) pass through unchanged: those are worth a retry."""

    def __init__(self, stored: IO[bytes], compression: str, max_total_bytes: int) -> None:
        self._gzip = compression == "gzip"
        self._stream: IO[bytes] = gzip.GzipFile(fileobj=stored) if self._gzip else stored  # type: ignore[assignment]  # GzipFile is a binary IO
        self._max_total_bytes = max_total_bytes
        self.bytes = 0
        self.newlines = 0

    def read(self, size: int) -> bytes:
        try:
            chunk = self._stream.read(size)
        except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
            if not self._gzip:
                raise
            raise PayloadProblem(self.newlines + 1, "file", f"not valid gzip: {exc}") from None
        self.bytes += len(chunk)
        if self.bytes > self._max_total_bytes:
            within = len(chunk) - (self.bytes - self._max_total_bytes)
            raise PayloadProblem(
                self.newlines + chunk.count(b"\n", 0, within) + 1,
                "file",
                f"the batch decompresses to more than {self._max_total_bytes} bytes "
                "(RATES_MAX_BATCH_DECOMPRESSED_BYTES); the rest was not read",
            )
        self.newlines += chunk.count(b"\n")
        return chunk


def _too_long(line: int, max_line_bytes: int) -> PayloadProblem:
    return PayloadProblem(
        line,
        "row",
        f"line longer than {max_line_bytes} bytes (RATES_MAX_LINE_BYTES); the rest was not read",
    )


def lines(
    stream: PayloadReader, max_line_bytes: int, chunk_bytes: int = 1 << 20
) -> Iterator[bytes]:
    """Lines without their terminators (LF or CRLF), read in large chunks; PayloadProblem as
    soon as a line passes ``max_line_bytes``. An unfinished line is carried over to the next
    chunk, so it is never longer than the limit: the work stays linear in the payload."""
    pending = b""
    number = 0
    while chunk := stream.read(chunk_bytes):
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        for part in parts:
            number += 1
            if len(part) > max_line_bytes:
                raise _too_long(number, max_line_bytes)
            yield part[:-1] if part.endswith(b"\r") else part
        if len(pending) > max_line_bytes:
            raise _too_long(number + 1, max_line_bytes)
    if pending:
        yield pending[:-1] if pending.endswith(b"\r") else pending


def blocks_of_lines(
    stream: PayloadReader, block_bytes: int, max_line_bytes: int
) -> Iterator[bytes]:
    """The payload in blocks of whole lines, each ending in a newline; PayloadProblem once an
    unfinished line passes ``max_line_bytes`` (complete long lines are the caller's to judge)."""
    rest = b""
    while chunk := stream.read(block_bytes):
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if len(rest) > max_line_bytes:
            raise _too_long(stream.newlines + 1, max_line_bytes)
        if cut:
            yield data[:cut]
    if rest:
        yield rest + b"\n"
