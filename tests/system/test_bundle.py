"""Proof bundles from a real published repository (issue 9, acceptance 8;
docs/formats/bundle.md): `otachain repo bundle` builds one for a device's
state from a repository published by `repo publish` with real
otachain-witness processes, `otachain repo verify --bundle` verifies it as
the device. From every starting point a device can have the bundle leads to
the published state; every field of the format, flipped or dropped, is
refused with its own error and leaves the device's state as it was.
"""

import json
import shutil
import struct
from pathlib import Path

import pytest

from otarepo import Key, Repo
from testlib import free_port, otachain
from witnesslib import EM_DASH, Witness

ORIGIN = "example.test/bundle"

# ---------------------------------------------------------------- the format

ROOT, ROOT_CP, TIMESTAMP, SNAPSHOT, TARGETS, CHECKPOINT, CONSISTENCY, INCLUSION = range(1, 9)


def parse(data):
    """(header fields, [(type, body)]) of a bundle, as docs/formats/bundle.md
    lays it out (written independently of the C parser)."""
    assert data[:8] == b"OTABUNDL"
    version, flags, reserved, base, newest, size = struct.unpack(">HHIQQQ", data[8:40])
    recs, pos = [], 40
    while pos < len(data):
        t, n = struct.unpack(">BI", data[pos:pos + 5])
        recs.append([t, data[pos + 5:pos + 5 + n]])
        pos += 5 + n
    assert pos == len(data)
    return {"version": version, "flags": flags, "reserved": reserved, "base_root": base,
            "newest_root": newest, "base_size": size}, recs


def encode(h, recs):
    out = b"OTABUNDL" + struct.pack(">HHIQQQ", h["version"], h["flags"], h["reserved"],
                                    h["base_root"], h["newest_root"], h["base_size"])
    for t, body in recs:
        out += struct.pack(">BI", t, len(body)) + body
    return out


def _split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def inclusion_len(index, size):
    """Hashes of an RFC 9162 inclusion proof."""
    if size <= 1:
        return 0
    k = _split(size)
    return 1 + (inclusion_len(index, k) if index < k else inclusion_len(index - k, size - k))


def consistency_len(m, n, whole=True):
    """Hashes of an RFC 9162 consistency proof (SUBPROOF's length)."""
    if m == n:
        return 0 if whole else 1
    k = _split(n)
    if m <= k:
        return 1 + consistency_len(m, k, whole)
    return 1 + consistency_len(m - k, n - k, False)


# ------------------------------------------------------------ the repository


class BundleRepo:
    """A repository (2-of-3 root keys, 1 targets key) whose ledger has three
    witnesses, quorum 2; more witnesses can be started for a witness-set
    change."""

    def __init__(self, tmp_path):
        self.tmp = Path(tmp_path)
        keydir = self.tmp / "keys"
        keydir.mkdir()
        self.root_keys = [Key.generate(keydir / f"root{i}.key") for i in range(3)]
        self.targets_keys = [Key.generate(keydir / "targets0.key")]
        self.witnesses = [self.new_witness(i) for i in range(3)]
        d = self.tmp / "repo"
        args = ["repo", "init", d, "--root-threshold", "2", "--targets-threshold", "1",
                "--ledger-origin", ORIGIN, "--witness-quorum", "2",
                "--root-key", self.root_keys[0].path, "--root-key", self.root_keys[1].pub,
                "--root-key", self.root_keys[2].pub, "--targets-key", self.targets_keys[0].path]
        for i, w in enumerate(self.witnesses):
            args += ["--witness", f"w{i}={w.vkey}@http://127.0.0.1:{w.port}"]
        otachain(*args)
        self.repo = Repo(d, keydir, self.root_keys, self.targets_keys)
        pending = json.loads((d / "pending" / "root.json").read_text())
        self.log_vkey = pending["signed"]["x-otachain-ledger"]["policy"][0].split(" ")[1]
        for w in self.witnesses:
            self.start(w)
        otachain("root", "sign", d, "--key", self.root_keys[1].path)
        otachain("repo", "publish", d)

    def new_witness(self, i):
        w = Witness(self.tmp / f"w{i}", f"witness.test/w{i}", [])
        w.init()
        w.port = free_port()
        return w

    def start(self, w):
        w.logs = [{"name": "repo", "origin": ORIGIN, "keys": [self.log_vkey]}]
        w.write_config(port=w.port)
        w.start()

    def change_witnesses(self):
        """Root v+1 hands the ledger from w0..w2 to w1, w3, w4 (quorum 2)."""
        new = [self.new_witness(i) for i in (3, 4)]
        for w in new:
            self.start(w)
        self.witnesses += new
        args = ["root", "rotate", self.repo.dir, "--remove-witness", "w0", "--remove-witness",
                "w2"]
        for i, w in ((3, new[0]), (4, new[1])):
            args += ["--add-witness", f"w{i}={w.vkey}@http://127.0.0.1:{w.port}"]
        args += ["--key", self.root_keys[0].path, "--key", self.root_keys[2].path]
        otachain(*args)
        otachain("repo", "publish", self.repo.dir)

    def bundle(self, request, out):
        otachain("repo", "bundle", self.repo.dir, *request, "--out", out)
        return Path(out).read_bytes()

    def stop(self):
        for w in self.witnesses:
            w.kill()


class Device:
    """A device's state directory, driven by `repo verify`. .request: the
    options of `repo bundle` for its state, as its last verify printed them
    (bootstrap: root 1, nothing else)."""

    def __init__(self, repo, state):
        self.repo = repo
        self.state = Path(state)
        self.request = ["--root-version", "1"]

    def _learn(self, out):
        line = [ln for ln in out.splitlines() if ln.startswith("bundle request: ")]
        self.request = line[0][len("bundle request: "):].split(" ")

    def verify_dir(self):
        out = otachain("repo", "verify", "--dir", self.repo.repo.dir / "public",
                       "--trusted-root", self.repo.repo.root1, "--state", self.state).stdout
        self._learn(out)
        return out

    def verify_bundle(self, path, state=None):
        """(errname or None, output)."""
        p = otachain("repo", "verify", "--bundle", path, "--trusted-root",
                     self.repo.repo.root1, "--state", state or self.state, check=False)
        if p.returncode == 0:
            if state is None:
                self._learn(p.stdout)
            return None, p.stdout
        lines = [ln for ln in p.stderr.splitlines() if ln.startswith("otachain: ")]
        assert lines and p.returncode in (1, 3), p.stderr
        return lines[-1].split(": ")[1], lines[-1]


def latest(repo):
    return (f"verified: root v{repo.repo.version('root')}, timestamp "
            f"v{repo.repo.version('timestamp')}, snapshot v{repo.repo.version('snapshot')}, "
            f"targets v{repo.repo.version('targets')}")


@pytest.fixture
def history(tmp_path):
    """The repository and devices left along its history: bootstrap (no
    state), behind (seen root 1 only), rotation (a few releases later, before
    the witness-set change)."""
    r = BundleRepo(tmp_path)
    devs = {name: Device(r, tmp_path / name) for name in ("bootstrap", "behind", "rotation")}
    devs["behind"].verify_dir()
    for i in range(2):
        r.repo.add_release("cam", f"1.{i}.0", b"fw%d" % i * 500, sign=1)
    devs["rotation"].verify_dir()
    r.repo.add_release("cam", "1.2.0", b"fw2" * 500, sign=1)
    r.change_witnesses()
    yield r, devs
    r.stop()


def test_bundle_from_every_starting_point(history, tmp_path):
    r, devs = history
    assert r.repo.version("root") == 2
    for name, dev in devs.items():
        b = r.bundle(dev.request, tmp_path / f"{name}.bundle")
        h, recs = parse(b)
        assert h["newest_root"] == 2 and h["base_root"] == 1
        err, out = dev.verify_bundle(tmp_path / f"{name}.bundle")
        assert err is None, out
        assert latest(r) in out, out
        assert "size" in out and "accepted" in out
        # The mirror path agrees with what the bundle left.
        assert latest(r) in dev.verify_dir()
    # Already current: no root, no file the device has, a few hundred bytes.
    dev = devs["rotation"]
    b = r.bundle(dev.request, tmp_path / "current.bundle")
    h, recs = parse(b)
    assert [t for t, _ in recs] == [TIMESTAMP, CHECKPOINT, INCLUSION], [t for t, _ in recs]
    assert len(b) < 2048
    err, out = dev.verify_bundle(tmp_path / "current.bundle")
    assert err is None, out
    # A bundle for another state is refused as such.
    err, msg = devs["behind"].verify_bundle(tmp_path / "bootstrap.bundle")
    assert err == "bundle_base", msg


def _flip_sig(body):
    """A hex digit of the first TUF signature swapped for another."""
    i = body.index(b'"sig":"') + 7
    return body[:i] + (b"b" if body[i:i + 1] == b"a" else b"a") + body[i + 1:]


def _flip_cosig(note, name="witness.test/w1"):
    """A character well inside a cosignature's base64 swapped (w1's: a
    witness of both policies)."""
    text = note.decode()
    line = [ln for ln in text.split("\n") if ln.startswith(f"{EM_DASH} {name} ")][0]
    name, b64 = line[len(EM_DASH) + 1:].split(" ")
    k = 40
    bad = b64[:k] + ("B" if b64[k] == "A" else "A") + b64[k + 1:]
    return text.replace(line, f"{EM_DASH} {name} {bad}").encode()


def _set64(body, off, value):
    return body[:off] + struct.pack(">Q", value) + body[off + 8:]


def cases(h, recs):
    """(what, header, records, expected error) for every field of the
    bundle, flipped, and every record, dropped."""
    out = []

    def with_header(field, value, want):
        h2 = dict(h)
        h2[field] = value
        out.append((f"header {field}", h2, recs, want))

    with_header("version", 2, "format_version")
    with_header("flags", 1, "format")
    with_header("reserved", 1, "format")
    with_header("base_root", 0, "format")
    with_header("base_root", h["base_root"] + 1, "format")  # root v2 is no longer after it
    with_header("newest_root", h["newest_root"] + 1, "bundle_incomplete")
    with_header("newest_root", h["newest_root"] - 1, "format")
    with_header("base_size", h["base_size"] + 1, "bundle_base")

    for i, (t, body) in enumerate(recs):
        def set_body(what, new, want, i=i, t=t):
            r2 = [list(x) for x in recs]
            r2[i][1] = new
            out.append((what, h, r2, want))

        # A dropped root checkpoint reads as a log from before per-root
        # checkpoints: the earlier rule applies (the final checkpoint must
        # meet the old set's quorum, fresh). In this history it does (the
        # publish of root 2 asked both sets), so the device accepts (None);
        # test_catch_up shows the refusal once the old set is retired.
        out.append((f"record {i} (type {t}) dropped", h, recs[:i] + recs[i + 1:],
                    None if t == ROOT_CP else "bundle_incomplete"))
        if t == ROOT:
            v = struct.unpack(">Q", body[:8])[0]
            set_body(f"root {v}: version", _set64(body, 0, v + 1), "format")
            set_body(f"root {v}: signature", body[:8] + _flip_sig(body[8:]), "bad_signature")
        elif t == ROOT_CP:
            set_body("root checkpoint: version", _set64(body, 0, 1), "format")
            set_body("root checkpoint: cosignature", body[:8] + _flip_cosig(body[8:]),
                     "bad_signature")
        elif t == TIMESTAMP:
            set_body("timestamp: signature", _flip_sig(body), "bad_signature")
        elif t in (SNAPSHOT, TARGETS):
            v = struct.unpack(">Q", body[:8])[0]
            set_body(f"type {t}: version", _set64(body, 0, v + 1), "bundle_incomplete")
            set_body(f"type {t}: bytes", body[:8] + _flip_sig(body[8:]), "hash_mismatch")
        elif t == CHECKPOINT:
            set_body("checkpoint: cosignature", _flip_cosig(body), "bad_signature")
            lines = body.split(b"\n")
            lines[1] = str(int(lines[1]) + 1).encode()
            set_body("checkpoint: tree size", b"\n".join(lines), "bad_signature")
        elif t == CONSISTENCY:
            s1, s2, n = struct.unpack(">QQB", body[:17])
            set_body("consistency: hash", body[:17] + bytes([body[17] ^ 1]) + body[18:], "proof")
            new = s1 + 1 if s1 + 1 < s2 else s1 - 1
            set_body("consistency: size1", _set64(body, 0, new),
                     "proof_malformed" if consistency_len(new, s2) != n else "bundle_incomplete")
            set_body("consistency: size2", _set64(body, 8, s2 + 1),
                     "proof_malformed" if consistency_len(s1, s2 + 1) != n
                     else "bundle_incomplete")
        elif t == INCLUSION:
            role, v, index, size, n = struct.unpack(">BQQQB", body[:26])
            set_body("inclusion: role", bytes([3]) + body[1:], "format")
            set_body("inclusion: hash", body[:26] + bytes([body[26] ^ 1]) + body[27:],
                     "not_in_log")
            idx2 = index ^ 1 if (index ^ 1) < size else index - 1
            set_body("inclusion: index", body[:9] + struct.pack(">Q", idx2) + body[17:],
                     "proof_malformed" if inclusion_len(idx2, size) != n else "not_in_log")
            set_body("inclusion: size", body[:17] + struct.pack(">Q", size + 1) + body[25:],
                     "proof_malformed" if inclusion_len(index, size + 1) != n
                     else "bundle_incomplete")
            set_body("inclusion: version", body[:1] + struct.pack(">Q", v + 10) + body[9:],
                     "bundle_incomplete")
    return out


def test_every_field_flipped_or_dropped_is_refused(history, tmp_path):
    r, devs = history
    dev = devs["rotation"]
    good = r.bundle(dev.request, tmp_path / "good.bundle")
    h, recs = parse(good)
    types = [t for t, _ in recs]
    # Everything a device a few versions behind needs across the change.
    for t in (ROOT, ROOT_CP, TIMESTAMP, SNAPSHOT, TARGETS, CHECKPOINT, CONSISTENCY, INCLUSION):
        assert t in types, types
    assert encode(h, recs) == good
    saved = tmp_path / "saved-state"
    shutil.copytree(dev.state, saved)
    before = {p.name: p.read_bytes() for p in saved.iterdir() if p.is_file()}
    # The header's frame: its magic, and a cut.
    table = cases(h, recs)
    flawed = [("magic", b"OTABUNDX" + good[8:], "bad_magic"),
              ("cut in the last record", good[:-1], "truncated")]
    flawed += [(what, encode(h2, r2), want) for what, h2, r2, want in table]
    failures = []
    for i, (what, data, want) in enumerate(flawed):
        path = tmp_path / f"flawed-{i}.bundle"
        path.write_bytes(data)
        state = tmp_path / f"state-{i}"
        shutil.copytree(saved, state)
        err, msg = dev.verify_bundle(path, state=state)
        if err != want:
            failures.append(f"{what}: got {err} ({msg}), want {want}")
        if want is None:
            shutil.rmtree(state)
            continue
        after = {p.name: p.read_bytes() for p in state.iterdir() if p.is_file()}
        # Never the new checkpoint, never the new targets (a flawed targets
        # leaves the proven snapshot, as the mirror path would).
        assert after.get("checkpoint") == before.get("checkpoint"), what
        assert after.get("targets.json") == before.get("targets.json"), what
        shutil.rmtree(state)
    assert not failures, "\n".join(failures)
    assert len(flawed) > 30
    # The good one still works on the saved state.
    err, out = dev.verify_bundle(tmp_path / "good.bundle", state=saved)
    assert err is None, out
