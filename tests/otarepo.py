"""A published otachain repository for process-level tests, and the two
clients that read it: our C client (`otachain repo verify`) and tuf-js.

    repo = Repo.create(tmp_path / "repo", otachain)   # 2-of-3 root and targets
    repo.add_release("fw", "1.0.0", data=b"...")        # release add + 2 signs + publish
    srv = nginx_factory(root=repo.public)
    c = CClient(tmp_path / "c", srv.url, repo.root1)
    assert c.refresh().ok

Forgeries are made with tests/interop/forge.mjs (Node crypto and tuf-js'
canonical JSON), never with our own signing code: `Forger` wraps the usual
"new targets / snapshot / timestamp pinning each other" chain an attacker
holding some keys would publish.
"""

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from testlib import forge as run_forge
from testlib import otachain as run_otachain
from testlib import run_tufjs


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def keyid_of_pub(pub_hex):
    """TUF keyid of an Ed25519 public key, computed here independently."""
    canon = (
        '{"keytype":"ed25519","keyval":{"public":"%s"},"scheme":"ed25519"}' % pub_hex
    ).encode()
    return sha256_hex(canon)


class Key:
    """A secret key file made by `otachain key generate`."""

    def __init__(self, path):
        self.path = Path(path)
        shown = run_otachain("key", "show", self.path).stdout.split()
        fields = dict(zip(shown[0::2], shown[1::2]))
        self.keyid = fields["keyid"]
        self.public = fields["public"]
        assert keyid_of_pub(self.public) == self.keyid

    @classmethod
    def generate(cls, path):
        out = run_otachain("key", "generate", "--out", path).stdout.strip()
        key = cls(path)
        assert out.endswith(key.keyid), out
        return key

    @property
    def pub(self):
        return Path(str(self.path) + ".pub")

    def __str__(self):
        return str(self.path)

    def __fspath__(self):
        return str(self.path)


class Repo:
    """An otachain authoring directory with 2-of-3 root and targets keys."""

    def __init__(self, dir, keydir, root_keys, targets_keys):
        self.dir = Path(dir)
        self.keydir = Path(keydir)
        self.root_keys = root_keys
        self.targets_keys = targets_keys
        self.nkeys = 0

    @classmethod
    def create(cls, dir, keydir=None, expires=(), ledger=True):
        dir = Path(dir)
        keydir = Path(keydir or str(dir) + "-keys")
        keydir.mkdir(parents=True, exist_ok=True)
        root_keys = [Key.generate(keydir / f"root{i}.key") for i in range(3)]
        targets_keys = [Key.generate(keydir / f"targets{i}.key") for i in range(3)]
        repo = cls(dir, keydir, root_keys, targets_keys)
        args = ["repo", "init", dir, "--root-threshold", "2", "--targets-threshold", "2"]
        # Two of three root and targets keys sign at init; the third is named
        # by its public key only.
        for k in root_keys[:2]:
            args += ["--root-key", k.path]
        args += ["--root-key", root_keys[2].pub]
        for k in targets_keys[:2]:
            args += ["--targets-key", k.path]
        args += ["--targets-key", targets_keys[2].pub]
        for e in expires:
            args += ["--expires", e]
        if not ledger:
            args += ["--no-ledger"]
        run_otachain(*args)
        return repo

    def new_key(self, name=None):
        self.nkeys += 1
        return Key.generate(self.keydir / (name or f"extra{self.nkeys}.key"))

    # -- paths and published state

    @property
    def public(self):
        return self.dir / "public"

    @property
    def meta(self):
        return self.dir / "public" / "metadata"

    @property
    def root1(self):
        return self.meta / "1.root.json"

    def load(self, name):
        return json.loads((self.meta / name).read_text())

    def version(self, role):
        if role == "root":
            return self.load("root.json")["signed"]["version"]
        ts = self.load("timestamp.json")["signed"]
        if role == "timestamp":
            return ts["version"]
        snap_v = ts["meta"]["snapshot.json"]["version"]
        if role == "snapshot":
            return snap_v
        return self.load(f"{snap_v}.snapshot.json")["signed"]["meta"]["targets.json"]["version"]

    def online_key(self, role):
        return self.dir / "private" / f"{role}.key"

    # -- authoring through the CLI

    def cli(self, *args, check=True, env=None, timeout=120):
        return run_otachain(*args, check=check, env=env, timeout=timeout)

    def add_release(self, product, version, data, name="firmware.img", sign=2, publish=True,
                    hardware="board-a", security_version=0, timeout=120):
        """data: the image's bytes, or the Path of an image file (a
        bench's gigabytes). timeout: seconds per command; None for no
        limit (benches: adding a 4 GiB image takes minutes)."""
        if isinstance(data, Path):
            img = data
        else:
            img = self.dir.parent / f"{product}-{version}-{name}"
            img.write_bytes(data)
        self.cli("release", "add", self.dir, img, "--product", product, "--hardware", hardware,
                 "--version", version, "--security-version", str(security_version),
                 "--name", name, timeout=timeout)
        for k in self.targets_keys[:sign]:
            self.cli("release", "sign", self.dir, "--key", k.path, timeout=timeout)
        if publish:
            self.cli("repo", "publish", self.dir, timeout=timeout)
        return f"{product}/{version}/{name}"

    def rotate_root(self, args, sign_keys):
        cmd = ["root", "rotate", self.dir, *args]
        for k in sign_keys:
            cmd += ["--key", k.path]
        self.cli(*cmd)
        self.cli("repo", "publish", self.dir)

    # -- snapshots of the public directory, to replay old files

    def save(self, name):
        dst = self.dir.parent / f"saved-{name}"
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(self.public, dst)
        return dst


@dataclass
class Result:
    ok: bool
    error: str  # our errname, or tuf-js' error class
    message: str


class CClient:
    """`otachain repo verify` with its own trusted state directory."""

    def __init__(self, state, url, trusted_root):
        self.state = Path(state)
        self.url = url
        self.trusted_root = Path(trusted_root)

    def refresh(self, target=None, out=None, env=None, timeout=120):
        args = ["repo", "verify", "--url", self.url, "--trusted-root", self.trusted_root,
                "--state", self.state]
        if target is not None:
            args += ["--target", target, "--out", out]
        p = run_otachain(*args, check=False, env=env, timeout=timeout)
        if p.returncode == 0:
            return Result(True, "", p.stdout)
        # otachain: <errname>: <sentence>: <detail>
        line = [ln for ln in p.stderr.splitlines() if ln.startswith("otachain: ")]
        assert line, f"no error line (exit {p.returncode}):\n{p.stderr}"
        assert p.returncode in (1, 3), f"exit {p.returncode}:\n{p.stderr}"
        return Result(False, line[-1].split(": ")[1], line[-1])


class TufJsClient:
    """tuf-js (tests/interop/tufjs-client.mjs) with its own cache directory."""

    def __init__(self, cache, url, trusted_root):
        self.cache = Path(cache)
        self.url = url
        self.trusted_root = Path(trusted_root)

    def refresh(self, target=None, out=None):
        r = run_tufjs(self.url + "/metadata", self.url + "/targets", self.trusted_root,
                      self.cache, target=target, out=out)
        if r["ok"]:
            return Result(True, "", json.dumps(r))
        return Result(False, r["error"], r.get("message", ""))


class Forger:
    """Writes forged metadata into a repository's public/metadata directory."""

    def __init__(self, repo):
        self.repo = repo
        self.tmp = repo.dir.parent / "forge-tmp"
        self.tmp.mkdir(exist_ok=True)

    def edit(self, name, out_name, set=(), delete=(), sign=(), clear_sigs=False, dup_sig=False):
        """Edit metadata/<name> into metadata/<out_name>; returns the new bytes."""
        src = self.repo.meta / name
        tmp = self.tmp / out_name
        run_forge(src, tmp, set=set, delete=delete, sign=[str(k) for k in sign],
                  clear_sigs=clear_sigs, dup_sig=dup_sig)
        data = tmp.read_bytes()
        (self.repo.meta / out_name).write_bytes(data)
        return data

    @staticmethod
    def pin(prefix, data, version):
        return [(f"{prefix}/version", version), (f"{prefix}/length", len(data)),
                (f"{prefix}/hashes", {"sha256": sha256_hex(data)})]

    def snapshot_and_timestamp(self, targets_version, targets_data, snap_set=(),
                               ts_set=(), ts_key=None, snap_key=None):
        """A new snapshot pinning targets_data and a new timestamp pinning it,
        signed with the repository's online keys (or the given ones)."""
        ts = self.repo.load("timestamp.json")["signed"]
        snap_v = ts["meta"]["snapshot.json"]["version"]
        new_snap_v = snap_v + 1
        snap = self.edit(f"{snap_v}.snapshot.json", f"{new_snap_v}.snapshot.json",
                         set=[("version", new_snap_v)]
                         + self.pin("meta/targets.json", targets_data, targets_version)
                         + list(snap_set),
                         clear_sigs=True, sign=[snap_key or self.repo.online_key("snapshot")])
        self.timestamp(new_snap_v, snap, ts_set=ts_set, ts_key=ts_key)
        return new_snap_v

    def timestamp(self, snap_version, snap_data, ts_set=(), ts_key=None, version=None):
        ts = self.repo.load("timestamp.json")["signed"]
        v = version if version is not None else ts["version"] + 1
        pins = self.pin("meta/snapshot.json", snap_data, snap_version) if snap_data else [
            ("meta/snapshot.json", {"version": snap_version})]
        return self.edit("timestamp.json", "timestamp.json",
                         set=[("version", v)] + pins + list(ts_set),
                         clear_sigs=True, sign=[ts_key or self.repo.online_key("timestamp")])

    def targets(self, set=(), sign=(), dup_sig=False, extra_sigs=()):
        """A new targets version (current + 1) with the given edits and
        signatures, pinned by a new snapshot and timestamp."""
        v = self.repo.version("targets")
        data = self.edit(f"{v}.targets.json", f"{v + 1}.targets.json",
                         set=[("version", v + 1)] + list(set), clear_sigs=True,
                         sign=sign, dup_sig=dup_sig)
        if extra_sigs:
            doc = json.loads(data)
            doc["signatures"].extend(extra_sigs)
            data = json.dumps(doc, separators=(",", ":")).encode()
            (self.repo.meta / f"{v + 1}.targets.json").write_bytes(data)
        self.snapshot_and_timestamp(v + 1, data)
        return data


def copy_state(src, dst):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
