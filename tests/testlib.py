"""Shared helpers for otachain's process-level tests (tests/system, tests/interop).

Standard library only (plus pytest for the fixtures). Importable as `testlib`
because the root conftest.py puts tests/ on sys.path.

Fixtures defined here are registered by importing them into a conftest.py:

    from testlib import nginx, nginx_factory, tufjs  # noqa: F401

Plain helpers:
    REPO, VECTORS, INTEROP                paths
    bin_dir(), otachain_path(), otachain(*args, ...)
    programs_of(bin_dir)                    the programs of bin_dir inside a with block
    free_port()
    self_signed_cert(dir)                   (cert, key) for 127.0.0.1, via the openssl CLI
    ed25519_pem_from_seed(seed_hex, path)  PKCS#8 PEM via the openssl CLI
    forge(infile, out, set=..., sign=..., ...)  runs tests/interop/forge.mjs
    run_tufjs(...)                          runs tests/interop/tufjs-client.mjs
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
INTEROP = TESTS / "interop"
VECTORS = (REPO / ".." / "shared" / "vectors").resolve()

NGINX = "/usr/sbin/nginx"


class CommandFailed(subprocess.CalledProcessError):
    """A checked command exited non-zero; str() shows its output."""

    def __str__(self):
        return (
            f"command {self.cmd!r} exited {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def _run(cmd, *, check, env, timeout, input=None, cwd=None):
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [str(c) for c in cmd],
        input=input,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise CommandFailed(proc.returncode, proc.args, proc.stdout, proc.stderr)
    return proc


# ---------------------------------------------------------------- otachain CLI


def bin_dir():
    """Meson build directory holding the programs (OTACHAIN_BIN_DIR, else build-asan)."""
    return Path(os.environ.get("OTACHAIN_BIN_DIR") or REPO / "build-asan").resolve()


@contextmanager
def programs_of(dir):
    """Runs the programs of dir (None: unchanged) inside the block: every
    helper reads OTACHAIN_BIN_DIR at each call. Process-wide: the power-cut
    suites switch between the cut build and the sanitizer build with it."""
    old = os.environ.get("OTACHAIN_BIN_DIR")
    if dir is not None:
        os.environ["OTACHAIN_BIN_DIR"] = str(Path(dir).resolve())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("OTACHAIN_BIN_DIR", None)
        else:
            os.environ["OTACHAIN_BIN_DIR"] = old


def otachain_path():
    return bin_dir() / "programs" / "otachain" / "otachain"


def otachain(*args, check=True, env=None, timeout=120, input=None, cwd=None):
    """Run the otachain CLI; returns subprocess.CompletedProcess (text, captured).

    env: extra variables laid over the current environment (ASAN_OPTIONS etc.
    pass through). check=True raises CommandFailed on a non-zero exit.
    """
    exe = otachain_path()
    if not exe.is_file():
        pytest.fail(f"{exe} not found: build it first (make build-asan)", pytrace=False)
    return _run([exe, *args], check=check, env=env, timeout=timeout, input=input, cwd=cwd)


# ------------------------------------------------------------------ networking


_next_port = [None]


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Under pytest-xdist each worker draws from its own slice of 10000-31999
    (below Linux's ephemeral range, so neither another worker's servers nor
    anyone's outgoing connections can take it between this check and the
    server's bind). Within a worker the ports are handed out in turn, so
    two servers of one test that are given ports before either starts
    never get the same one; a port in use or in TIME_WAIT fails the bind
    and the next one is tried.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    span = 2000
    base = 10000 + (index % 11) * span
    if _next_port[0] is None:
        _next_port[0] = random.randrange(span)
    for _ in range(span):
        port = base + _next_port[0] % span
        _next_port[0] += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"free_port: no free port in {base}-{base + span - 1}")


def _wait_listening(port, proc, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def self_signed_cert(dir, cn="127.0.0.1"):
    """A self-signed ECDSA P-256 server certificate for IP cn: (cert, key) paths."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    cert, key = dir / "tls.crt", dir / "tls.key"
    proc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={cn}",
         "-addext", f"subjectAltName=IP:{cn}"],
        stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl req failed: {proc.stderr.decode(errors='replace')}")
    return cert, key


# ----------------------------------------------------------------------- nginx

_NGINX_CONF = """\
{user}worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    log_format otachain '$request $status $body_bytes_sent';
    log_format otachain_conn '$connection $server_protocol $request_uri';
    access_log {tmp}/access.log otachain;
    access_log {tmp}/conn.log otachain_conn;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{
        application/json json;
        text/plain txt note;
    }}
    default_type application/octet-stream;
    sendfile on;
    server {{
        listen 127.0.0.1:{port}{listen_opts};
        server_name localhost;
{tls_conf}
        root {root};
        autoindex off;
{extra}
    }}
}}
"""


class Nginx:
    """A real nginx serving `root` as static files on 127.0.0.1.

    .url          http://127.0.0.1:PORT (no trailing slash); https:// with tls
    tls=True      serves HTTPS with HTTP/2 offered (ALPN), on a self-signed
                  certificate for 127.0.0.1: .ca_file is its path (the CA to
                  trust)
    .root         Path of the served directory (tests may add files any time)
    .access_log() lines "$request $status $body_bytes_sent",
                  e.g. "GET /1.root.json HTTP/1.1 200 1234"
    .requests()   the same parsed: list of (method, path, status, bytes)
    .connections() list of (connection serial, protocol, uri) per request,
                  e.g. (1, "HTTP/2.0", "/chunks/x.pack")
    .error_log()  text of nginx's error log
    """

    def __init__(self, root, tmp, extra_conf="", tls=False):
        self.root = Path(root).resolve()
        self.tmp = Path(tmp).resolve()
        self.extra_conf = extra_conf
        self.tls = tls
        self.ca_file = None
        self.proc = None
        self.port = None
        self.url = None

    def start(self, attempts=5):
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        # As root, nginx workers would run as 'nobody', which cannot enter
        # pytest's 0700 temp directories: keep the workers as root there.
        user = "user root;\n" if os.geteuid() == 0 else ""
        listen_opts, tls_conf, scheme = "", "", "http"
        if self.tls:
            cert, key = self_signed_cert(self.tmp)
            self.ca_file = cert
            listen_opts, scheme = " ssl http2", "https"
            tls_conf = (f"        ssl_certificate {cert};\n"
                        f"        ssl_certificate_key {key};\n"
                        "        ssl_protocols TLSv1.2 TLSv1.3;\n")
        for _ in range(attempts):
            port = free_port()
            conf = self.tmp / "nginx.conf"
            conf.write_text(
                _NGINX_CONF.format(
                    user=user, tmp=self.tmp, port=port, root=self.root, extra=self.extra_conf,
                    listen_opts=listen_opts, tls_conf=tls_conf
                )
            )
            with open(self.tmp / "stderr.log", "w") as stderr:
                proc = subprocess.Popen(
                    [NGINX, "-p", str(self.tmp), "-e", str(self.tmp / "error.log"),
                     "-c", str(conf), "-g", "daemon off;"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            if _wait_listening(port, proc, time.monotonic() + 10):
                self.proc, self.port = proc, port
                self.url = f"{scheme}://127.0.0.1:{port}"
                return self
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            err = (self.tmp / "stderr.log").read_text()
            if "Address already in use" not in (err + self.error_log()):
                raise RuntimeError(f"nginx did not start:\n{err}\n{self.error_log()}")
        raise RuntimeError("nginx: no free port after several attempts")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)  # graceful shutdown
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def access_log(self):
        path = self.tmp / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def requests(self):
        out = []
        for line in self.access_log():
            parts = line.split(" ")
            if len(parts) >= 5:
                out.append((parts[0], parts[1], int(parts[-2]), int(parts[-1])))
        return out

    def connections(self):
        path = self.tmp / "conn.log"
        out = []
        for line in (path.read_text().splitlines() if path.exists() else []):
            conn, proto, uri = line.split(" ", 2)
            out.append((int(conn), proto, uri))
        return out

    def error_log(self):
        path = self.tmp / "error.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def nginx_factory(tmp_path):
    """Start more nginx servers: nginx_factory(root=None, extra_conf="", tls=False) -> Nginx.

    extra_conf is pasted into the server block (e.g. a location returning 500
    or a limit_rate for slow-retrieval tests). All are stopped at teardown.
    """
    servers = []

    def start(root=None, extra_conf="", tls=False):
        n = len(servers)
        root = Path(root) if root is not None else tmp_path / f"www{n}"
        srv = Nginx(root, tmp_path / f"nginx{n}", extra_conf, tls)
        servers.append(srv)
        return srv.start()

    yield start
    for srv in servers:
        srv.stop()


@pytest.fixture
def nginx(nginx_factory):
    """One nginx serving an empty directory `nginx.root` (tmp_path/www0)."""
    return nginx_factory()


# --------------------------------------------------------------------- node

def _node():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found: run scripts/install-deps (make deps)", pytrace=False)
    if not (INTEROP / "node_modules" / "tuf-js").is_dir():
        pytest.fail(
            f"{INTEROP}/node_modules is missing: run scripts/install-deps (make deps)",
            pytrace=False,
        )
    return node


def run_tufjs(metadata_url, targets_url, trusted_root, cache, target=None, out=None, timeout=120):
    """Run tufjs-client.mjs; return its JSON result (dict with "ok").

    Raises CommandFailed on a usage error or output that is not one JSON
    line, and when the exit status contradicts "ok".
    """
    cmd = [_node(), INTEROP / "tufjs-client.mjs",
           "--metadata-url", metadata_url, "--targets-url", targets_url,
           "--trusted-root", trusted_root, "--cache", cache]
    if target is not None:
        cmd += ["--target", target, "--out", out]
    proc = _run(cmd, check=False, env=None, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if len(lines) == 1 else None
    except ValueError:
        result = None
    if result is None or proc.returncode not in (0, 1) or result.get("ok") != (proc.returncode == 0):
        raise CommandFailed(proc.returncode, proc.args, proc.stdout, proc.stderr)
    return result


@pytest.fixture
def tufjs():
    """tufjs(metadata_url, targets_url, trusted_root, cache, target=None, out=None) -> dict."""
    _node()
    return run_tufjs


def forge(infile, out, set=(), delete=(), sign=(), clear_sigs=False, dup_sig=False, timeout=60):
    """Run tests/interop/forge.mjs; returns CompletedProcess (raises on failure).

    set: iterable of "PATH=VALUE" strings or (path, value) pairs, value being
    any JSON-serialisable Python value.
    """
    cmd = [_node(), INTEROP / "forge.mjs", infile]
    for item in set:
        if isinstance(item, tuple):
            item = f"{item[0]}={json.dumps(item[1])}"
        cmd += ["--set", item]
    for p in delete:
        cmd += ["--del", p]
    if clear_sigs:
        cmd.append("--clear-sigs")
    for key in sign:
        cmd += ["--sign", key]
    if dup_sig:
        cmd.append("--dup-sig")
    cmd += ["--out", out]
    return _run(cmd, check=True, env=None, timeout=timeout)


# --------------------------------------------------------------------- keys

_ED25519_PKCS8_PREFIX = "302e020100300506032b657004220420"


def ed25519_pem_from_seed(seed_hex, path):
    """Write the Ed25519 private key with this 32-byte seed as PKCS#8 PEM."""
    der = bytes.fromhex(_ED25519_PKCS8_PREFIX + seed_hex)
    if len(der) != 48:
        raise ValueError("Ed25519 seed must be 32 bytes (64 hex)")
    proc = subprocess.run(
        ["openssl", "pkey", "-inform", "DER", "-out", str(path)],
        input=der,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl pkey failed: {proc.stderr.decode(errors='replace')}")
    os.chmod(path, 0o600)
    return Path(path)
