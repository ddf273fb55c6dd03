"""The answer cache's bound: least recently used answers go first, and the total stays under
the limit."""

from __future__ import annotations

from starlette.responses import Response

from rates.api.answers import AnswerCache, KeptAnswer


def answer(version: int, body_bytes: int) -> KeptAnswer:
    return KeptAnswer.of(version, Response(b"x" * body_bytes, media_type="application/json"))


def test_the_least_recently_used_answer_is_dropped_first() -> None:
    one = answer(1, 1000)
    cache = AnswerCache(max_bytes=2 * one.size)
    cache.keep("a", one)
    cache.keep("b", answer(1, 1000))
    assert cache.get("a") == one  # "a" is now the most recently used
    cache.keep("c", answer(1, 1000))
    assert cache.get("b") is None
    assert cache.get("a") == one and cache.get("c") is not None
    assert cache.bytes == 2 * one.size <= cache.max_bytes


def test_a_new_answer_replaces_the_old_one_and_too_large_ones_are_not_kept() -> None:
    cache = AnswerCache(max_bytes=10_000)
    cache.keep("a", answer(1, 1000))
    newer = answer(2, 2000)
    cache.keep("a", newer)
    assert len(cache) == 1 and cache.get("a") == newer and cache.bytes == newer.size
    cache.keep("a", answer(3, 20_000))
    assert len(cache) == 0 and cache.bytes == 0


def test_a_kept_answer_keeps_its_own_headers_and_takes_the_request_s_cache_headers() -> None:
    kept = KeptAnswer.of(
        7,
        Response(b"day\n", media_type="text/csv", headers={"Content-Disposition": "attachment"}),
    )
    response = kept.response({"ETag": 'W/"7-csv"'})
    assert response.body == b"day\n"
    assert response.headers["content-disposition"] == "attachment"
    assert response.headers["etag"] == 'W/"7-csv"'
    assert response.headers["content-length"] == "4"
    assert response.headers["content-type"].startswith("text/csv")
