"""otachain-server for process-level tests (tests/system).

    fleet = Fleet.create(tmp_path / "ca")                 # otachain ca init + server cert
    dev = fleet.device("cam-0001")                         # (cert, key) from the device CA
    srv = Server(tmp_path / "srv", repo.dir, fleet).start()
    c = srv.device(dev)                                    # keep-alive mTLS client
    r = c.checkin(checkin_body())                          # Reply(status, headers, body)
    tok = srv.token("ops", "admin")                        # otachain-server token create
    r = srv.admin(tok).get("/admin/v1/devices/cam-0001")
    srv.stop()

The server runs on 127.0.0.1 with port 0 on every listener (it logs the
ports it got). Its clock is a file (OTACHAIN_TEST_NOW=@FILE, test builds
only): srv.set_time(t) moves it without sleeping. Certificates are made
with `otachain ca`; TLS clients are Python's ssl module and, where the
issue asks for it, the openssl command line.
"""

import http.client
import json
import os
import re
import signal
import sqlite3
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from testlib import bin_dir, otachain

# The injected clock starts at the real time of the test run, so that what
# the CLI signs with the system clock (metadata expiry) agrees with it;
# certificates are issued on the injected clock (Fleet passes it).
T0 = int(time.time())


def server_path():
    return bin_dir() / "programs" / "otachain-server" / "otachain-server"


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode(errors="replace")


def checkin_body(product="cam", hardware="rev-a", version="1.0.0", root_version=1, **extra):
    """A check-in body (docs/api/device-v1.md) as a dict."""
    body = {"running": {"product": product, "hardware": hardware, "version": version},
            "trusted": {"root_version": root_version}}
    for k, v in extra.items():
        body[k] = v
    return body


def trusted_now(repo):
    """The "trusted" member of a device that is current with repo (an
    otarepo.Repo): its answer then carries no bundle."""
    t = {r + "_version": repo.version(r) for r in ("root", "timestamp", "snapshot", "targets")}
    cp = Path(repo.dir) / "public" / "ledger" / "checkpoint"
    if cp.exists():
        lines = cp.read_text().split("\n")
        t["checkpoint"] = {"size": int(lines[1]), "hash": lines[2]}
    return t


class Fleet:
    """A CA directory with a server certificate for 127.0.0.1."""

    def __init__(self, dir):
        self.dir = Path(dir)
        self.ca = self.dir / "ca"

    @classmethod
    def create(cls, dir, env=None):
        f = cls(dir)
        f.dir.mkdir(parents=True, exist_ok=True)
        f.env = dict(env or {"OTACHAIN_TEST_NOW": str(T0)})
        otachain("ca", "init", f.ca, "--name", "test", env=env)
        otachain("ca", "issue-server", f.ca, "srv", "--ip", "127.0.0.1", "--dns", "localhost",
                 "--out", f.dir / "server", env=env)
        return f

    @property
    def server_ca(self):
        return self.ca / "server-ca.crt"

    @property
    def device_ca(self):
        return self.ca / "device-ca.crt"

    @property
    def server_cert(self):
        return self.dir / "server.crt", self.dir / "server.key"

    def device(self, id, validity=None, out=None):
        """A device certificate and key; returns (cert, key, serial). The
        same out name (default dev-<id>) gives the same certificate."""
        prefix = self.dir / (out or f"dev-{id}")
        cache = self.__dict__.setdefault("issued", {})
        if prefix in cache:
            return cache[prefix]
        args = ["ca", "issue-device", self.ca, id, "--out", prefix]
        if validity:
            args += ["--validity", validity]
        p = otachain(*args, env=self.env)
        serial = re.search(r"serial ([0-9a-f]+)", p.stdout).group(1)
        cache[prefix] = Path(f"{prefix}.crt"), Path(f"{prefix}.key"), serial
        return cache[prefix]

    def admin_cert(self, name):
        prefix = self.dir / f"adm-{name}"
        if not Path(f"{prefix}.crt").exists():
            otachain("ca", "issue-admin", self.ca, name, "--out", prefix, env=self.env)
        return Path(f"{prefix}.crt"), Path(f"{prefix}.key")


class Conn:
    """A keep-alive HTTP(S) connection to one listener."""

    def __init__(self, port, ctx=None, headers=None, timeout=30):
        self.port = port
        self.ctx = ctx
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.conn = None

    def _connect(self):
        if self.ctx is not None:
            self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx,
                                                    timeout=self.timeout)
        else:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        self.conn.connect()

    def request(self, method, path, body=None, headers=None):
        if self.conn is None:
            self._connect()
        h = dict(self.headers)
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        reply = Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        if reply.headers.get("connection", "").lower() == "close":
            self.close()
        return reply

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def checkin(self, body):
        return self.post("/api/v1/checkin", body)

    @property
    def sock(self):
        return self.conn.sock if self.conn is not None else None

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def client_context(ca, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


class Server:
    """otachain-server over a repository directory."""

    def __init__(self, dir, repo_dir, fleet=None, settings=None, env=None, plain_device=False):
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.repo_dir = Path(repo_dir)
        self.fleet = fleet
        self.settings = dict(settings or {})
        self.env = dict(env or {})
        self.plain_device = plain_device
        self.proc = None
        self.ports = {}
        self.clock_file = self.dir / "now"
        self.set_time(T0)
        self.config = self.dir / "server.ini"
        self.log_path = self.dir / "server.log"
        self._log_offset = 0
        self.write_config()

    def write_config(self):
        s = {
            ("server", "repository"): str(self.repo_dir),
            ("server", "database"): str(self.dir / "fleet.db"),
            ("server", "repository_poll"): "1",
            ("device", "listen"): "127.0.0.1:0",
            ("admin", "listen"): "127.0.0.1:0",
            ("admin", "plain_http"): "true",
            ("public", "listen"): "127.0.0.1:0",
            ("public", "plain_http"): "true",
            ("checkin", "poll_jitter"): "0",
        }
        if self.plain_device:
            s[("device", "plain_http")] = "true"
            s[("device", "trusted_proxies")] = "127.0.0.1"
        else:
            cert, key = self.fleet.server_cert
            s[("device", "tls_cert")] = str(cert)
            s[("device", "tls_key")] = str(key)
            s[("device", "client_ca")] = str(self.fleet.device_ca)
        for k, v in self.settings.items():
            sec, key = k.split(".", 1)
            if v is None:
                s.pop((sec, key), None)
            else:
                s[(sec, key)] = v
        lines = []
        for sec in ("server", "device", "admin", "public", "limits", "checkin", "database"):
            keys = [(k, v) for (sc, k), v in s.items() if sc == sec]
            if keys:
                lines.append(f"[{sec}]")
                lines += [f"{k} = {v}" for k, v in keys]
        self.config.write_text("\n".join(lines) + "\n")

    def set_time(self, t):
        """Moves the server's clock (atomically: temporary file, rename)."""
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(f"{int(t)}\n")
        os.replace(tmp, self.clock_file)
        self.now = int(t)

    def full_env(self, extra=None):
        env = dict(os.environ)
        env["OTACHAIN_TEST_NOW"] = f"@{self.clock_file}"
        env.update(self.env)
        env.update(extra or {})
        return env

    def run(self, *args, check=True, env=None):
        """Runs otachain-server with this configuration (token verbs)."""
        p = subprocess.run([str(server_path()), *map(str, args), "--config", str(self.config)],
                           capture_output=True, text=True, env=self.full_env(env), timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"otachain-server {args} exited {p.returncode}:\n{p.stderr}")
        return p

    def start(self, env=None, wait=True, timeout=30):
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen([str(server_path()), "--config", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._log, env=self.full_env(env))
        if not wait:
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.log_lines()
            if any("event=started" in ln for ln in lines):
                for ln in lines:
                    m = re.search(r"event=listening listener=(\w+) .*port=(\d+)", ln)
                    if m:
                        self.ports[m.group(1)] = int(m.group(2))
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"otachain-server exited {self.proc.returncode}:\n"
                                     + "\n".join(lines))
            time.sleep(0.02)
        raise AssertionError("otachain-server did not start:\n" + "\n".join(self.log_lines()))

    def log_lines(self):
        if not self.log_path.exists():
            return []
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace").splitlines()

    def requests(self):
        """The request log lines as dicts of their fields."""
        out = []
        for ln in self.log_lines():
            if "event=request " in ln:
                out.append(dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', ln)))
        return out

    def access(self):
        """The requests like nginx's access log in testlib.Nginx.requests():
        (method, path, status, body bytes)."""
        return [(r["method"], r["path"].strip('"'), int(r["status"]), int(r["bytes"]))
                for r in self.requests()]

    def connections(self):
        """(connection, protocol, path) per request, like testlib.Nginx's:
        a connection is its client address and port."""
        return [(r["peer"], "HTTP/1.1", r["path"].strip('"')) for r in self.requests()]

    def stop(self, timeout=30, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            self._log.close()
        self.proc = None
        self.assert_no_sanitizer_report()
        return rc

    def assert_no_sanitizer_report(self):
        """A server built with ASan/UBSan reports leaks and errors on its
        stderr (the log) when it exits: a report fails the test that
        stopped it, so a leak never passes unnoticed."""
        text = "\n".join(self.log_lines())
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            at = text.find(mark)
            assert at < 0, f"otachain-server: sanitizer report in {self.log_path}:\n" + text[at:][:3000]

    def kill(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self._log.close()
        self.proc = None

    # -- clients

    def device(self, cred, timeout=30):
        """A keep-alive mTLS connection to the device listener as cred=(cert, key, ...)."""
        ctx = client_context(self.fleet.server_ca, cred[0], cred[1])
        return Conn(self.ports["device"], ctx, timeout=timeout)

    def proxied(self, device_id, serial=None):
        """A plain connection to the device listener sending the proxy headers."""
        h = {"X-Otachain-Device": device_id}
        if serial:
            h["X-Otachain-Serial"] = serial
        return Conn(self.ports["device"], None, headers=h)

    def public(self):
        return Conn(self.ports["public"])

    def admin(self, token=None):
        h = {"Authorization": f"Bearer {token}"} if token else {}
        return Conn(self.ports["admin"], None, headers=h)

    def token(self, name, scopes):
        return self.run("token", "create", "--name", name, "--scope", scopes).stdout.strip()

    @property
    def url(self):
        """The public listener's base URL (like an nginx mirror's)."""
        return f"http://127.0.0.1:{self.ports['public']}"

    def db(self):
        """A read-only SQLite connection to the fleet database."""
        return sqlite3.connect(f"file:{self.dir / 'fleet.db'}?mode=ro", uri=True)


class Mirror:
    """otachain-server's public listener serving `root` (a repository's
    public directory, or a tampered copy of it), with the interface of
    testlib.Nginx that the data-plane tests use: .url, .requests(),
    .connections(). slow: 256 KiB/s per connection (public.rate_limit)."""

    def __init__(self, dir, root, slow=False):
        root = Path(root).resolve()
        repo_dir = root.parent
        if root.name != "public":
            # A copy of public/: host it as the public/ of a directory of
            # its own.
            repo_dir = Path(dir) / "hosted"
            repo_dir.mkdir(parents=True, exist_ok=True)
            (repo_dir / "public").symlink_to(root)
        settings = {"device.enabled": "false", "public.rate_limit": "262144" if slow else "0"}
        self.srv = Server(dir, repo_dir, settings=settings, plain_device=True)

    def start(self):
        self.srv.start()
        self.url = self.srv.url
        return self

    def requests(self):
        return self.srv.access()

    def connections(self):
        return self.srv.connections()

    def stop(self):
        self.srv.stop()


# ---------------------------------------------------------------- device records
# What the server recorded about a simulated device (tests/devsim.py; dev.id
# is its certificate's device id), read through the admin API with the
# read token the fixture keeps in srv.read.


def admin_device(srv, dev):
    """The device's record (GET /admin/v1/devices/ID)."""
    r = srv.admin(srv.read).get(f"/admin/v1/devices/{dev.id}")
    assert r.status == 200, r.text
    return r.json


def states_reported(srv, dev):
    """The update states the server recorded, oldest first."""
    r = srv.admin(srv.read).get(f"/admin/v1/devices/{dev.id}/events?limit=1000")
    assert r.status == 200, r.text
    out = []
    for e in reversed(r.json["events"]):
        ch = e["changes"]
        if "update.state" in ch:
            out.append(ch["update.state"][1])
    return out


def errors_reported(srv, dev):
    """The error names the server recorded, oldest first."""
    r = srv.admin(srv.read).get(f"/admin/v1/devices/{dev.id}/events?limit=1000")
    assert r.status == 200, r.text
    return [e["changes"]["last_error.name"][1] for e in reversed(r.json["events"])
            if "last_error.name" in e["changes"]]
