"""Kubernetes datasource figures: resident memory and CPU of the agent listing
and watching 1,500 deployments and 3,000 replicasets, and the time from an
annotation change to the first line at the new drain.

The local fake API server (tests/kubeapi.py, the API's list and watch wire
protocol) serves objects the size of real ones (a kubectl last-applied
annotation, managedFields, spec and status: about 4.5 KB each), a fifth of
them annotated with drains. The agent (`python -m logtrain`, syslog TCP input,
KUBERNETES_DATASOURCE=true) is compared with the same agent with a routes file
only, with the datasource on an empty cluster (what the code and libraries
cost), and with every input there is enabled as well (syslog TCP, UDP, TLS,
HTTP events and syslog, Kubernetes container logs named through the API). While it watches, the server changes the status of replicasets (MODIFIED
events that change no route) at --churn events a second.

For the latency, a sender writes a line for ``latN.bench`` into the agent's
TCP input every millisecond; a new deployment ``latN`` annotated with a drain
(a TCP sink) is then applied, and the time from the API server's answer to
the first line at the sink is taken, --rounds times.

    python bench/kube_routes.py [--deployments 1500] [--replicasets 3000] [--rounds 20] [--no-postgres]

The last variant adds the Postgres datasource and the persistent store (a
throwaway cluster from tests/pgserver.py): everything the agent has but Envoy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from kube_fake import DRAINS, FakeAPI, obj  # noqa: E402
from peers import Agent, free_port, make_certs  # noqa: E402
from pgserver import PostgresServer  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from postgres import Sink  # noqa: E402  (records when it first sees each hostname)


def big(kind: str, name: str, ns: str, drains: str = "") -> dict:
    o = obj(kind, name, ns)
    m = o["metadata"]
    m["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{" + "x" * 2500 + "}"
    m["managedFields"] = [{"manager": f"m{i}", "operation": "Update", "apiVersion": "apps/v1",
                           "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {
                               "f:replicas": {}, "f:template": {"f:metadata": {}}}}}
                          for i in range(6)]
    if drains:
        m["annotations"][DRAINS] = drains
    return o


def proc_cpu(pid: int) -> float:
    """utime + stime of ``pid``, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mem(pid: int) -> tuple[float, float, float]:
    """(VmRSS, anonymous, VmHWM) in MiB."""
    status = {k: v for k, _, v in (x.partition(":") for x in
                                   Path(f"/proc/{pid}/status").read_text().splitlines())}
    anon = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            anon = int(line.split()[1])
    return (int(status["VmRSS"].split()[0]) / 1024, anon / 1024,
            int(status["VmHWM"].split()[0]) / 1024)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deployments", type=int, default=1500)
    ap.add_argument("--replicasets", type=int, default=3000)
    ap.add_argument("--namespaces", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--watch-seconds", type=float, default=60)
    ap.add_argument("--churn", type=float, default=20, help="MODIFIED events a second")
    ap.add_argument("--no-postgres", action="store_true",
                    help="leave out the variant with the Postgres datasource and store as well")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logtrain-bench-kube-"))
    sink = Sink()
    drain = f"syslog+tcp://127.0.0.1:{sink.port}"
    objects = []
    for i in range(args.deployments):
        ns = f"team{i % args.namespaces}"
        objects.append(big("Deployment", f"app{i}", ns, drain if i % 5 == 0 else ""))
    per = max(1, args.replicasets // max(1, args.deployments))
    for i in range(args.replicasets):
        d = i // per
        objects.append(big("ReplicaSet", f"app{d}-{i % per:x}5d4f8", f"team{d % args.namespaces}",
                           drain if d % 5 == 0 else ""))
    api = FakeAPI(work / "api", objects).start()
    empty = FakeAPI(work / "empty", []).start()
    size = (work / "api" / "objects.json").stat().st_size
    routes = work / "routes"
    routes.write_text("nothing.example stdout://\n")
    common = {"SYSLOG_TCP": "true", "DRAIN_ALLOW_NETWORKS": "127.0.0.1/32",
              "METRICS": "true", "STATS_INTERVAL": "0"}
    results = {}
    pg = None if args.no_postgres else PostgresServer().start()
    try:
        certs = make_certs(work / "certs")
        logs = work / "containers"
        logs.mkdir()
        kube = {"KUBERNETES_DATASOURCE": "true", "API_TOKEN": "bench",
                "KUBE_CONFIG": str(api.kubeconfig(work / "kubeconfig.json"))}
        everything = {**kube, "SYSLOG_UDP": "true", "SYSLOG_UDP_PORT": str(free_port()),
                      "SYSLOG_TLS": "true", "SYSLOG_TLS_PORT": str(free_port()),
                      "SYSLOG_TLS_CERT_PEM": str(certs["server.pem"]),
                      "SYSLOG_TLS_KEY_PEM": str(certs["server.key"]),
                      "HTTP_EVENTS": "true", "HTTP_SYSLOG": "true", "KUBERNETES": "true",
                      "KUBERNETES_LOG_PATH": str(logs), "ROUTES_FILE": str(routes)}
        for name, env in (("routes file only", {"ROUTES_FILE": str(routes)}),
                          ("KUBERNETES_DATASOURCE, empty cluster", {
                              "KUBERNETES_DATASOURCE": "true", "API_TOKEN": "bench",
                              "KUBE_CONFIG": str(empty.kubeconfig(work / "empty.json"))}),
                          ("KUBERNETES_DATASOURCE", kube),
                          ("every input + KUBERNETES_DATASOURCE", everything),
                          *([("  + POSTGRES + PERSISTENT", {
                              **everything, "POSTGRES": "true", "DATABASE_URL": pg.url(),
                              "PERSISTENT": "true", "PERSISTENT_DATABASE_URL": pg.url()})]
                            if pg is not None else [])):
            tcp = free_port()
            started = time.monotonic()
            agent = Agent(work / name.replace(" ", "-"),
                          {**common, "SYSLOG_TCP_PORT": str(tcp), **env}).start()
            ready = time.monotonic() - started
            pid = agent.proc.pid
            cpu_start = proc_cpu(pid)
            time.sleep(2)
            after_load = mem(pid)
            # watching, with status churn on replicasets
            stop = threading.Event()

            def churn(stop: threading.Event = stop) -> None:
                i = 0
                while not stop.is_set():
                    d = (i * 7) % args.deployments
                    o = big("ReplicaSet", f"app{d}-05d4f8", f"team{d % args.namespaces}",
                            drain if d % 5 == 0 else "")
                    o["status"]["observedGeneration"] = i
                    api.apply(o)
                    i += 1
                    time.sleep(1 / args.churn)

            t = threading.Thread(target=churn)
            c0 = proc_cpu(pid)
            if name == "KUBERNETES_DATASOURCE":
                t.start()
            time.sleep(args.watch_seconds)
            stop.set()
            if t.is_alive():
                t.join()
            watch_cpu = (proc_cpu(pid) - c0) / args.watch_seconds * 100
            lat = []
            if name == "KUBERNETES_DATASOURCE":
                with socket.create_connection(("127.0.0.1", tcp)) as s:
                    for i in range(args.rounds):
                        host = f"lat{i}.bench"
                        done = threading.Event()

                        def send(host: str = host, done: threading.Event = done) -> None:
                            line = f"<14>1 2026-11-25T00:00:00Z {host} app - - - x\n".encode()
                            while not done.is_set():
                                s.sendall(line)
                                time.sleep(0.001)

                        st = threading.Thread(target=send)
                        st.start()
                        time.sleep(0.05)
                        applied = time.monotonic()  # before the request is sent
                        api.apply(big("Deployment", f"lat{i}", "bench", drain))
                        while host not in sink.first and time.monotonic() < applied + 5:
                            time.sleep(0.0005)
                        done.set()
                        st.join()
                        if host in sink.first:
                            lat.append(sink.first[host] - applied)
            events = agent.metric("logtrain_kubernetes_events_total", type="MODIFIED")
            results[name] = (ready, cpu_start, after_load, mem(pid), watch_cpu, sorted(lat),
                             agent.metric("logtrain_routes"), events)
            agent.stop()
    finally:
        api.stop()
        empty.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.deployments} deployments + {args.replicasets} replicasets "
          f"({len(objects) // 5} annotated; {size / 1e6:.1f} MB of JSON), "
          f"{args.namespaces} namespaces; watched {args.watch_seconds:.0f} s with "
          f"{args.churn:.0f} replicaset MODIFIED events/s")
    base = results["routes file only"][2]
    for name, (ready, cpu0, load, end, wcpu, lat, nroutes, events) in results.items():
        print(f"  {name:36s} ready {ready:5.2f} s  CPU to ready {cpu0:5.2f} s  routes {nroutes:5.0f}"
              f"\n  {'':36s} RSS after list {load[0]:5.1f} MiB ({load[0] - base[0]:+5.1f})  "
              f"anonymous {load[1]:5.1f} MiB ({load[1] - base[1]:+5.1f})"
              f"\n  {'':36s} after watching: RSS {end[0]:5.1f} MiB  peak (VmHWM) {end[2]:5.1f} MiB"
              f"  CPU while watching {wcpu:4.2f}% of a core ({events:.0f} MODIFIED events)")
        if lat:
            p90 = lat[min(len(lat) - 1, int(len(lat) * 0.9))]
            print(f"  {'':36s} annotation applied -> first line at the new drain "
                  f"({len(lat)} of {args.rounds}): median {statistics.median(lat) * 1000:.1f} ms"
                  f"  p90 {p90 * 1000:.1f} ms  max {lat[-1] * 1000:.1f} ms")
    sys.stdout.flush()
    os._exit(0)  # the sink's threads


if __name__ == "__main__":
    main()
