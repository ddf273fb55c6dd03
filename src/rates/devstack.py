"""The private PostgreSQL and the one-command local stack (``rates up``).

The cluster lives in a data directory of its own, listens on loopback only (no Unix socket),
on a free port, with password authentication; the generated password is kept in a file only
the invoking user can read. PostgreSQL refuses to run as root, so under root the cluster runs
as an unprivileged system user (``postgres`` if present, else ``nobody``).
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from rates.db.demo import DemoSpec, generate_demo
from rates.db.dump import load_dump, open_dump
from rates.db.migrate import migrate
from rates.db.queries import rates_tables_are_empty
from rates.settings import Settings

_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
_SUPERUSER = "rates"
_UNPRIVILEGED_USERS = ("postgres", "nobody")
# Where distributions put versioned server binaries (Debian/Ubuntu), newest version first.
DISTRIBUTION_BIN_GLOBS = ("/usr/lib/postgresql/*/bin",)

INSTALL_HINT = """PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found.
Looked in: PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin.
Install them, then run the command again:
  Debian/Ubuntu:  sudo apt-get install postgresql
  Fedora/RHEL:    sudo dnf install postgresql-server
  macOS:          brew install postgresql@15
Or point the service at an existing database: export RATES_DATABASE_URL=postgresql://..."""


class DevstackError(RuntimeError):
    """The local stack cannot start; the message says what to do."""


def _has_binaries(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _REQUIRED_BINARIES)


def find_postgres_bin_dir() -> Path:
    """The first folder holding initdb, pg_ctl and postgres: PATH, pg_config, Debian's layout."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    for pattern in DISTRIBUTION_BIN_GLOBS:
        versions = glob.glob(pattern)
        versions.sort(key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
        candidates.extend(Path(p) for p in reversed(versions))
    for folder in candidates:
        if _has_binaries(folder):
            return folder
    raise DevstackError(INSTALL_HINT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    """Whether PostgreSQL could listen on the port (it, too, ignores TIME_WAIT leftovers)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _unprivileged_user() -> pwd.struct_passwd | None:
    """None when we may run PostgreSQL ourselves; the account to use when we are root."""
    if os.geteuid() != 0:
        return None
    for name in _UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise DevstackError(
        "running as root, and PostgreSQL refuses root: create an unprivileged user "
        "(e.g. `useradd --system postgres`) or run as a normal user"
    )


@dataclass
class _ClusterState:
    port: int
    password: str


class LocalPostgres:
    """A PostgreSQL cluster in ``root``: ``pgdata/``, ``postgres.log``, ``cluster.json``."""

    def __init__(self, root: Path, *, server_settings: Mapping[str, str] | None = None) -> None:
        self.root = root.absolute()
        self.pgdata = self.root / "pgdata"
        self.logfile = self.root / "postgres.log"
        self._state_file = self.root / "cluster.json"
        self.server_settings = dict(server_settings or {})
        self._bin_dir = find_postgres_bin_dir()
        self._run_as = _unprivileged_user()
        self.started_here = False

    # --- lifecycle -------------------------------------------------------------------------

    def ensure_initialized(self) -> None:
        """Runs initdb once; later calls find the cluster and do nothing."""
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_reachable_by_run_as()
        password = secrets.token_urlsafe(24)
        pwfile = self.root / "initdb.pw"
        pwfile.write_text(password)
        try:
            self._give_to_run_as(pwfile, mode=0o600)
            self.pgdata.mkdir(mode=0o700, exist_ok=True)
            self._give_to_run_as(self.pgdata, mode=0o700)
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                _SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self._save_state(_ClusterState(port=free_port(), password=password))

    def start(self) -> None:
        """Starts the server unless it already runs (then it is reused, not owned)."""
        state = self._load_state()
        if self.running():
            return
        if not _port_is_free(state.port):
            state.port = free_port()
            self._save_state(state)
        if not self.logfile.exists():
            self.logfile.touch()
            self._give_to_run_as(self.logfile, mode=0o600)
        options = {
            "port": str(state.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
            **self.server_settings,
        }
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(f"-c {key}={value}" for key, value in options.items()),
        )
        self.started_here = True

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60")

    def running(self) -> bool:
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        result = self._run("pg_ctl", "status", "-D", str(self.pgdata), check=False)
        return result.returncode == 0

    # --- connecting ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        pid_file = self.pgdata / "postmaster.pid"
        if pid_file.exists():
            lines = pid_file.read_text().splitlines()
            if len(lines) > 3 and lines[3].isdigit():
                return int(lines[3])
        return self._load_state().port

    @property
    def password(self) -> str:
        return self._load_state().password

    def conninfo(self, dbname: str = "rates") -> str:
        state = self._load_state()
        return make_conninfo(
            host="127.0.0.1",
            port=self.port,
            dbname=dbname,
            user=_SUPERUSER,
            password=state.password,
        )

    def url(self, dbname: str = "rates") -> str:
        """The same as conninfo(), as a postgresql:// URL for RATES_DATABASE_URL."""
        state = self._load_state()
        return f"postgresql://{_SUPERUSER}:{state.password}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, dbname: str, *, template: str | None = None) -> None:
        """Creates ``dbname`` unless it exists."""
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [dbname]
            ).fetchone()
            if exists:
                return
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
            if template:
                statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
            conn.execute(statement)

    # --- helpers ---------------------------------------------------------------------------

    def _run(self, binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = self._run_as
        result = subprocess.run(
            [str(self._bin_dir / binary), *args],
            capture_output=True,
            text=True,
            cwd=self.root,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
            # Own session: a Ctrl-C in the terminal must not reach the postmaster directly;
            # `rates up` stops it in order, after the API and the worker.
            start_new_session=True,
        )
        if check and result.returncode != 0:
            log_tail = ""
            if self.logfile.exists():
                log_tail = "\n".join(self.logfile.read_text(errors="replace").splitlines()[-15:])
            raise DevstackError(
                f"{binary} failed ({result.returncode}): {result.stderr.strip()}\n{log_tail}"
            )
        return result

    def _give_to_run_as(self, path: Path, *, mode: int) -> None:
        os.chmod(path, mode)
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _check_reachable_by_run_as(self) -> None:
        """Under root, every folder above the cluster must be searchable by its user."""
        if self._run_as is None:
            return
        for folder in [self.root, *self.root.parents]:
            if not folder.stat().st_mode & stat.S_IXOTH:
                raise DevstackError(
                    f"{folder} is not searchable by the user {self._run_as.pw_name!r} that runs "
                    f"PostgreSQL (root cannot run it); choose another RATES_DATA_DIR or "
                    f"`chmod o+x {folder}`"
                )

    def _save_state(self, state: _ClusterState) -> None:
        self._state_file.write_text(json.dumps({"port": state.port, "password": state.password}))
        os.chmod(self._state_file, 0o600)

    def _load_state(self) -> _ClusterState:
        try:
            data: dict[str, Any] = json.loads(self._state_file.read_text())
        except FileNotFoundError:
            raise DevstackError(f"no cluster in {self.root}: it was not initialized") from None
        return _ClusterState(port=int(data["port"]), password=str(data["password"]))


class LocalReplica(LocalPostgres):
    """A streaming replica (hot standby) of a LocalPostgres in a folder of its own: a
    pg_basebackup of the primary with -R (standby.signal, primary_conninfo), started on a port
    of its own. It has the primary's roles, password and server settings (a standby refuses
    lower limits than its primary's), and replays its WAL as it comes."""

    def __init__(self, root: Path, primary: LocalPostgres) -> None:
        super().__init__(root, server_settings=primary.server_settings)
        self.primary = primary

    def ensure_initialized(self) -> None:
        """Copies the running primary once; later calls find the replica and do nothing."""
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_reachable_by_run_as()
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        self._give_to_run_as(self.pgdata, mode=0o700)
        self._run(
            "pg_basebackup",
            "--pgdata",
            str(self.pgdata),
            "--dbname",
            self.primary.conninfo("postgres"),
            "--write-recovery-conf",  # standby.signal + primary_conninfo: a streaming standby
            "--wal-method=stream",
            "--checkpoint=fast",
            "--no-sync",  # a local copy: a crash means a new base backup, not lost data
        )
        self._save_state(_ClusterState(port=free_port(), password=self.primary.password))


def _terminate_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGTERM (a graceful stop) when `rates up`
    dies, even by SIGKILL, instead of leaving it running on its own."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class ChildProcesses:
    """The stack's long-running children, stopped in reverse order with SIGTERM."""

    def __init__(self) -> None:
        self._children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: Mapping[str, str]) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", "rates", *args],
            env=dict(env),
            start_new_session=True,  # Ctrl-C reaches only us; we stop them in order
            preexec_fn=_terminate_with_parent if sys.platform == "linux" else None,
        )
        self._children.append((name, process))

    def wait_for_signal_or_exit(self) -> str | None:
        """Blocks until SIGINT/SIGTERM (returns None) or a child exits (returns its name)."""
        stop = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            while not stop.wait(0.2):
                for name, process in self._children:
                    if process.poll() is not None:
                        return name
            return None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self, timeout_s: float) -> None:
        for _, process in reversed(self._children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in reversed(self._children):
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class StackOptions:
    dump: Path | None
    demo: DemoSpec
    sample: float | None = None
    replica: bool = False  # also a streaming replica of the private cluster, serving /rates


def prepare_database(conninfo: str, options: StackOptions) -> str:
    """Migrates, then loads the dump (or demo data) if the database holds no rates data yet.

    Returns a line saying what happened, for the console."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        migrate(conn)
        if not rates_tables_are_empty(conn):
            return "database already holds data: reusing it"
        if options.dump is not None:
            with open_dump(options.dump) as dump:
                result = load_dump(conn, dump, sample=options.sample)
            return f"loaded {options.dump}: {result.rows}"
        demo = generate_demo(conn, options.demo)
        return (
            f"generated demo data: {demo.regions} regions, {demo.ports} ports, {demo.prices} prices"
        )


def ingest_token_path(data_dir: Path) -> Path:
    return data_dir / "ingest-token"


def api_url_path(data_dir: Path) -> Path:
    """Where ``rates up`` records its API's URL, for ``rates ingest`` to find by default."""
    return data_dir / "api-url"


def record_api_url(settings: Settings) -> str:
    """Writes the URL the local API answers on (loopback when it listens on every address)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host
    host = "[::1]" if host == "::" else host
    url = f"http://{host}:{settings.port}"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    api_url_path(settings.data_dir).write_text(url + "\n")
    return url


def local_ingest_token(data_dir: Path) -> Path:
    """A token for the local stack's batch endpoint, made once, readable by its owner only."""
    path = ingest_token_path(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    return path


def run_local_stack(settings: Settings, options: StackOptions, say: Callable[[str], None]) -> int:
    """``rates up``: database (private unless configured), data, API; until Ctrl-C or SIGTERM."""
    cluster: LocalPostgres | None = None
    replica: LocalReplica | None = None
    url = settings.database_url.get_secret_value() if settings.database_url else None
    conninfo = settings.conninfo()
    if conninfo is None:
        cluster = LocalPostgres(settings.data_dir / "postgres")
        cluster.ensure_initialized()
        cluster.start()
        cluster.create_database("rates")
        conninfo, url = cluster.conninfo("rates"), cluster.url("rates")
        say(f"private PostgreSQL in {cluster.pgdata} on 127.0.0.1:{cluster.port}")
    elif options.replica:
        raise DevstackError("--replica replicates the private cluster: unset RATES_DATABASE_URL")
    children = ChildProcesses()
    try:
        say(prepare_database(conninfo, options))
        env = dict(os.environ)
        if url is not None:
            env["RATES_DATABASE_URL"] = url
        if options.replica and cluster is not None:
            replica = LocalReplica(settings.data_dir / "postgres-replica", cluster)
            replica.ensure_initialized()
            replica.start()
            env["RATES_READ_DATABASE_URL"] = replica.url("rates")
            say(f"streaming replica in {replica.pgdata} on 127.0.0.1:{replica.port} serves /rates")
        env.update(
            {
                "RATES_HOST": settings.host,
                "RATES_PORT": str(settings.port),
                "RATES_WORKERS": str(settings.workers),
                "RATES_DATA_DIR": str(settings.data_dir.absolute()),
            }
        )
        if "RATES_WORKER_METRICS_PORT" not in os.environ:
            env["RATES_WORKER_METRICS_PORT"] = str(free_port())  # copies run side by side
        say(f"worker metrics on http://{settings.host}:{env['RATES_WORKER_METRICS_PORT']}/metrics")
        if not settings.ingest_tokens:
            token_file = local_ingest_token(settings.data_dir)
            env["RATES_INGEST_TOKENS_FILE"] = str(token_file)
            say(f"ingest token for POST /batches in {token_file}")
        children.start("api", ["serve"], env)
        children.start("worker", ["worker"], env)
        url = record_api_url(settings)
        say(
            f"API on {url}: the lane explorer at /, batches at /console/batches, docs at "
            "/docs; worker running; Ctrl-C stops"
        )
        exited = children.wait_for_signal_or_exit()
        if exited is not None:
            say(f"{exited} exited unexpectedly; stopping the stack")
        return 0 if exited is None else 1
    finally:
        children.stop(timeout_s=settings.graceful_timeout_s + 5)
        if replica is not None and replica.started_here:
            replica.stop()
        if cluster is not None and cluster.started_here:
            cluster.stop()
            say("PostgreSQL stopped")
