"""The ``rates`` command. Every option is also an environment variable (shown in --help)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import structlog
import typer
from pydantic import ValidationError
from rich.console import Console

from rates.db.connection import DatabaseNotConfigured, connect, require_conninfo
from rates.db.demo import DemoSpec, generate_demo
from rates.db.dump import load_dump, open_dump_source
from rates.db.migrate import Migration, migrate, pending_migrations
from rates.devstack import (
    DevstackError,
    StackOptions,
    api_url_path,
    ingest_token_path,
    prepare_database,
    run_local_stack,
)
from rates.errors import RatesError
from rates.observability.logs import configure_logging
from rates.settings import ENV_PREFIX, Settings, SettingsFileError

# rich_markup_mode=None: help texts are plain text (as rich markup, "[default: demo data]"
# vanished as an unknown tag).
app = typer.Typer(
    help="Ocean-freight rates: API, data loading and the local stack.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
db_app = typer.Typer(
    help="Schema and data: migrate, load a dump, generate demo data.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
ingest_app = typer.Typer(
    help="Batches of new prices: submit, follow, list, register.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(db_app, name="db")
app.add_typer(ingest_app, name="ingest")

console = Console(stderr=True)
T = TypeVar("T")

Host = Annotated[str | None, typer.Option(envvar="RATES_HOST", help="Address to listen on.")]
Port = Annotated[int | None, typer.Option(envvar="RATES_PORT", help="Port to listen on.")]
Workers = Annotated[
    int | None,
    typer.Option(
        envvar="RATES_WORKERS", help="Server worker processes [default: CPU count, at least 2]."
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option(envvar="RATES_DATA_DIR", help="Where local state lives [default: .rates]."),
]
Dump = Annotated[
    Path | None,
    typer.Option(
        envvar="RATES_DUMP",
        exists=True,
        dir_okay=False,
        help="pg_dump file to load when the database is empty [default: demo data].",
    ),
]
Sample = Annotated[
    float | None,
    typer.Option(min=0.0001, max=1.0, help="Load only this fraction of the dump's prices."),
]
Replace = Annotated[
    bool, typer.Option("--replace", help="Empty ports, regions and prices first (one transaction).")
]


def _require_dump_for_sample(sample: float | None, dump: Path | None) -> None:
    if sample is not None and dump is None:
        console.print("[red]error:[/] --sample needs --dump (the dump to sample from)")
        raise typer.Exit(2)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment plus explicit CLI options; exits 2 on a bad value."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            name = ENV_PREFIX + "_".join(str(part) for part in error["loc"]).upper()
            console.print(f"[red]configuration error:[/] {name}: {error['msg']}")
        raise typer.Exit(2) from None
    except SettingsFileError as exc:
        console.print(f"[red]configuration error:[/] {exc}")
        raise typer.Exit(2) from None
    configure_logging(settings)
    return settings


@contextmanager
def user_errors() -> Iterator[None]:
    """Turns errors a user can act on into one red line and exit code 1, not a traceback."""
    try:
        yield
    except (RatesError, DatabaseNotConfigured, DevstackError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


def _with_connection(settings: Settings, action: Callable[[Any], T]) -> T:
    with user_errors(), connect(settings, autocommit=True, statement_timeout_ms=0) as conn:
        return action(conn)


@app.command()
def up(
    dump: Dump = None,
    sample: Sample = None,
    data_dir: DataDir = None,
    host: Host = None,
    port: Port = None,
    workers: Workers = None,
    replica: Annotated[
        bool,
        typer.Option(
            "--replica",
            help="Also run a streaming replica of the private PostgreSQL; /rates reads from it.",
        ),
    ] = False,
) -> None:
    """Run the whole stack locally: private PostgreSQL (unless RATES_DATABASE_URL), data, API,
    worker."""
    _require_dump_for_sample(sample, dump)
    settings = load_settings(host=host, port=port, workers=workers, data_dir=data_dir)
    with user_errors():
        code = run_local_stack(
            settings,
            StackOptions(dump=dump, demo=DemoSpec(), sample=sample, replica=replica),
            lambda line: console.print(line),
        )
    raise typer.Exit(code)


@app.command()
def serve(host: Host = None, port: Port = None, workers: Workers = None) -> None:
    """Run the API in gunicorn with uvicorn workers (SIGHUP: new workers with settings read
    again; SIGTERM drains)."""
    from rates.api.server import serve as run_server

    options: dict[str, Any] = {"host": host, "port": port, "workers": workers}
    settings = load_settings(**options)
    with user_errors():
        require_conninfo(settings)  # one line now, not a traceback from every worker process
    run_server(settings, lambda: Settings(**{k: v for k, v in options.items() if v is not None}))


@db_app.command("migrate")
def db_migrate(
    before_deploy: Annotated[
        bool,
        typer.Option(
            "--before-deploy",
            help="Leave post-deploy migrations (those removing what the running release still "
            "uses) pending; run a plain `rates db migrate` once the new release serves alone.",
        ),
    ] = False,
) -> None:
    """Apply pending migrations (idempotent)."""

    def run(conn: Any) -> tuple[list[Migration], list[Migration]]:
        return migrate(conn, before_deploy=before_deploy), pending_migrations(conn)

    applied, left = _with_connection(load_settings(), run)
    names = ", ".join(m.label for m in applied) or "none (schema is current)"
    console.print(f"applied migrations: {names}")
    if left:
        console.print(f"left for after the deploy: {', '.join(m.label for m in left)}")


@db_app.command("load")
def db_load(
    file: Annotated[str, typer.Argument(help="pg_dump file (.gz ok), local or s3://bucket/key.")],
    replace: Replace = False,
) -> None:
    """Load a pg_dump-style file of ports, regions and prices, in one transaction.

    Refuses when the tables already hold data, unless --replace."""
    settings = load_settings()

    def load(conn: Any) -> None:
        with open_dump_source(settings, file) as dump:
            result = load_dump(conn, dump, replace=replace)
        console.print(f"loaded {file}: " + ", ".join(f"{n} {t}" for t, n in result.rows.items()))

    _with_connection(settings, load)


@db_app.command("demo")
def db_demo(
    ports: Annotated[int, typer.Option(min=2, help="Number of ports.")] = 60,
    days: Annotated[int, typer.Option(min=1, help="Number of days from --first-day.")] = 92,
    prices_per_route_day: Annotated[
        float, typer.Option(min=0, help="Mean prices per route and day (0 to twice this).")
    ] = 3.0,
    routes: Annotated[
        int | None, typer.Option(min=1, help="Routes (port pairs) [default: 4 per port].")
    ] = None,
    first_day: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="First day of prices.")
    ] = datetime(2021, 1, 1),
    depth: Annotated[int, typer.Option(min=1, help="Levels of the region tree.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 42,
    replace: Replace = False,
) -> None:
    """Generate a synthetic data set: nested regions, ports at every level, daily prices."""
    spec = DemoSpec(
        ports=ports,
        days=days,
        prices_per_route_day=prices_per_route_day,
        routes=routes,
        depth=depth,
        seed=seed,
        first_day=first_day.date(),
    )
    result = _with_connection(
        load_settings(), lambda conn: generate_demo(conn, spec, replace=replace)
    )
    console.print(
        f"demo data: {result.regions} regions, {result.ports} ports, {result.routes} routes, "
        f"{result.prices} prices"
    )


@db_app.command("grant-logins")
def db_grant_logins() -> None:
    """Create/update the login roles rates_api and rates_worker from RATES_API_DB_PASSWORD and
    RATES_WORKER_DB_PASSWORD (or their _FILE forms); run by the migrate task after migrate."""
    from rates.db.queries import grant_login

    settings = load_settings()
    passwords = {"rates_api": settings.api_db_password, "rates_worker": settings.worker_db_password}
    if not any(passwords.values()):
        console.print("[red]error:[/] set RATES_API_DB_PASSWORD and/or RATES_WORKER_DB_PASSWORD")
        raise typer.Exit(2)

    def grant(conn: Any) -> None:
        for login, password in passwords.items():
            if password is not None:
                grant_login(conn, login, password.get_secret_value())
                console.print(f"login role {login}: ready")

    _with_connection(settings, grant)


@db_app.command("init")
def db_init(
    dump: Dump = None,
) -> None:
    """Migrate, then load the dump (or demo data) only if the database holds no data yet."""
    settings = load_settings()
    with user_errors():
        console.print(prepare_database(require_conninfo(settings), StackOptions(dump, DemoSpec())))


@app.command()
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Apply at most one batch, then exit.")
    ] = False,
) -> None:
    """Apply queued batches (SIGTERM: stop claiming, finish or roll back the current one)."""
    from rates.ingest.worker import Worker

    settings = load_settings()
    if settings.worker_metrics_port:
        _serve_worker_metrics(settings)
    with user_errors():
        ingest_worker = Worker(settings)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: ingest_worker.request_stop())
        handled = ingest_worker.run(once=once)
    console.print(f"worker stopped after {handled} batch(es)")


def _serve_worker_metrics(settings: Settings) -> None:
    """The worker's /metrics; a port already taken (a second worker on the host) costs the
    metrics, not the worker."""
    from prometheus_client import start_http_server

    try:
        start_http_server(settings.worker_metrics_port, addr=settings.host)
    except OSError as exc:
        structlog.get_logger(__name__).warning(
            "worker_metrics_disabled",
            port=settings.worker_metrics_port,
            reason=exc.strerror or str(exc),
            hint="set RATES_WORKER_METRICS_PORT to a free port (0: none)",
        )


LOCAL_API_URL = "http://127.0.0.1:8000"
ApiUrl = Annotated[
    str | None,
    typer.Option(
        envvar="RATES_API_URL",
        help=f"Base URL of the rates API [default: the one `rates up` recorded in the data "
        f"directory, else {LOCAL_API_URL}].",
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        envvar="RATES_INGEST_TOKEN",
        help="Bearer token (an ingest token; a batch-read token for status and list)"
        " [default: the local stack's].",
    ),
]


def _api_url(settings: Settings, url: str | None) -> str:
    """--url / RATES_API_URL, else the URL the local stack recorded, else the default port."""
    if url:
        return url.rstrip("/")
    recorded = api_url_path(settings.data_dir)
    if recorded.exists():
        return recorded.read_text().strip()
    return LOCAL_API_URL


def _token(settings: Settings, token: str | None) -> str:
    if token:
        return token
    local = ingest_token_path(settings.data_dir)
    if local.exists():
        return local.read_text().strip()
    console.print("[red]error:[/] no token: pass --token or set RATES_INGEST_TOKEN")
    raise typer.Exit(2)


@ingest_app.command("submit")
def ingest_submit(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help=".csv, .ndjson or .jsonl, optionally .gz"),
    ],
    wait: Annotated[bool, typer.Option("--wait", help="Follow the batch until it ends.")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Resubmitting with the same key returns the same batch.")
    ] = None,
    url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Upload a batch file (with a progress bar); with --wait, exit 1 unless it succeeds."""
    from rates.ingest.client import submit_file, wait_for_batch

    settings = load_settings()
    url = _api_url(settings, url)
    with user_errors():
        bearer = _token(settings, token)
        batch = submit_file(url, bearer, file, idempotency_key, console)
        console.print(f"batch {batch['id']}: {batch['status']}")
        if wait:
            batch = wait_for_batch(url, bearer, batch["id"], console)
            print_batch(batch)
            if batch["status"] != "succeeded":
                raise typer.Exit(1)


@ingest_app.command("status")
def ingest_status(batch_id: int, url: ApiUrl = None, token: Token = None) -> None:
    """Show one batch: status, rows, timings, attempts, error report."""
    from rates.ingest.client import get_json

    settings = load_settings()
    bearer = _token(settings, token)
    url = _api_url(settings, url)
    with user_errors():
        print_batch(get_json(url, f"/batches/{batch_id}", bearer))


@ingest_app.command("list")
def ingest_list(
    status: Annotated[str | None, typer.Option(help="Only batches with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Recent batches, newest first."""
    from rich.table import Table

    from rates.ingest.client import get_json

    settings = load_settings()
    bearer = _token(settings, token)
    url = _api_url(settings, url)
    with user_errors():
        params = {"limit": str(limit), **({"status": status} if status else {})}
        listing = get_json(url, "/batches", bearer, params)
    table = Table("id", "status", "source", "rows", "submitted", "attempts")
    for batch in listing["batches"]:
        table.add_row(
            str(batch["id"]),
            batch["status"],
            batch["source"],
            str(batch["rows"]["total"] or ""),
            batch["submitted_at"],
            str(batch["attempts"]),
        )
    Console().print(table)


@ingest_app.command("register")
def ingest_register(
    uri: Annotated[
        str,
        typer.Argument(help="s3://bucket/key of an object already in S3 (?versionId=V: that one)"),
    ],
) -> None:
    """Queue an object already in S3 as a batch; one batch per stored object version."""
    from rates.ingest.submit import register_s3_object
    from rates.storage import PayloadStore, split_s3_uri

    settings = load_settings()

    def register(conn: Any) -> None:
        bucket, key, pin = split_s3_uri(uri)
        version_id = pin[1] if pin is not None and pin[0] == "versionId" else None
        registration = register_s3_object(
            conn, PayloadStore(settings), bucket, key, "cli", version_id=version_id
        )
        state = "queued" if registration.created else "already registered"
        console.print(f"batch {registration.id}: {state}")

    _with_connection(settings, register)


@ingest_app.command("sweep")
def ingest_sweep(
    grace_hours: Annotated[
        float,
        typer.Option(
            min=0.0, help="Keep payloads younger than this (a batch may be registering them)."
        ),
    ] = 24.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List, delete nothing.")] = False,
) -> None:
    """Delete stored payloads (and leftover upload spool files) that no batch references, once
    older than the grace period (needs database and storage access)."""
    from rates.ingest.sweep import delete, orphans

    settings = load_settings()

    def sweep(conn: Any) -> None:
        found = orphans(settings, conn, grace_hours * 3600)
        for payload in found:
            console.print(payload.uri)
        if not dry_run:
            delete(settings, found)
        console.print(f"{'found' if dry_run else 'deleted'} {len(found)} unreferenced payload(s)")

    _with_connection(settings, sweep)


# A batch's phases in the order they happen.
_PHASES = ("load", "count", "commit", "total")


def print_batch(batch: dict[str, Any]) -> None:
    colour = {"succeeded": "green", "rejected": "red", "failed": "red"}.get(batch["status"], "")
    rows = batch["rows"]
    timings = batch.get("timings_s") or {}
    phases = sorted(timings, key=lambda p: (_PHASES.index(p) if p in _PHASES else len(_PHASES), p))
    took = ", ".join(f"{phase.replace('_', ' ')} {timings[phase]:.2f} s" for phase in phases)
    console.print(
        f"batch {batch['id']}: [{colour or 'default'}]{batch['status']}[/] - rows "
        f"{rows['inserted'] or 0} inserted of {rows['total'] or 0}, attempts {batch['attempts']}"
        + (f"; took {took}" if took else "")
    )
    report = batch.get("report") or {}
    if report.get("errors"):
        from rich.table import Table

        table = Table("line", "field", "reason", title=f"{report['invalid_rows']} invalid row(s)")
        for error in report["errors"]:
            table.add_row(str(error["line"]), error["field"], error["reason"])
        console.print(table)
    elif report.get("message"):
        console.print(f"[red]{report['message']}[/]")


env_app = typer.Typer(
    help="Scaled-down copies of the local stack, side by side.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(env_app, name="env")


@env_app.command("up")
def env_up(
    name: Annotated[str, typer.Argument(help="Lowercase letters, digits, dashes.")],
    port: Annotated[int | None, typer.Option(help="API port [default: a free one].")] = None,
    dump: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Dump to load [default: demo].")
    ] = None,
    sample: Sample = None,
    data_dir: DataDir = None,
) -> None:
    """Start a copy in the background: own PostgreSQL, port, storage, API and worker."""
    from rates import envs

    _require_dump_for_sample(sample, dump)
    settings = load_settings(data_dir=data_dir)
    with user_errors():
        info = envs.env_up(settings.data_dir, name, port=port, dump=dump, sample=sample)
    console.print(f"environment {name}: {info.url} (logs in {info.directory / 'stack.log'})")


@env_app.command("down")
def env_down(name: str, data_dir: DataDir = None) -> None:
    """Stop a copy and remove its data."""
    from rates import envs

    settings = load_settings(data_dir=data_dir)
    with user_errors():
        envs.env_down(settings.data_dir, name)
    console.print(f"environment {name}: stopped and removed")


@env_app.command("list")
def env_list(data_dir: DataDir = None) -> None:
    """The copies, their URLs and whether they run."""
    from rich.table import Table

    from rates import envs

    settings = load_settings(data_dir=data_dir)
    table = Table("name", "url", "state", "pid")
    for info in envs.list_envs(settings.data_dir):
        table.add_row(info.name, info.url, "running" if info.running else "stopped", str(info.pid))
    Console().print(table)
