"""A real PostgreSQL server for the tests: a throwaway cluster made with initdb
and started with pg_ctl on a free port in a temporary directory, or the server
named by LOGTRAIN_TEST_DATABASE_URL (a superuser URL) when that is set.

initdb refuses to run as root, so as root the cluster belongs to the
``postgres`` user (the Debian package creates it).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from peers import free_port


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise RuntimeError("PostgreSQL server binaries not found: run scripts/install-test-deps.sh")


class PostgresServer:
    def __init__(self) -> None:
        self.external = os.environ.get("LOGTRAIN_TEST_DATABASE_URL", "")
        self.dir: Path | None = None
        self.port = 0
        self.bindir = ""
        self.user: str | None = None

    # ------------------------------------------------------------------ process

    def _as_owner(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if self.user else list(args)

    def start(self) -> PostgresServer:
        if self.external:
            return self
        self.bindir = _bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="logtrain-pg-"))
        self.port = free_port()
        if os.geteuid() == 0:
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o755)
        subprocess.run(self._as_owner(f"{self.bindir}/initdb", "-D", str(self.dir / "data"),
                                      "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"),
                       check=True, capture_output=True)
        self._pg_ctl("start")
        return self

    def _pg_ctl(self, action: str) -> None:
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c full_page_writes=off -c synchronous_commit=off")
        args = [f"{self.bindir}/pg_ctl", "-D", str(self.dir / "data"), "-w", "-t", "30",
                "-l", str(self.dir / "server.log"), action]
        if action in ("start", "restart"):
            args += ["-o", opts]
        if action in ("stop", "restart"):
            args += ["-m", "fast"]
        subprocess.run(self._as_owner(*args), check=True, capture_output=True)

    def stop(self) -> None:
        if self.external or self.dir is None:
            return
        try:
            self._pg_ctl("stop")
        except subprocess.CalledProcessError:
            pass

    def start_again(self) -> None:
        self._pg_ctl("start")

    def restart(self) -> None:
        """Stops and starts the server: every connection is cut."""
        if self.external:
            raise RuntimeError("cannot restart an external server")
        self._pg_ctl("restart")

    def cleanup(self) -> None:
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ databases

    def url(self, dbname: str = "postgres", user: str = "postgres", password: str = "") -> str:
        if self.external:
            parts = urlsplit(self.external)
            host = parts.hostname or "127.0.0.1"
            port = f":{parts.port}" if parts.port else ""
            auth = user + (f":{password}" if password else "")
            return urlunsplit((parts.scheme, f"{auth}@{host}{port}", "/" + dbname, "", ""))
        auth = user + (f":{password}" if password else "")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres"):
        conn = psycopg2.connect(self.url(dbname) if not self.external or dbname != "postgres"
                                else self.external)
        conn.autocommit = True
        return conn

    def sql(self, statement: str, args: tuple = (), dbname: str = "postgres") -> list[tuple]:
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args or None)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def new_database(self, name: str, owner: str = "postgres") -> str:
        self.sql(f'drop database if exists "{name}" with (force)')
        self.sql(f'create database "{name}" owner "{owner}"')
        return name

    def new_role(self, name: str, password: str) -> None:
        self.sql(f'drop role if exists "{name}"')
        self.sql(f"create role \"{name}\" login password '{password}'")

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sql("select 1")
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
