"""Witnesses and test logs for process-level tests (tests/system).

    log = TestLog.create(tmp_path / "log", "example.org/log")   # ota-testlog
    log.append(b"entry 1\n", b"entry 2\n")
    w = Witness(tmp_path / "w", "witness.example/w1", [log.section()])
    w.init(); w.start()
    r = w.add(log.add_body(old=0))       # Reply(status, headers, body)
    assert r.status == 200 and verify_cosignature(w.vkey, log.checkpoint_body(), r.text)
    w.stop()

Cosignatures are verified here independently of otachain's C code: the
message is built in Python from C2SP tlog-cosignature and the Ed25519
signature is checked by the openssl command line tool.
"""

import base64
import hashlib
import http.client
import os
import signal
import ssl
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from testlib import bin_dir

EM_DASH = "\u2014"


def witness_path():
    return bin_dir() / "programs" / "otachain-witness" / "otachain-witness"


def testlog_path():
    return bin_dir() / "tests" / "tools" / "ota-testlog"


def _run(cmd, check=True, input=None, env=None, text=True):
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=text, input=input,
                       env=full_env, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


# ------------------------------------------------------------------ test logs


class TestLog:
    """A log made by tests/tools/ota-testlog in a directory (tiles included)."""

    __test__ = False  # not a pytest class

    def __init__(self, dir, origin):
        self.dir = Path(dir)
        self.origin = origin

    @classmethod
    def create(cls, dir, origin):
        _run([testlog_path(), "init", dir, "--origin", origin])
        return cls(dir, origin)

    @property
    def vkey(self):
        return (self.dir / "log.vkey").read_text().strip()

    def tool(self, *args, text=True):
        return _run([testlog_path(), *args], text=text).stdout

    def append(self, *entries):
        """Appends raw entries (bytes); returns the new size."""
        args = ["append", self.dir]
        with tempfile.TemporaryDirectory() as tmp:
            for i, e in enumerate(entries):
                p = Path(tmp) / f"e{i}"
                p.write_bytes(e)
                args += ["--entry", p]
            return int(self.tool(*args))

    def append_meta(self, *specs):
        """Appends ledger records of metadata files: specs are (role, path)."""
        args = ["append", self.dir]
        for role, path in specs:
            args += ["--meta", f"{role}:{path}"]
        return int(self.tool(*args))

    def size(self):
        return int(self.checkpoint_body().split("\n")[1])

    def checkpoint(self, size=None):
        args = ["checkpoint", self.dir] + (["--size", str(size)] if size is not None else [])
        return self.tool(*args, text=False)

    def checkpoint_body(self, size=None):
        return self.checkpoint(size).decode().split("\n\n")[0] + "\n"

    def add_body(self, old, size=None):
        args = ["add-body", self.dir, "--old", str(old)]
        if size is not None:
            args += ["--size", str(size)]
        return self.tool(*args, text=False)

    def fork(self, size=None, at=None, old=None):
        args = ["fork", self.dir]
        for k, v in (("--size", size), ("--at", at), ("--old", old)):
            if v is not None:
                args += [k, str(v)]
        return self.tool(*args, text=False)

    def section(self, name="main", **validation):
        """A [log NAME] entry for Witness: origin, key, optional validation
        (tiles_url, repo_url, anchor)."""
        return {"name": name, "origin": self.origin, "keys": [self.vkey], **validation}


def body_note(body):
    """The checkpoint note of an add-checkpoint body (bytes)."""
    return body.split(b"\n\n", 1)[1]


def note_body(note):
    """The checkpoint text of a signed note (bytes -> str)."""
    return note.decode().split("\n\n")[0] + "\n"


# ------------------------------------------------------------------ witnesses


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    @property
    def text(self):
        return self.body.decode()


class Witness:
    """An otachain-witness process with its own config, key and state."""

    def __init__(self, dir, name, logs, tls=None, extra=None):
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.logs = logs
        self.tls = tls  # (cert, key) or None
        self.extra = extra or {}
        self.proc = None
        self.port = None
        self.vkey = None
        self.stderr_path = self.dir / "stderr.log"
        self.config = self.dir / "witness.ini"
        self.write_config()

    @property
    def key_file(self):
        return self.dir / "witness.key"

    @property
    def state_dir(self):
        return self.dir / "state"

    def write_config(self, port=0):
        lines = ["[witness]", f"name = {self.name}", f"key_file = {self.key_file}",
                 f"state_dir = {self.state_dir}", "listen = 127.0.0.1", f"port = {port}"]
        if self.tls:
            lines += [f"tls_cert = {self.tls[0]}", f"tls_key = {self.tls[1]}"]
        lines += [f"{k} = {v}" for k, v in self.extra.items()]
        for log in self.logs:
            lines += ["", f"[log {log['name']}]", f"origin = {log['origin']}"]
            lines += [f"key = {k}" for k in log["keys"]]
            for k in ("tiles_url", "repo_url", "anchor"):
                if k in log:
                    lines.append(f"{k} = {log[k]}")
        self.config.write_text("\n".join(lines) + "\n")

    def run(self, *args, check=False, env=None):
        return _run([witness_path(), *args], check=check, env=env)

    def init(self):
        p = self.run("--init", "--config", self.config, check=True)
        self.vkey = p.stdout.strip()
        return self.vkey

    def state_file(self, origin):
        return self.state_dir / (hashlib.sha256(origin.encode()).hexdigest() + ".json")

    def start(self, env=None, wait=True):
        """Starts the daemon (port 0: it picks one and logs it)."""
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self._log_offset = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        self._stderr = open(self.stderr_path, "a")
        self.proc = subprocess.Popen([str(witness_path()), "--config", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, env=full_env)
        if wait:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                for line in self.log_lines():
                    if " listening on " in line:
                        self.port = int(line.split("://")[1].split(" ")[0].rsplit(":", 1)[1])
                        return self
                if self.proc.poll() is not None:
                    raise AssertionError(f"witness exited {self.proc.returncode}:\n"
                                         + "\n".join(self.log_lines()))
                time.sleep(0.02)
            raise AssertionError("witness did not start:\n" + "\n".join(self.log_lines()))
        return self

    def log_lines(self):
        """stderr lines written since the last start."""
        if not self.stderr_path.exists():
            return []
        with open(self.stderr_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace").splitlines()

    def request_lines(self):
        return [ln for ln in self.log_lines() if ln.startswith("otachain-witness: request ")]

    def stop(self, timeout=20):
        """SIGTERM; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            self._stderr.close()
        self.proc = None
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
            self._stderr.close()
        self.proc = None

    def wait_exit(self, timeout=20):
        rc = self.proc.wait(timeout=timeout)
        self._stderr.close()
        self.proc = None
        return rc

    def connection(self, timeout=30, ssl_context=None):
        if self.tls:
            ctx = ssl_context or ssl.create_default_context(cafile=str(self.tls[0]))
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, timeout=30, ssl_context=None):
        conn = self.connection(timeout=timeout, ssl_context=ssl_context)
        try:
            conn.request(method, path, body=body)
            r = conn.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def add(self, body, **kw):
        """POST /add-checkpoint."""
        return self.request("POST", "/add-checkpoint", body=body, **kw)

    def stored_size(self, any_body):
        """The stored size, asked the tlog-witness way (old 0 -> 409)."""
        note = body_note(any_body)
        r = self.add(b"old 0\n\n" + note)
        assert r.status == 409, (r.status, r.text)
        return int(r.text)


# --------------------------------------------------------------- verification


def parse_vkey(vkey):
    name, keyid, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64)
    return name, bytes.fromhex(keyid), raw[0], raw[1:]


def _ed25519_verify(pub, msg, sig):
    spki = bytes.fromhex("302a300506032b6570032100") + pub
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "pub.der").write_bytes(spki)
        (t / "msg").write_bytes(msg)
        (t / "sig").write_bytes(sig)
        p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER",
                            "-inkey", t / "pub.der", "-rawin", "-in", t / "msg", "-sigfile",
                            t / "sig"], capture_output=True, text=True)
        return p.returncode == 0


def verify_cosignature(vkey, checkpoint_body, response):
    """Checks a tlog-witness 200 body: exactly one cosignature/v1 line by
    vkey over checkpoint_body (str). Returns its time."""
    name, keyid, typ, pub = parse_vkey(vkey)
    assert typ == 0x04
    want_id = hashlib.sha256(name.encode() + b"\n" + bytes([0x04]) + pub).digest()[:4]
    assert want_id == keyid
    lines = response.split("\n")
    assert lines[-1] == "" and len(lines) == 2, repr(response)
    prefix = f"{EM_DASH} {name} "
    assert lines[0].startswith(prefix), lines[0]
    raw = base64.b64decode(lines[0][len(prefix):], validate=True)
    assert len(raw) == 4 + 8 + 64 and raw[:4] == keyid
    (t,) = struct.unpack(">Q", raw[4:12])
    msg = f"cosignature/v1\ntime {t}\n{checkpoint_body}".encode()
    assert _ed25519_verify(pub, msg, raw[12:]), "cosignature does not verify"
    return t


