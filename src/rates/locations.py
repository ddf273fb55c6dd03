"""Finding locations by what a person types: ports and regions by code, slug or name.

Feeds the lane page's pickers. Each match carries what a person needs to tell similar names
apart: whether it is a port or a region, its parent region and how deep it sits in the tree.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import psycopg

from rates.errors import InvalidRequest
from rates.query import UNMERGED_BATCHES

MAX_QUERY_CHARS = 100
DEFAULT_MATCHES = 10
MAX_MATCHES = 50
# The example lane spans this many days, ending at the latest day with prices.
EXAMPLE_LANE_DAYS = 31

# Exact matches first, then prefixes, then matches anywhere; shallow before deep (a whole
# region before its parts, a region before its ports), then by code.
SEARCH_SQL = """
WITH RECURSIVE tree AS (
    SELECT slug, name, parent_slug, 0 AS depth FROM regions WHERE parent_slug IS NULL
    UNION ALL
    SELECT child.slug, child.name, child.parent_slug, tree.depth + 1
    FROM regions child
    JOIN tree ON child.parent_slug = tree.slug
),
locations AS (
    SELECT 'region' AS kind, slug AS code, name, parent_slug, depth FROM tree
    UNION ALL
    SELECT 'port', ports.code, ports.name, ports.parent_slug, tree.depth + 1
    FROM ports
    JOIN tree ON tree.slug = ports.parent_slug
)
SELECT locations.kind, locations.code, locations.name, locations.parent_slug,
       parent.name AS parent_name, locations.depth
FROM locations
LEFT JOIN regions parent ON parent.slug = locations.parent_slug
WHERE locations.code ILIKE %(anywhere)s ESCAPE '\\'
   OR locations.name ILIKE %(anywhere)s ESCAPE '\\'
ORDER BY CASE
             WHEN lower(locations.code) = lower(%(q)s) THEN 0
             WHEN lower(locations.name) = lower(%(q)s) THEN 1
             WHEN locations.code ILIKE %(prefix)s ESCAPE '\\' THEN 2
             WHEN locations.name ILIKE %(prefix)s ESCAPE '\\' THEN 3
             ELSE 4
         END,
         locations.depth,
         locations.code
LIMIT %(limit)s
"""

# The first two top-level regions and the latest day with prices. The latest day comes from
# one index probe per known route (the newest merged daily total of each), not a scan of
# route_days, and from the rows of batches not merged yet.
EXAMPLE_LANE_SQL = f"""
SELECT
    (SELECT slug FROM regions WHERE parent_slug IS NULL ORDER BY slug LIMIT 1) AS origin,
    coalesce(
        (SELECT slug FROM regions WHERE parent_slug IS NULL ORDER BY slug OFFSET 1 LIMIT 1),
        (SELECT slug FROM regions WHERE parent_slug IS NULL ORDER BY slug LIMIT 1)
    ) AS destination,
    greatest(
        (SELECT max(newest.day)
         FROM routes
         CROSS JOIN LATERAL (
             SELECT day FROM route_days
             WHERE route_days.batch_id IS NULL
               AND route_days.orig_code = routes.orig_code
               AND route_days.dest_code = routes.dest_code
             ORDER BY day DESC
             LIMIT 1
         ) AS newest),
        (SELECT max(day) FROM route_days WHERE batch_id = ANY ({UNMERGED_BATCHES}))
    ) AS last_day
"""


@dataclass(frozen=True)
class LocationSearch:
    """A validated search: the text to look for and how many matches to return."""

    q: str
    limit: int

    @classmethod
    def parse(cls, *, q: str | None, limit: str | None) -> LocationSearch:
        """Checks raw query parameters, raising InvalidRequest naming the bad one."""
        text = (q or "").strip()
        if not text:
            raise InvalidRequest(
                "q is required: part of a port code, region slug or name",
                details={"parameter": "q"},
            )
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidRequest(
                f"q is {len(text)} characters long; at most {MAX_QUERY_CHARS} are allowed",
                details={"parameter": "q"},
            )
        if any(unicodedata.category(char) == "Cc" for char in text):
            raise InvalidRequest(
                "q must not contain control characters", details={"parameter": "q"}
            )
        return cls(q=text, limit=_parse_limit(limit))


def _parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_MATCHES
    if not value.isdigit() or not 1 <= int(value) <= MAX_MATCHES:
        raise InvalidRequest(
            f"limit must be a whole number from 1 to {MAX_MATCHES}, got {value!r}",
            details={"parameter": "limit"},
        )
    return int(value)


@dataclass(frozen=True)
class Location:
    kind: Literal["port", "region"]
    code: str  # port code or region slug: what /rates takes as origin or destination
    name: str
    parent: str | None
    parent_name: str | None
    depth: int  # 0 for a top-level region; a sub-region or port sits one below its parent


@dataclass(frozen=True)
class ExampleLane:
    origin: str
    destination: str
    date_from: date
    date_to: date


def _like_pattern(text: str) -> str:
    """``text`` as literal characters of a LIKE pattern: slugs are full of ``_``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_locations(
    conn: psycopg.AsyncConnection[Any], search: LocationSearch
) -> list[Location]:
    """Ports and regions whose code, slug or name contains the text, best matches first."""
    literal = _like_pattern(search.q)
    cursor = await conn.execute(
        SEARCH_SQL,
        {
            "q": search.q,
            "prefix": f"{literal}%",
            "anywhere": f"%{literal}%",
            "limit": search.limit,
        },
    )
    return [Location(*row) for row in await cursor.fetchall()]


async def fetch_example_lane(conn: psycopg.AsyncConnection[Any]) -> ExampleLane | None:
    """A lane to show before anyone has asked for one; None while the database holds no prices."""
    cursor = await conn.execute(EXAMPLE_LANE_SQL)
    row = await cursor.fetchone()
    if row is None or row[0] is None or row[2] is None:
        return None
    origin, destination, last_day = row
    return ExampleLane(
        origin=origin,
        destination=destination,
        date_from=last_day - timedelta(days=EXAMPLE_LANE_DAYS - 1),
        date_to=last_day,
    )
