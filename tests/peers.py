"""Real processes the end-to-end tests run: the agent itself, rsyslog, openssl.

Nothing here is a mock: the agent is started as `python -m logtrain` with its
configuration in the environment, rsyslog is Debian's rsyslogd in the
foreground with a configuration written per test, certificates come from the
openssl command line.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1, chosen below the kernel's
    ephemeral range: a port from bind(0) can be taken by any outgoing
    connection before the process it is meant for binds it."""
    top = _ephemeral_start()
    while True:
        port = random.randrange(10000, top)
        try:
            for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, k) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc/PID/task/*/children."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass  # gone meanwhile
    return out


def status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM); 0 for a process gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- the agent


class Agent:
    """The agent as a subprocess; its own log is collected in ``log_path``."""

    def __init__(self, workdir: Path, env: dict[str, str], routes: str | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.routes_path = workdir / "routes"
        self.log_path = workdir / "agent.log"
        self.stdout_path = workdir / "agent.stdout"
        self.http_port = int(env.get("HTTP_PORT") or free_port())
        base = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/root"),
            "HTTP_PORT": str(self.http_port),
            "BIND_ADDRESS": "127.0.0.1",
            "STATE_DIR": str(workdir / "state"),
            "LOG_LEVEL": "info",
            "METRICS": "true",
            "ROUTES_RELOAD_INTERVAL": "0.2",
        }
        if routes is not None:
            self.routes_path.write_text(routes)
            base["ROUTES_FILE"] = str(self.routes_path)
        base.update(env)
        self.env = base
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> Agent:
        self._log = open(self.log_path, "ab")
        self._out = open(self.stdout_path, "ab")
        # LOGTRAIN_TEST_BINARY runs the tests against a built executable
        # (packaging/build-binary.sh) instead of the source tree.
        binary = os.environ.get("LOGTRAIN_TEST_BINARY")
        self.proc = subprocess.Popen(
            [binary, "run"] if binary else [sys.executable, "-m", "logtrain", "run"],
            env=self.env, cwd=str(ROOT), stdout=self._out, stderr=self._log,
        )
        if wait:
            wait_for(lambda: self.proc.poll() is not None or self.healthy(), 15,
                     what="the agent's /health")
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.log()}")
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health", timeout=0.5) as r:
                return r.status == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> dict[str, float]:
        """``name{labels}`` -> value from /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the series of ``name`` whose labels include ``labels``."""
        total = 0.0
        for key, value in self.metrics().items():
            n, _, rest = key.partition("{")
            if n != name:
                continue
            if all(f'{k}="{v}"' in rest for k, v in labels.items()):
                total += value
        return total

    def pids(self) -> list[int]:
        """The agent's processes: the one started and its descendants (a
        one-file executable is a launcher running the agent as its child)."""
        return process_tree(self.proc.pid)

    def _status_kib(self, field: str) -> int:
        """``field`` of /proc/PID/status summed over every process of the agent."""
        total = 0
        for pid in self.pids():
            total += status_kib(pid, field)
        return total

    def rss_mib(self) -> float:
        """The agent's resident memory now, every process counted."""
        return self._status_kib("VmRSS") / 1024

    def peak_rss_mib(self) -> float:
        """The agent's peak resident memory since it started (the kernel's
        VmHWM), summed over its processes."""
        return self._status_kib("VmHWM") / 1024

    def health_ms(self, timeout: float = 5.0) -> float:
        """Milliseconds for one GET /health on a new connection (timeout: ``timeout`` * 1000)."""
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=timeout) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                return timeout * 1000
        except OSError:
            return timeout * 1000
        return (time.monotonic() - started) * 1000

    def post(self, path: str, body: bytes, headers: dict | None = None) -> tuple[int, dict, bytes]:
        return self.request("POST", path, body, headers)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=body,
                                     method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def set_routes(self, routes: str) -> None:
        tmp = self.routes_path.with_suffix(".tmp")
        tmp.write_text(routes)
        os.replace(tmp, self.routes_path)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self._out.close()
        return self.proc.returncode


# ----------------------------------------------------------------------------- certificates


def make_certs(d: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost/127.0.0.1 and a client
    certificate, all signed by the CA, made with the openssl command."""
    d.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=logtrain test CA")
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={'localhost' if name == 'server' else 'logtrain test client'}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key",
        "-out", "other-ca.pem", "-days", "2", "-subj", "/CN=some other CA")
    return {n: d / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key",
                                "other-ca.pem")}


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


# ----------------------------------------------------------------------------- rsyslog

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"


class Rsyslog:
    """rsyslogd in the foreground receiving on TCP, UDP and (with ``certs``) TLS,
    writing ``HOSTNAME APP-NAME MSG`` per line to ``out``, or with ``forward_to``
    relaying every message as RFC5424 over TCP to that port on 127.0.0.1, as
    its documentation configures a relay."""

    def __init__(self, workdir: Path, certs: dict[str, Path] | None = None,
                 forward_to: int | None = None) -> None:
        self.dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.out = workdir / "received.log"
        self.tcp_port = free_port()
        self.udp_port = free_port()
        self.tls_port = free_port() if certs else None
        self.conf = workdir / "rsyslog.conf"
        tls_global = tls_input = ""
        if certs:
            tls_global = (f' defaultNetstreamDriverCAFile="{certs["ca.pem"]}"'
                          f' defaultNetstreamDriverCertFile="{certs["server.pem"]}"'
                          f' defaultNetstreamDriverKeyFile="{certs["server.key"]}"')
            tls_input = (f'input(type="imtcp" port="{self.tls_port}" ruleset="out" '
                         'streamDriver.name="ossl" streamDriver.mode="1" '
                         'streamDriver.authMode="anon")\n')
        self.conf.write_text(
            f'global(workDirectory="{workdir}" maxMessageSize="256k"{tls_global})\n'
            'module(load="imtcp" maxSessions="2000")\n'
            'module(load="imudp")\n'
            f'input(type="imtcp" port="{self.tcp_port}" ruleset="out")\n'
            f'input(type="imudp" port="{self.udp_port}" ruleset="out" rcvBufSize="4m")\n'
            + tls_input +
            'template(name="fields" type="string" string="%HOSTNAME% %APP-NAME% %msg%\\n")\n'
            'ruleset(name="out") {\n'
            + (f'  action(type="omfile" file="{self.out}" template="fields" flushOnTXEnd="on")\n'
               if forward_to is None else
               f'  action(type="omfwd" target="127.0.0.1" port="{forward_to}" protocol="tcp" '
               'template="RSYSLOG_SyslogProtocol23Format")\n')
            + '}\n'
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> Rsyslog:
        self._err = open(self.dir / "rsyslogd.stderr", "ab")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.dir / "rsyslogd.pid")],
            stdout=self._err, stderr=self._err,
        )
        wait_for(lambda: self.proc.poll() is not None or port_open(self.tcp_port), 10,
                 what="rsyslogd to listen")
        if self.tls_port:
            wait_for(lambda: port_open(self.tls_port), 10, what="rsyslogd TLS listener")
        if self.proc.poll() is not None:
            raise AssertionError("rsyslogd exited: " + (self.dir / "rsyslogd.stderr").read_text())
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._err.close()

    def lines(self) -> list[str]:
        if not self.out.exists():
            return []
        return self.out.read_text(errors="replace").splitlines()

    def wait_lines(self, n: int, timeout: float = 20) -> list[str]:
        try:
            wait_for(lambda: len(self.lines()) >= n, timeout, 0.1, what=f"{n} lines at rsyslog")
        except AssertionError:
            raise AssertionError(f"rsyslog received {len(self.lines())} of {n} lines") from None
        return self.lines()


class LineSink:
    """A TCP receiver keeping every newline-terminated line it gets, as bytes:
    the same receiver for whatever relay is being compared."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.data: list[bytes] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        chunks = []
        self.data.append(b"")
        slot = len(self.data) - 1
        with conn:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
                self.data[slot] = b"".join(chunks)

    def lines(self) -> list[bytes]:
        return [x for d in list(self.data) for x in d.split(b"\n")[:-1]]

    def wait_lines(self, n: int, timeout: float = 20) -> list[bytes]:
        wait_for(lambda: len(self.lines()) >= n, timeout, 0.05, what=f"{n} lines at the sink")
        return self.lines()

    def close(self) -> None:
        self.sock.close()


def logger(*args: str, stdin: str | None = None) -> None:
    """util-linux logger, a real RFC5424/RFC3164 client."""
    subprocess.run(["logger", *args], input=stdin, text=True, check=True, timeout=60)


def json_lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
