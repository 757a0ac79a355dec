"""What the Postgres benchmarks share (scripts/bench-statements, scripts/bench-load): a
private Postgres cluster, the pinned postgres_exporter, a byte-counting proxy, and the
statements and server time a role ran, read from pg_stat_statements.

Not a test and not run by one: the benchmarks print figures for the notes and the docs.
"""

import asyncio
import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
PG_BIN = "/usr/lib/postgresql/15/bin"
# postgres_exporter from Debian sid, pinned like the matrix's servers (scripts/servers).
EXPORTER_PACKAGE = "prometheus-postgres-exporter"
EXPORTER_VERSION = "0.19.1-1+b1"
EXPORTER_ARCHIVE = f"prometheus-postgres-exporter_{EXPORTER_VERSION}_amd64.deb"
EXPORTER_SHA256 = "3c6f53fef1600a3464755072e7ac74a62e8f83c1fb11a4aa1e5e93b554fc48dc"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def psql(port, sql, user="postgres"):
    return sh(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", "postgres",
               "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])


def postgres_exporter(bench):
    """The pinned postgres_exporter binary, from the servers cache or fetched into it."""
    cache = os.environ.get("PULSE_SERVERS_DIR") or os.path.expanduser("~/.cache/pulse-exporter/servers")
    tree = os.path.join(cache, "postgres-exporter-0.19")
    binary = os.path.join(tree, "usr/bin/prometheus-postgres-exporter")
    if os.path.exists(binary):
        return binary
    loader = importlib.machinery.SourceFileLoader("servers", os.path.join(ROOT, "scripts/servers"))
    spec = importlib.util.spec_from_loader("servers", loader)
    servers = importlib.util.module_from_spec(spec)
    loader.exec_module(servers)
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        apt = servers.PrivateApt("postgres-exporter", "sid", tmp)
        pin = servers.Pin("postgres-exporter", "apt:sid", EXPORTER_PACKAGE, EXPORTER_VERSION,
                          EXPORTER_ARCHIVE, EXPORTER_SHA256, "")
        deb = apt.download(pin)
        with open(deb, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != EXPORTER_SHA256:
            sys.exit(f"{bench}: {EXPORTER_ARCHIVE}: sha256 {digest}, pinned {EXPORTER_SHA256}")
        os.makedirs(tree, exist_ok=True)
        sh(["dpkg", "-x", deb, tree])
    return binary


def enabled_collectors(exporter):
    """The collectors postgres_exporter runs by default, from its --help (a flag's text may
    wrap over several lines)."""
    text = subprocess.run([exporter, "--help"], capture_output=True, text=True).stderr
    text += subprocess.run([exporter, "--help"], capture_output=True, text=True).stdout
    entries, current = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            current = [stripped]
            entries.append(current)
        elif current is not None:
            current.append(stripped)
    out = []
    for e in entries:
        flag, rest = e[0].split()[0], " ".join(e)
        if flag.startswith("--collector.") and "." not in flag[len("--collector."):] \
                and "(default: enabled)" in rest:
            out.append(flag[len("--collector."):])
    return out


class Cluster:
    """A private Postgres 15 cluster with pg_stat_statements preloaded, on a free port of
    127.0.0.1; `stop()` removes it."""

    def __init__(self, prefix, settings=""):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        shutil.chown(self.tmp, "postgres", "postgres")
        self.data = os.path.join(self.tmp, "data")
        self.port = free_port()
        sh(["runuser", "-u", "postgres", "--", f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust",
            "-U", "postgres", "--no-sync"])
        sh(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", self.data, "-l",
            f"{self.data}.log", "-w", "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.tmp} "
            "-c fsync=off -c shared_preload_libraries=pg_stat_statements "
            f"-c pg_stat_statements.max=10000 {settings}", "start"])

    def stop(self):
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", self.data,
                        "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


class Proxy:
    """A TCP proxy to Postgres on its own thread, counting the bytes each way."""

    def __init__(self, upstream):
        self.upstream, self.port, self.bytes, self.sent = upstream, free_port(), 0, 0
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self.start(), self.loop).result()

    async def start(self):
        self.server = await asyncio.start_server(self.client, "127.0.0.1", self.port)

    async def pipe(self, reader, writer, count):
        try:
            while data := await reader.read(65536):
                if count:
                    self.bytes += len(data)
                else:
                    self.sent += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def client(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        await asyncio.gather(self.pipe(reader, up_writer, False), self.pipe(up_reader, writer, True))


def counters(port, role, like=None):
    """(calls, total exec and plan ms) of every statement `role` ran, from pg_stat_statements;
    with `like`, only those whose text matches that pattern."""
    where = f" AND s.query LIKE '{like}'" if like else ""
    out = psql(port, "SELECT coalesce(sum(s.calls), 0), coalesce(sum(s.total_exec_time + s.total_plan_time), 0) "
                     "FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                     f"WHERE r.rolname = '{role}'{where}").strip().split("|")
    return float(out[0]), float(out[1])


def stop_all(children):
    """Ends every child process, killing one that does not stop within 10 s."""
    for c in children:
        c.terminate()
    for c in children:
        try:
            c.wait(timeout=10)
        except subprocess.TimeoutExpired:
            c.kill()
