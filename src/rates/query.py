"""The rates question: average price per day between two ports or regions.

A location is a port code or a region slug; a region stands for every port in it and in all of
its sub-regions, to any depth. The whole answer, including whether each location exists, comes
from one statement, so a reader never sees half of a batch that commits meanwhile. Prices are
read from daily totals only, per region pair between two large regions (``region_days``) and per
route otherwise (``route_days``): a batch counts from the transaction that adds its rows to
those totals, the one that applies it, never from ``prices`` itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg

from rates.days import parse_day
from rates.errors import InvalidRequest, UnknownLocation

# Days with fewer prices than this get a null average: too few to be meaningful.
MIN_PRICES_PER_DAY = 3
_ONE_DAY = timedelta(days=1)

# A route-day has one merged row and one appended row per batch that counts and is not merged
# yet; each kind is read through its own index (migration 0017), the appended ones by batch.
# Merging empties a batch's appended rows before it marks the batch merged, so no row is missed.
UNMERGED_BATCHES = "ARRAY(SELECT id FROM batches WHERE status = 'succeeded' AND NOT merged)"

DAILY_RATES_SQL = f"""
WITH RECURSIVE
origin_regions AS (
    SELECT slug FROM regions WHERE slug = %(origin)s
    UNION
    SELECT child.slug FROM regions child
    JOIN origin_regions parent ON child.parent_slug = parent.slug
),
origin_ports AS (
    SELECT code FROM ports WHERE code = %(origin)s
    UNION
    SELECT code FROM ports WHERE parent_slug IN (SELECT slug FROM origin_regions)
),
destination_regions AS (
    SELECT slug FROM regions WHERE slug = %(destination)s
    UNION
    SELECT child.slug FROM regions child
    JOIN destination_regions parent ON child.parent_slug = parent.slug
),
destination_ports AS (
    SELECT code FROM ports WHERE code = %(destination)s
    UNION
    SELECT code FROM ports WHERE parent_slug IN (SELECT slug FROM destination_regions)
),
-- Between two large regions the daily totals are kept per region pair: one row per day.
large_pair AS (
    SELECT EXISTS (SELECT FROM port_rollups WHERE region = %(origin)s)
       AND EXISTS (SELECT FROM port_rollups WHERE region = %(destination)s) AS yes
),
daily AS (
    SELECT day, total, prices
    FROM region_days
    WHERE (SELECT yes FROM large_pair)
      AND orig_region = %(origin)s AND dest_region = %(destination)s
      AND day BETWEEN %(date_from)s AND %(date_to)s
    UNION ALL
    -- Otherwise: per origin port, its known routes to the destinations asked for, then one
    -- index range scan of route_days per such route over the days asked for: work in
    -- proportion to the data, not to |origins| x |destinations|. OFFSET 0 keeps the planner
    -- from flattening the lateral subqueries into hash joins over whole tables: it cannot
    -- know how few ports the recursive CTEs yield.
    SELECT route_day.day, sum(route_day.total), sum(route_day.prices)
    FROM origin_ports
    CROSS JOIN LATERAL (
        SELECT dest_code FROM routes
        WHERE orig_code = origin_ports.code
          AND dest_code IN (SELECT code FROM destination_ports)
        OFFSET 0
    ) AS route
    CROSS JOIN LATERAL (
        SELECT day, total, prices FROM route_days
        WHERE batch_id IS NULL
          AND orig_code = origin_ports.code AND dest_code = route.dest_code
          AND day BETWEEN %(date_from)s AND %(date_to)s
        UNION ALL
        SELECT day, total, prices FROM route_days
        WHERE batch_id = ANY ({UNMERGED_BATCHES})
          AND orig_code = origin_ports.code AND dest_code = route.dest_code
          AND day BETWEEN %(date_from)s AND %(date_to)s
        OFFSET 0
    ) AS route_day
    WHERE NOT (SELECT yes FROM large_pair)
    GROUP BY route_day.day
)
-- Days as date arithmetic, not a timestamp series: no time zone can skip or repeat one.
SELECT days.day,
       CASE WHEN daily.prices >= %(min_prices)s
            THEN daily.total::float8 / daily.prices END AS price,
       coalesce(daily.prices, 0) AS prices,
       -- Zero only for a name that is neither a port nor a region (a region may hold no port).
       (SELECT count(*) FROM origin_regions) + (SELECT count(*) FROM origin_ports) AS origin_known,
       (SELECT count(*) FROM destination_regions) + (SELECT count(*) FROM destination_ports)
           AS destination_known,
       (SELECT version FROM data_version) AS data_version
FROM (SELECT %(date_to)s::date - n AS day
      FROM generate_series(0, %(date_to)s::date - %(date_from)s::date) AS n) AS days
LEFT JOIN daily ON daily.day = days.day
ORDER BY days.day DESC
"""
# Two shortcuts for the common questions, each reading one pair's day totals straight: no
# region tree walk and no gate between region and route totals. Each first says whether it
# answers (the names are of its kind); if not, its rows are dropped and DAILY_RATES_SQL asked.
# They return only the days that have prices (Python lists the rest): with no day series whose
# length depends on the parameters, PostgreSQL keeps one generic plan for every pair instead
# of planning each call afresh (0.85 ms of planning against 0.2 ms of execution).
#
# Port to port: both names are ports and not regions.
PORT_PAIR_RATES_SQL = f"""
SELECT names.origin_is_port AND names.destination_is_port AS answers, names.data_version,
       daily.day,
       CASE WHEN daily.prices >= %(min_prices)s
            THEN daily.total::float8 / daily.prices END AS price,
       daily.prices
FROM (SELECT EXISTS (SELECT FROM ports WHERE code = %(origin)s)
                 AND NOT EXISTS (SELECT FROM regions WHERE slug = %(origin)s) AS origin_is_port,
             EXISTS (SELECT FROM ports WHERE code = %(destination)s)
                 AND NOT EXISTS (SELECT FROM regions WHERE slug = %(destination)s)
                 AS destination_is_port,
             (SELECT version FROM data_version) AS data_version) AS names
LEFT JOIN (
    SELECT day, sum(total) AS total, sum(prices) AS prices
    FROM (
        SELECT day, total, prices FROM route_days
        WHERE batch_id IS NULL
          AND orig_code = %(origin)s AND dest_code = %(destination)s
          AND day BETWEEN %(date_from)s AND %(date_to)s
        UNION ALL
        SELECT day, total, prices FROM route_days
        WHERE batch_id = ANY ({UNMERGED_BATCHES})
          AND orig_code = %(origin)s AND dest_code = %(destination)s
          AND day BETWEEN %(date_from)s AND %(date_to)s
    ) AS route_day
    GROUP BY day
) AS daily ON true
"""
# Large region to large region: the pair's totals kept in region_days, as DAILY_RATES_SQL
# reads them.
LARGE_REGION_PAIR_RATES_SQL = """
SELECT names.large_pair AS answers, names.data_version,
       daily.day,
       CASE WHEN daily.prices >= %(min_prices)s
            THEN daily.total::float8 / daily.prices END AS price,
       daily.prices
FROM (SELECT EXISTS (SELECT FROM port_rollups WHERE region = %(origin)s)
                 AND EXISTS (SELECT FROM port_rollups WHERE region = %(destination)s)
                 AS large_pair,
             (SELECT version FROM data_version) AS data_version) AS names
LEFT JOIN region_days AS daily
       ON names.large_pair
      AND daily.orig_region = %(origin)s AND daily.dest_region = %(destination)s
      AND daily.day BETWEEN %(date_from)s AND %(date_to)s
"""
# The regions that keep region-pair totals: a handful to a few dozen slugs.
LARGE_REGIONS_SQL = "SELECT slug FROM rollup_regions"
# The data version alone: a conditional request whose ETag still matches needs no answer.
DATA_VERSION_SQL = "SELECT version FROM data_version"


@dataclass(frozen=True)
class RatesQuery:
    """A validated request: dates in order, range within the limit, both locations given."""

    date_from: date
    date_to: date
    origin: str
    destination: str

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    @classmethod
    def parse(
        cls,
        *,
        date_from: str | None,
        date_to: str | None,
        origin: str | None,
        destination: str | None,
        max_range_days: int,
    ) -> RatesQuery:
        """Checks raw query parameters, raising InvalidRequest naming the first bad one."""
        start = _parse_day("date_from", date_from)
        end = _parse_day("date_to", date_to)
        if start > end:
            raise InvalidRequest(
                f"date_from ({start}) is after date_to ({end})",
                details={"parameter": "date_from"},
            )
        days = (end - start).days + 1
        if days > max_range_days:
            raise InvalidRequest(
                f"the range covers {days} days; at most {max_range_days} are allowed",
                details={"parameter": "date_to", "max_range_days": max_range_days},
            )
        return cls(
            date_from=start,
            date_to=end,
            origin=_require_location("origin", origin),
            destination=_require_location("destination", destination),
        )


@dataclass(slots=True)
class DailyRate:
    """Slotted and not frozen: a 31-day answer builds 31 of them per request, and a frozen
    dataclass's __init__ costs twice as much (~0.3 us against ~0.7 each)."""

    day: date
    price: float | None
    count: int


def _parse_day(name: str, value: str | None) -> date:
    if value is None or value == "":
        raise InvalidRequest(f"{name} is required (YYYY-MM-DD)", details={"parameter": name})
    day = parse_day(value)
    if day is None:
        raise InvalidRequest(
            f"{name} must be a real date as YYYY-MM-DD, got {value!r}",
            details={"parameter": name},
        )
    return day


def _require_location(name: str, value: str | None) -> str:
    if value is None or not value.strip():
        aliases = {"origin": "orig_code", "destination": "dest_code"}
        raise InvalidRequest(
            f"{name} (or {aliases[name]}) is required: a port code or a region slug",
            details={"parameter": name},
        )
    return value.strip()


def _params(query: RatesQuery) -> dict[str, Any]:
    return {
        "origin": query.origin,
        "destination": query.destination,
        "date_from": query.date_from,
        "date_to": query.date_to,
        "min_prices": MIN_PRICES_PER_DAY,
    }


@dataclass(frozen=True)
class DailyRates:
    data_version: int  # changes whenever a batch counts or is reverted, or data is loaded
    rates: list[DailyRate]


def _to_rates(query: RatesQuery, rows: list[tuple[Any, ...]]) -> DailyRates:
    if rows and rows[0][3] == 0:
        raise UnknownLocation(
            f"origin {query.origin!r} is neither a port code nor a region slug",
            details={"parameter": "origin"},
        )
    if rows and rows[0][4] == 0:
        raise UnknownLocation(
            f"destination {query.destination!r} is neither a port code nor a region slug",
            details={"parameter": "destination"},
        )
    return DailyRates(
        data_version=rows[0][5],
        rates=[DailyRate(day=row[0], price=row[1], count=row[2]) for row in rows],
    )


@dataclass
class LargeRegions:
    """The large regions as last read, kept per API process to choose which statement to try
    first. LARGE_REGION_PAIR_RATES_SQL checks for itself, so a stale set costs a statement,
    never a wrong answer; it is read again whenever an answer is of a new data version (a
    dump load or demo data, which may change the set, always makes one)."""

    slugs: frozenset[str] = frozenset()
    data_version: int | None = None

    async def refresh(self, conn: psycopg.AsyncConnection[Any], data_version: int) -> None:
        # The version first: requests answered meanwhile see it and do not read the set too.
        self.data_version = data_version
        cursor = await conn.execute(LARGE_REGIONS_SQL)
        self.slugs = frozenset(row[0] for row in await cursor.fetchall())


def shortcut_for(query: RatesQuery, large_regions: LargeRegions) -> str | None:
    """The statement to try before DAILY_RATES_SQL: the port-pair one when both names look
    like port codes (UN/LOCODEs are upper case, region slugs are not), the large-pair one when
    both are known large regions. Only a guess of which statement answers; all give the same
    answer."""
    if not any(map(str.islower, query.origin + query.destination)):
        return PORT_PAIR_RATES_SQL
    if query.origin in large_regions.slugs and query.destination in large_regions.slugs:
        return LARGE_REGION_PAIR_RATES_SQL
    return None


async def fetch_daily_rates(
    conn: psycopg.AsyncConnection[Any], query: RatesQuery, large_regions: LargeRegions
) -> DailyRates:
    """One entry per day from date_to down to date_from, and the data version they are of.
    Each answer comes whole from one statement, so from one snapshot."""
    answer = await _answer(conn, query, large_regions)
    if answer.data_version != large_regions.data_version:
        await large_regions.refresh(conn, answer.data_version)
    return answer


async def _answer(
    conn: psycopg.AsyncConnection[Any], query: RatesQuery, large_regions: LargeRegions
) -> DailyRates:
    params = _params(query)
    shortcut = shortcut_for(query, large_regions)
    if shortcut is not None:
        cursor = await conn.execute(shortcut, params)
        rows = await cursor.fetchall()
        answers, data_version = rows[0][:2]
        if answers:
            priced = {
                row[2]: DailyRate(row[2], row[3], row[4]) for row in rows if row[2] is not None
            }
            return DailyRates(
                data_version=data_version,
                rates=[priced.get(day) or DailyRate(day, None, 0) for day in _days_down(query)],
            )
    cursor = await conn.execute(DAILY_RATES_SQL, params)
    return _to_rates(query, await cursor.fetchall())


def _days_down(query: RatesQuery) -> Iterator[date]:
    """date_to down to date_from. Stepping by one day: a timedelta per offset costs a 31-day
    answer ~16 us instead of ~3."""
    day = query.date_to
    for _ in range(query.days):
        yield day
        day -= _ONE_DAY


async def fetch_data_version(conn: psycopg.AsyncConnection[Any]) -> int:
    """The version that the next answer will be of, unless a batch counts meanwhile."""
    cursor = await conn.execute(DATA_VERSION_SQL)
    row = await cursor.fetchone()
    assert row is not None  # migration 0009 inserts the one row
    return int(row[0])
