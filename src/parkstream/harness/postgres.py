"""PostgreSQL for the harness.

What ``mode="auto"`` picks, in order (the simplest that works):

1. ``server``: a PostgreSQL server already answering at 127.0.0.1:5432 that lets
   the role ``postgres`` (or the OS user's role) in without a password (trust
   auth, as on our dev/CI machines) and may create databases. The harness
   creates a fresh database ``parkstream_test_<pid>_<random>`` for its session
   and drops it (``WITH (FORCE)``) on stop, so runs never collide and the server
   itself is never touched otherwise.
2. ``embedded``: server binaries found (``pg_config --bindir``,
   ``/usr/lib/postgresql/*/bin``, ``initdb`` on ``PATH``): ``initdb`` (trust
   auth, no fsync) and ``postgres`` on a free loopback port, with data and
   unix socket directory inside the harness's temporary directory. PostgreSQL
   refuses to run as root, so when the harness is root the server runs as the
   ``postgres`` OS user (``nobody`` if that does not exist) and the temporary
   directory is made traversable (mode 0711) for it. The URL names a database
   ``parkstream`` created in it.
3. ``pgserver``: the pip package ``pgserver`` if it is importable (its own
   process management; no parent-death signal for it).

If none works the harness fails and says so; ``PARKSTREAM_DATABASE_URL`` names
a server to use instead.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import glob
import importlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Literal

import asyncpg  # no stubs; see pyproject mypy overrides

from parkstream.harness.process import (
    LOOPBACK,
    HarnessError,
    StartedService,
    free_port,
    minimal_env,
    port_open,
    run_async,
    spawn,
    wait_until,
)

PostgresMode = Literal["auto", "server", "embedded", "pgserver"]
POSTGRES_MODES: tuple[PostgresMode, ...] = ("auto", "server", "embedded", "pgserver")

SERVER_PORT = 5432
DATABASE_PREFIX = "parkstream_test_"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def _quote_ident(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"unexpected database name {name!r}")
    return f'"{name}"'


async def _query_ok(url: str, connect_timeout: float) -> bool:
    conn = await asyncpg.connect(url, timeout=connect_timeout)
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()


def postgres_answers(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` accepts a connection and runs ``SELECT 1``."""
    try:
        return run_async(functools.partial(_query_ok, url, timeout))
    except Exception:  # refused, starting up, auth, timeout: all mean "not usable"
        return False


async def _may_create_databases(url: str, connect_timeout: float) -> bool:
    conn = await asyncpg.connect(url, timeout=connect_timeout)
    try:
        allowed = await conn.fetchval(
            "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        return bool(allowed)
    finally:
        await conn.close()


def _candidate_users() -> list[str]:
    users = ["postgres"]
    with contextlib.suppress(Exception):
        users.append(getpass.getuser())
    return list(dict.fromkeys(users))


def find_server_role(port: int = SERVER_PORT, timeout: float = 2.0) -> str | None:
    """A role that may create databases on the local server without a password."""
    if not port_open(LOOPBACK, port, timeout=0.5):
        return None

    def may_create(user: str) -> bool:
        url = f"postgresql://{user}@{LOOPBACK}:{port}/postgres"
        try:
            return run_async(functools.partial(_may_create_databases, url, timeout))
        except Exception:  # refused, password required, timeout: not this role
            return False

    return next((user for user in _candidate_users() if may_create(user)), None)


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")
        except asyncpg.PostgresSyntaxError:  # PostgreSQL < 13
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                name,
            )
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)}")
    finally:
        await conn.close()


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` (connections are ended) via the server of ``admin_url``."""
    run_async(functools.partial(_drop_database, admin_url, name))


def use_server(user: str, port: int = SERVER_PORT) -> StartedService:
    """A fresh database on the local server; dropped again by ``stop()``."""
    name = f"{DATABASE_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    admin_url = f"postgresql://{user}@{LOOPBACK}:{port}/postgres"
    run_async(functools.partial(_execute, admin_url, f"CREATE DATABASE {_quote_ident(name)}"))

    return StartedService(
        service="postgres",
        url=f"postgresql://{user}@{LOOPBACK}:{port}/{name}",
        description=f"database {name} on the server at {LOOPBACK}:{port}",
        cleanup=functools.partial(drop_database, admin_url, name),
    )


def postgres_bindir() -> Path | None:
    """A directory holding ``initdb`` and ``postgres``, or None."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(  # noqa: S603 - fixed argv
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))

    def version(path: str) -> tuple[int, ...]:
        parts = Path(path).parent.name.split(".")
        return tuple(int(p) for p in parts if p.isdigit())

    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    ]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for directory in candidates:
        if all(os.access(directory / exe, os.X_OK) for exe in ("initdb", "postgres")):
            return directory
    return None


def _run_as() -> pwd.struct_passwd | None:
    """The OS user to run the server as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise HarnessError("running as root and neither a 'postgres' nor a 'nobody' user exists")


def start_embedded(workdir: Path, bindir: Path, *, timeout: float = 60.0) -> StartedService:
    """initdb + postgres in ``workdir`` on a free loopback port."""
    workdir.mkdir(parents=True, exist_ok=True)
    account = _run_as()
    user = account.pw_name if account else None
    if account is not None:
        # Let the unprivileged server user reach (not list) its directory.
        os.chmod(workdir.parent, 0o711)  # noqa: S103 - search permission only
        os.chmod(workdir, 0o711)  # noqa: S103 - search permission only
        home = workdir / "pg"
        home.mkdir(exist_ok=True)
        os.chown(home, account.pw_uid, account.pw_gid)
    else:
        home = workdir / "pg"
        home.mkdir(exist_ok=True)
    data = home / "data"
    env = minimal_env({"LC_ALL": "C"})
    log = workdir / "initdb.log"
    with open(log, "wb") as out:
        result = subprocess.run(  # noqa: S603 - argv is built here
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            user=user,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        text = log.read_text(encoding="utf-8", errors="replace")
        raise HarnessError(f"initdb failed ({result.returncode}):\n{text[-3000:]}")

    last_error: HarnessError | None = None
    for attempt in range(3):  # a free port can be taken before the server binds it
        port = free_port()
        process = spawn(
            "postgres",
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-k",
                str(home),
                "-c",
                f"listen_addresses={LOOPBACK}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            cwd=home,
            log_path=workdir / f"postgres-{attempt}.log",
            env=env,
            user=user,
            stop_signal=signal.SIGINT,  # "fast" shutdown: does not wait for clients
            death_signal=signal.SIGQUIT,  # "immediate" shutdown
        )
        admin_url = f"postgresql://postgres@{LOOPBACK}:{port}/postgres"
        try:
            wait_until(
                functools.partial(postgres_answers, admin_url, 2.0),
                what=f"PostgreSQL ({bindir}) on {LOOPBACK}:{port}",
                timeout=timeout,
                process=process,
                interval=0.1,
            )
            run_async(functools.partial(_execute, admin_url, "CREATE DATABASE parkstream"))
        except HarnessError as exc:
            process.stop()
            last_error = exc
            continue
        except (OSError, asyncpg.PostgresError) as exc:
            process.stop()
            raise HarnessError(f"PostgreSQL on {LOOPBACK}:{port}: {exc}") from exc
        return StartedService(
            service="postgres",
            url=f"postgresql://postgres@{LOOPBACK}:{port}/parkstream",
            description=(
                f"PostgreSQL from {bindir} (pid {process.pid})"
                + (f" running as {user}" if user else "")
            ),
            processes=[process],
        )
    assert last_error is not None
    raise last_error


def start_pgserver(workdir: Path) -> StartedService:
    """PostgreSQL from the pip package ``pgserver`` (only if it is installed)."""
    try:
        module = importlib.import_module("pgserver")
    except ImportError as exc:
        raise HarnessError("the pip package pgserver is not installed") from exc
    server = module.get_server(str(workdir / "pgserver"), cleanup_mode="stop")
    url: str = server.get_uri()
    return StartedService(
        service="postgres",
        url=url,
        description=f"pgserver in {workdir / 'pgserver'}",
        cleanup=server.cleanup,
    )


def start_postgres(
    workdir: Path, *, mode: PostgresMode = "auto", timeout: float = 60.0
) -> StartedService:
    """PostgreSQL as described in the module docstring."""
    problems: list[str] = []
    if mode in ("auto", "server"):
        user = find_server_role()
        if user is not None:
            return use_server(user)
        problems.append(
            f"no server at {LOOPBACK}:{SERVER_PORT} lets 'postgres' create databases "
            "without a password"
        )
    if mode in ("auto", "embedded"):
        bindir = postgres_bindir()
        if bindir is not None:
            return start_embedded(workdir, bindir, timeout=timeout)
        problems.append("no PostgreSQL server binaries (initdb, postgres) found")
    if mode in ("auto", "pgserver"):
        try:
            return start_pgserver(workdir)
        except HarnessError as exc:
            problems.append(str(exc))
    raise HarnessError(
        "cannot provide PostgreSQL: "
        + "; ".join(problems)
        + ". Set PARKSTREAM_DATABASE_URL to a server you have."
    )
