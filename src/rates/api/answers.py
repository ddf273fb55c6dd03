"""Answers kept per API process, each with the data version it is of.

A kept answer is reused only after the database has said, in one short statement, that its
version is still the current one: a batch that counted or was reverted since makes it stale.
So a kept answer is never older than a fresh one would be, on the primary or on a replica, and
no notification can arrive late. Only questions asked before pay that statement; a question
asked for the first time goes straight to its rates statement."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, NamedTuple

from starlette.responses import Response

# What an entry costs beyond its body, rounded up: tracemalloc measured ~330 bytes of entry
# and bookkeeping beside a JSON body, ~730 beside a CSV one (its file name header), and the
# query key takes ~200 more.
_ENTRY_OVERHEAD_BYTES = 1024
# Set by the response itself on every answer, so not kept.
_OWN_HEADERS = ("content-length", "content-type")


class KeptAnswer(NamedTuple):
    """A rendered answer without its cache headers (they depend on the request)."""

    data_version: int
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, data_version: int, response: Response) -> KeptAnswer:
        return cls(
            data_version=data_version,
            body=bytes(response.body),
            media_type=response.media_type or "application/octet-stream",
            headers=tuple(
                (name, value)
                for name, value in response.headers.items()
                if name not in _OWN_HEADERS
            ),
        )

    def response(self, headers: dict[str, str]) -> Response:
        return Response(
            self.body, media_type=self.media_type, headers={**dict(self.headers), **headers}
        )

    @property
    def size(self) -> int:
        return len(self.body) + _ENTRY_OVERHEAD_BYTES


class AnswerCache:
    """The most recently used answers, up to ``max_bytes`` in all (0: none are kept).

    An OrderedDict in least-recently-used order (the recipe in Python's documentation); one
    event loop per process uses it, so it needs no lock. Keys and answers are kept as plain
    tuples of plain values, which the garbage collector stops tracking: 20,000 answers kept as
    objects made each full collection 6.8 ms longer, a pause for every request in flight (the
    start-up heap is frozen against the same pauses, see api/server.py); as tuples, 1.4 ms."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._answers: OrderedDict[Hashable, tuple[Any, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._answers)

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def get(self, key: Hashable) -> KeptAnswer | None:
        kept = self._answers.get(key)
        if kept is None:
            return None
        self._answers.move_to_end(key)
        return KeptAnswer._make(kept)

    def keep(self, key: Hashable, answer: KeptAnswer) -> None:
        """Keeps the answer in place of the key's older one, dropping the least recently used
        answers until all fit; an answer larger than the whole cache is not kept."""
        self._drop(key)
        if answer.size > self.max_bytes:
            return
        self._answers[key] = tuple(answer)
        self.bytes += answer.size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._answers)))

    def _drop(self, key: Hashable) -> None:
        dropped = self._answers.pop(key, None)
        if dropped is not None:
            self.bytes -= KeptAnswer._make(dropped).size
