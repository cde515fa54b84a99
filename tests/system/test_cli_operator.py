"""What a hostile user and a careless operator found in the CLI (issue 10):
each refusal with its exit code and exact error name (docs/cli.md), and the
message checked for the fact that was missing before."""

import json
import os
import shutil
import subprocess

import pytest

from otarepo import Key
from testlib import free_port, otachain
from witnesslib import Witness


def err(p):
    """(exit code, errname) of a failed command."""
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("otachain: ")]
    assert lines, p.stderr
    return p.returncode, lines[-1].split(": ")[1]


@pytest.fixture
def keys(tmp_path):
    d = tmp_path / "keys"
    d.mkdir()
    return {n: Key.generate(d / f"{n}.key") for n in ("r1", "t1")}


def init_args(repo, keys, *extra):
    return ["repo", "init", repo, "--root-key", keys["r1"], "--root-threshold", "1",
            "--targets-key", keys["t1"], "--targets-threshold", "1", *extra]


@pytest.fixture
def witness(tmp_path):
    w = Witness(tmp_path / "w0", "witness.test/w0", [])
    w.init()
    yield w
    w.kill()


# ------------------------------------------------------------- witnesses


def test_witness_url_scheme_is_checked_at_init(tmp_path, keys, witness):
    for url in ("ftp://127.0.0.1:1", "file:///tmp/w", "127.0.0.1:8080", "http://"):
        p = otachain(*init_args(tmp_path / "repo", keys, "--witness",
                                f"w0={witness.vkey}@{url}"), check=False)
        assert err(p) == (2, "invalid_arg"), p.stderr
        assert "http:// or https://" in p.stderr and url in p.stderr
        assert not (tmp_path / "repo").exists()
    # Any case of the scheme is a scheme (RFC 3986).
    otachain(*init_args(tmp_path / "repo", keys, "--witness", f"w0={witness.vkey}@HTTP://h:1"))


def test_witness_url_scheme_is_checked_at_root_rotate(tmp_path, keys, witness):
    repo = tmp_path / "repo"
    otachain(*init_args(repo, keys))
    p = otachain("root", "rotate", repo, "--key", keys["r1"], "--add-witness",
                 f"w0={witness.vkey}@gopher://127.0.0.1:70", check=False)
    assert err(p) == (2, "invalid_arg")
    assert "http:// or https://" in p.stderr


def test_same_witness_key_under_two_names(tmp_path, keys, witness):
    p = otachain(*init_args(tmp_path / "repo", keys,
                            "--witness", f"a={witness.vkey}@http://127.0.0.1:1",
                            "--witness", f"b={witness.vkey}@http://127.0.0.1:2"), check=False)
    assert err(p) == (2, "invalid_arg"), p.stderr
    assert "witness b: the same key" in p.stderr and "as witness a" in p.stderr

    # The same in a root rotation.
    repo = tmp_path / "repo"
    otachain(*init_args(repo, keys))
    p = otachain("root", "rotate", repo, "--key", keys["r1"],
                 "--add-witness", f"a={witness.vkey}@http://127.0.0.1:1",
                 "--add-witness", f"b={witness.vkey}@http://127.0.0.1:2", check=False)
    assert err(p) == (2, "invalid_arg"), p.stderr
    assert "the same key" in p.stderr


def test_init_with_witnesses_waits_for_them_and_says_what_to_do(tmp_path, keys, witness):
    repo = tmp_path / "repo"
    port = free_port()
    origin = "example.test/cam"
    out = otachain(*init_args(repo, keys, "--ledger-origin", origin, "--witness",
                              f"w0={witness.vkey}@http://127.0.0.1:{port}")).stdout
    # Every threshold is met, yet nothing is published: the witness cannot
    # know the log key yet.
    assert not (repo / "public" / "metadata" / "timestamp.json").exists()
    assert not (repo / "public" / "metadata" / "1.root.json").exists()
    assert "not published yet" in out

    policy = json.loads((repo / "pending" / "root.json").read_text())["signed"][
        "x-otachain-ledger"]["policy"]
    logkey = policy[0].split(" ")[1]
    assert otachain("ledger", "key", repo).stdout == logkey + "\n"
    assert otachain("ledger", "key", repo, "--origin").stdout == origin + "\n"
    assert f"origin = {origin}" in out and f"key = {logkey}" in out
    assert f"otachain ledger key {repo}" in out and f"otachain repo publish {repo}" in out

    # Following the advice works.
    witness.logs = [{"name": "repo", "origin": origin, "keys": [logkey]}]
    witness.write_config(port=port)
    witness.start()
    otachain("repo", "publish", repo)
    assert (repo / "public" / "metadata" / "timestamp.json").exists()
    # Published: the key comes from the published root now.
    assert otachain("ledger", "key", repo).stdout == logkey + "\n"


def test_init_without_witnesses_still_publishes_at_once(tmp_path, keys):
    repo = tmp_path / "repo"
    otachain(*init_args(repo, keys))
    assert (repo / "public" / "metadata" / "timestamp.json").exists()
    otachain("ledger", "key", repo)  # quorum none: the log key is still there
    nl = tmp_path / "nl"
    otachain(*init_args(nl, keys, "--no-ledger"))
    p = otachain("ledger", "key", nl, check=False)
    assert err(p) == (3, "not_found")
    assert "names no ledger" in p.stderr


# ------------------------------------------------------------- release add


@pytest.fixture
def repo(tmp_path, keys):
    r = tmp_path / "repo"
    otachain(*init_args(r, keys, "--no-ledger"))
    return r


def add(repo, image, *extra, version="1.0.0", check=False, **kw):
    return otachain("release", "add", repo, image, "--product", "fw", "--hardware", "h",
                    "--version", version, "--security-version", "1", *extra, check=check, **kw)


def test_duplicate_release_names_the_image(tmp_path, repo):
    img = tmp_path / "fw.img"
    img.write_bytes(b"x" * 1000)
    add(repo, img, check=True)
    p = add(repo, img)
    assert err(p) == (3, "exists")
    assert "target fw/1.0.0/fw.img already exists" in p.stderr
    assert ".cidx" not in p.stderr
    # An image named like another image's index: that index is named.
    p = add(repo, img, "--name", "fw.img.cidx")
    assert err(p) == (3, "exists")
    assert "fw/1.0.0/fw.img.cidx already exists" in p.stderr


def test_release_add_refuses_what_is_not_a_file_or_block_device(tmp_path, repo):
    fifo = tmp_path / "fifo.img"
    os.mkfifo(fifo)
    # No writer: opening it for reading would block forever.
    p = add(repo, fifo, timeout=30)
    assert err(p) == (2, "invalid_arg")
    assert "is a FIFO (named pipe): give a regular file or a block device" in p.stderr
    p = add(repo, tmp_path, "--name", "d.img")
    assert err(p) == (2, "invalid_arg")
    assert "is a directory" in p.stderr
    p = add(repo, "/dev/zero", "--name", "z.img")
    assert err(p) == (2, "invalid_arg")
    assert "is a character device" in p.stderr
    p = add(repo, tmp_path / "missing.img")
    assert err(p) == (3, "not_found")
    assert not (repo / "pending" / "targets.json").exists() or \
        "fw/1.0.0/" not in (repo / "pending" / "targets.json").read_text()


def _losetup():
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        return None
    return shutil.which("losetup")


def test_release_add_reads_a_block_device(tmp_path, repo):
    losetup = _losetup()
    if losetup is None:
        pytest.skip("needs root and losetup for a loop device")
    backing = tmp_path / "slot.bin"
    data = os.urandom(256 * 1024)
    backing.write_bytes(data)
    p = subprocess.run([losetup, "--find", "--show", "--read-only", str(backing)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"no loop device here: {p.stderr.strip()}")
    dev = p.stdout.strip()
    try:
        add(repo, dev, "--name", "slot.img", check=True)
    finally:
        subprocess.run([losetup, "--detach", dev], check=False)
    t = json.loads((repo / "pending" / "targets.json").read_text())["signed"]["targets"]
    assert t["fw/1.0.0/slot.img"]["length"] == len(data)


# ------------------------------------------------------------- release values


def test_hardware_ids_refuse_whitespace_and_say_the_form(tmp_path, repo):
    img = tmp_path / "fw.img"
    img.write_bytes(b"x" * 100)
    p = otachain("release", "add", repo, img, "--product", "fw", "--hardware", "rev-a, rev-b",
                 "--version", "1.0.0", "--security-version", "1", check=False)
    assert err(p) == (2, "invalid_arg")
    assert "hardware id ' rev-b': whitespace at byte 1" in p.stderr
    assert "accepted: 1-64 characters of A-Z a-z 0-9 . _ - + :" in p.stderr
    assert not (repo / "pending" / "targets.json").exists()


def test_hardware_id_cap_is_reported_as_such(tmp_path, repo):
    img = tmp_path / "fw.img"
    img.write_bytes(b"x" * 100)
    ids = ",".join(f"board-{i}" for i in range(1000))
    p = otachain("release", "add", repo, img, "--product", "fw", "--hardware", ids,
                 "--version", "1.0.0", "--security-version", "1", check=False)
    assert err(p) == (2, "invalid_arg")
    assert "1000 hardware ids given, at most 64 per release" in p.stderr
    assert len(p.stderr.splitlines()[-1]) < 400  # the reason is on the line
    ids = ",".join(f"board-{i}" for i in range(65))  # one over the cap
    p = otachain("release", "add", repo, img, "--product", "fw", "--hardware", ids,
                 "--version", "1.0.0", "--security-version", "1", check=False)
    assert err(p) == (2, "invalid_arg")
    assert "65 hardware ids given, at most 64 per release" in p.stderr
    ids = ",".join(f"board-{i}" for i in range(64))
    otachain("release", "add", repo, img, "--product", "fw", "--hardware", ids,
             "--version", "1.0.0", "--security-version", "1")


def test_security_version_with_leading_zeros_is_refused(tmp_path, repo):
    img = tmp_path / "fw.img"
    img.write_bytes(b"x" * 100)
    p = otachain(
        "release", "add", repo, img, "--product", "fw", "--hardware", "h", "--version", "1.0.0",
        "--security-version", "007", check=False)
    assert err(p) == (2, "invalid_arg")
    assert "'007'" in p.stderr and "leading zeros" in p.stderr
    otachain("release", "add", repo, img, "--product", "fw", "--hardware", "h",
             "--version", "1.0.0", "--security-version", "0")


def test_older_version_or_security_version_is_warned_about(tmp_path, repo, keys):
    img = tmp_path / "fw.img"
    img.write_bytes(b"x" * 100)

    def rel(version, sv, name):
        return otachain("release", "add", repo, img, "--product", "fw", "--hardware", "h",
                        "--version", version, "--security-version", sv, "--name", name)

    assert "warning" not in rel("2.0.0", "5", "a.img").stderr
    otachain("release", "sign", repo, "--key", keys["t1"])
    otachain("repo", "publish", repo)
    # A maintenance release for an older branch: accepted, with warnings
    # naming the newer release and what devices will do.
    p = rel("1.4.7", "3", "a.img")
    assert p.returncode == 0
    assert "fw 1.4.7 is not newer than fw/2.0.0/a.img (published in targets v2)" in p.stderr
    assert "(not_newer)" in p.stderr
    assert "security version 3, below the 5 of fw/2.0.0/a.img" in p.stderr
    assert "(security_floor)" in p.stderr
    # Same precedence (build metadata only): not newer either.
    p = rel("2.0.0+rebuild.1", "5", "a.img")
    assert "is not newer than fw/2.0.0/a.img" in p.stderr
    assert "security_floor" not in p.stderr
    p = rel("2.0.1", "5", "a.img")
    assert "warning" not in p.stderr
    p = rel("2.0.1", "5", "b.img")  # the pending one counts too
    assert "not newer than fw/2.0.1/a.img (pending in targets v3)" in p.stderr


def test_one_key_as_root_and_targets_key_is_refused(tmp_path, keys):
    p = otachain("repo", "init", tmp_path / "repo", "--root-key", keys["r1"],
                 "--root-threshold", "1", "--targets-key", keys["r1"].pub,
                 "--targets-threshold", "1", check=False)
    assert err(p) == (2, "invalid_arg")
    assert "is the same key as --root-key" in p.stderr
    assert "must not sign releases" in p.stderr
    repo = tmp_path / "repo"
    otachain(*init_args(repo, keys, "--no-ledger"))
    p = otachain("root", "rotate", repo, "--key", keys["r1"], "--add-key",
                 f"targets={keys['r1'].pub}", check=False)
    assert err(p) == (2, "invalid_arg")
    assert "both a root and a targets key" in p.stderr
    p = otachain("root", "rotate", repo, "--key", keys["r1"], "--add-key",
                 f"root={keys['t1'].pub}", check=False)
    assert err(p) == (2, "invalid_arg")


# ------------------------------------------------------------- printing


def test_control_characters_are_escaped_in_every_line(tmp_path, repo):
    img = tmp_path / "fw.img"
    img.write_bytes(b"x" * 100)
    p = otachain("release", "add", repo, img, "--product", "fw", "--hardware", "h",
                 "--version", "1.0.0", "--security-version", "1", "--name", "evil\nname",
                 check=False)
    assert err(p) == (2, "invalid_arg")
    assert p.stderr.count("\n") == 1, p.stderr  # one line
    assert "target name 'evil\\nname'" in p.stderr
    # A terminal escape sequence in a field reaches no terminal.
    p = otachain("release", "add", repo, img, "--product", "fw\x1b[2J", "--hardware", "h",
                 "--version", "1.0.0", "--security-version", "1", check=False)
    assert err(p) == (2, "invalid_arg")
    assert "\x1b" not in p.stderr and "fw\\x1b[2J" in p.stderr
    # Standard output too: a file name with a newline.
    odd = tmp_path / "copy\nof targets.json"
    otachain("release", "add", repo, img, "--product", "fw", "--hardware", "h",
             "--version", "1.0.0", "--security-version", "1")
    odd.write_bytes((repo / "pending" / "targets.json").read_bytes())
    p = otachain("release", "merge", repo, odd)
    assert "merged 0 signature(s) from " in p.stdout
    assert "copy\\nof targets.json\n" in p.stdout


# ------------------------------------------------------------- messages


def test_tampered_signature_says_which_signature_did_not_verify(tmp_path, keys):
    repo = tmp_path / "repo"
    otachain(*init_args(repo, keys, "--no-ledger"))
    mirror = tmp_path / "mirror"
    shutil.copytree(repo / "public", mirror)
    ts = mirror / "metadata" / "timestamp.json"
    doc = json.loads(ts.read_text())
    sig = doc["signatures"][0]["sig"]
    doc["signatures"][0]["sig"] = ("1" if sig[0] == "0" else "0") + sig[1:]
    ts.write_text(json.dumps(doc))
    p = otachain("repo", "verify", "--dir", mirror, "--trusted-root",
                 repo / "public" / "metadata" / "1.root.json", "--state", tmp_path / "st",
                 check=False)
    assert err(p) == (1, "bad_signature"), p.stderr
    keyid = doc["signatures"][0]["keyid"]
    assert f"the signature by timestamp key {keyid} did not verify" in p.stderr
    assert "more signers must sign" not in p.stderr


def test_key_show_warns_about_an_unsafe_secret_key(tmp_path, keys):
    k = keys["t1"]
    assert "warning" not in otachain("key", "show", k).stderr
    assert "warning" not in otachain("key", "show", k.pub).stderr  # 0644 is right for .pub
    os.chmod(k.path, 0o644)
    p = otachain("key", "show", k)
    assert p.stdout.split()[:2] == ["keyid", k.keyid]  # still shown
    assert "is a secret key readable by group or others (mode 0644)" in p.stderr
    assert f"chmod 600 {k.path}" in p.stderr
    os.chmod(k.path, 0o600)
    link = tmp_path / "link.key"
    link.symlink_to(k.path)
    p = otachain("key", "show", link)
    assert "is a symbolic link to a secret key: signing refuses it" in p.stderr


def test_key_refusals_say_what_is_wrong(tmp_path, keys):
    repo = tmp_path / "repo"
    otachain(*init_args(repo, keys, "--no-ledger"))
    img = tmp_path / "fw.img"
    img.write_bytes(b"x" * 100)
    otachain("release", "add", repo, img, "--product", "fw", "--hardware", "h",
             "--version", "1.0.0", "--security-version", "1")
    t1 = keys["t1"].path

    # A symbolic link to a good key: refused (documented), with its own message.
    link = tmp_path / "link.key"
    link.symlink_to(t1)
    p = otachain("release", "sign", repo, "--key", link, check=False)
    assert err(p) == (3, "permission")
    assert f"secret key {link} is a symbolic link" in p.stderr
    assert "chmod" not in p.stderr
    # Group-readable: the mode and the chmod to run.
    os.chmod(t1, 0o640)
    p = otachain("release", "sign", repo, "--key", t1, check=False)
    assert err(p) == (3, "permission")
    assert f"(mode 0640): secret keys need mode 0600: chmod 600 {t1}" in p.stderr
    os.chmod(t1, 0o600)
    # An encrypted key is named as such (was only "Bad key").
    enc = tmp_path / "enc.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-aes-256-cbc", "-pass",
                    "pass:secret", "-out", str(enc)], check=True, capture_output=True)
    os.chmod(enc, 0o600)
    p = otachain("release", "sign", repo, "--key", enc, check=False)
    assert err(p) == (1, "key_format")
    assert f"{enc} is an encrypted private key" in p.stderr


def test_unreadable_image_gets_no_secret_key_advice(tmp_path, repo):
    img = tmp_path / "fw.img"
    img.write_bytes(b"x" * 100)
    img.chmod(0o000)
    args = ["release", "add", str(repo), str(img), "--product", "fw", "--hardware", "h",
            "--version", "1.0.0", "--security-version", "1"]
    if os.geteuid() == 0:
        # Root reads a mode-000 file: run the CLI as nobody.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("as root, needs setpriv to run the CLI as another user")
        tmp_path.chmod(0o755)
        from testlib import otachain_path
        p = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                            str(otachain_path()), *args], capture_output=True, text=True,
                           timeout=60)
    else:
        p = otachain(*args, check=False)
    assert err(p) == (3, "permission")
    assert f"IMAGE {img}: Permission denied" in p.stderr
    assert "chmod" not in p.stderr and "secret key" not in p.stderr
