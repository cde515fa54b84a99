"""otachain-agent end to end on the simulated device (tests/devsim.py),
against real nginx mirrors: install into the inactive slot, reboot,
commit or roll back, for the U-Boot (libubootenv, redundant environment)
and the file backends; bootloader environment checks; lying mirrors;
resume; status and audit; the verify-only link.

Acceptance points of issue 12 shown here: 1 (mirror source, both
backends), 2 (refusals, failover), 5 (resume), 6 (nm)."""

import datetime
import json
import os
import pty
import re
import shutil
import signal
import subprocess
import time

import pytest

from devsim import Device, agent_path, fw, sha256_hex
from otarepo import Repo
from testlib import otachain_path

BACKENDS = ["uboot", "file"]


def make_repo(tmp_path, releases, name="repo"):
    """A published repository (ledger on, no witnesses) with the given
    (version, image, kwargs) releases of product 'sim'."""
    repo = Repo.create(tmp_path / name)
    for version, image, kw in releases:
        kw = dict(kw)
        kw.setdefault("hardware", "board-a")
        repo.add_release("sim", version, image, **kw)
    return repo


V1 = fw("1.0.0")
V11 = fw("1.1.0", base=V1, edits=[(1000, 300), (300000, 500)])


BAD = fw("1.1.0", base=V1, edits=[(5000, 100)], health="fail")
CRASH = fw("1.1.0", base=V1, edits=[(7000, 100)], boot="crash")


@pytest.fixture(name="base", scope="module")
def base_fixture(tmp_path_factory):
    """One repository shared by the tests of this module that only read
    it, published once: product "sim" 1.0.0 (factory) and 1.1.0 (security
    version 1); "bad" 1.1.0 fails its health check; "crash" 1.1.0 never
    boots."""
    repo = Repo.create(tmp_path_factory.mktemp("base") / "repo")
    rels = [("sim", "1.0.0", V1, 0), ("sim", "1.1.0", V11, 1), ("bad", "1.0.0", V1, 0),
            ("bad", "1.1.0", BAD, 0), ("crash", "1.0.0", V1, 0), ("crash", "1.1.0", CRASH, 0)]
    for i, (product, version, image, sv) in enumerate(rels):
        last = i == len(rels) - 1
        repo.add_release(product, version, image, hardware="board-a", security_version=sv,
                         sign=2 if last else 0, publish=last)
    return repo


def assert_idle_on(dev, slot, version):
    st = dev.status()
    assert st["phase"] == "idle", st
    assert st["installed"]["slot"] == slot and st["installed"]["version"] == version, st
    assert st["booted_slot"] == slot
    assert st["bootloader"]["slot"] == slot and not st["bootloader"]["trial"], st
    assert dev.running_version() == version
    return st


# ------------------------------------------------------------ acceptance 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_update_commits(tmp_path, base, nginx_factory, backend):
    """1.0.0 -> 1.1.0: written into slot b (the chunks 1.0.0 has are
    copied from slot a), re-read, armed, rebooted, health check, commit."""
    srv = nginx_factory(root=base.public)
    dev = Device.create(tmp_path / "dev", backend, [srv.url], base.root1, V1)
    boots = dev.boot_until_idle()
    assert [(b.slot, b.rebooting) for b in boots] == [("a", True), ("b", False)]
    first = boots[0].stderr
    assert "installing 1.1.0" in first and "into slot b" in first
    assert re.search(r"chunks: \d+ total, 0 already verified, [1-9]\d* copied", first), first
    assert "slot b holds 1.1.0 (re-read and verified)" in first
    assert "committed 1.1.0 on slot b" in boots[1].stderr
    st = assert_idle_on(dev, "b", "1.1.0")
    assert st["security_floor"] == 1
    assert st["last"]["result"] == "committed"
    assert st["installed"]["sha256"] == sha256_hex(V11)
    # Both floors: the time floor as the trusted state stores it (the
    # unit tests of the TUF client check its rules), in seconds and UTC.
    floor = st["time_floor"]
    stored = (dev.state / "tuf" / "time-floor").read_text()
    assert floor["seconds"] >= int(stored)
    assert floor["utc"] == datetime.datetime.fromtimestamp(
        floor["seconds"], datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "time floor:    " + floor["utc"] in dev.agent("status").stdout
    assert dev.slot_image("b", len(V11)) == V11
    assert dev.slot_image("a", len(V1)) == V1
    # A later round finds nothing newer and changes nothing.
    again = dev.boot_until_idle()
    assert len(again) == 1 and "no newer release" in again[0].stderr


def test_update_now_shows_progress_on_a_terminal(tmp_path, base, nginx_factory):
    """`otachain-agent update --now` for a person at a terminal: log lines
    carry the time, and while the image is written one progress line is
    kept up to date (carriage returns, percent rising to 100), ended by the
    next log line. The same callback feeds the systemd watchdog."""
    srv = nginx_factory(root=base.public)
    dev = Device.create(tmp_path / "dev", "file", [srv.url], base.root1, V1)
    dev.cmdline.write_text("console=ttyS0 root=/dev/sima ro otachain.slot=a\n")
    env = dict(os.environ)
    env.update(dev.agent_env)
    master, slave = pty.openpty()
    p = subprocess.Popen([str(agent_path()), "--config", str(dev.config), "update", "--now"],
                         stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the agent closed the terminal
            break
        if not chunk:
            break
        out += chunk
    rc = p.wait(timeout=300)
    os.close(master)
    text = out.decode(errors="replace")
    assert rc == 0, text
    assert "ERROR: AddressSanitizer" not in text and "runtime error" not in text, text
    assert re.search(r"^\[\d\d:\d\d:\d\d\] installing 1\.1\.0", text, re.M), text
    bars = [int(x) for x in re.findall(r"\r +image: +(\d+)% \(\d+ of \d+ KiB written\)", text)]
    assert bars and bars == sorted(bars) and bars[-1] == 100, text
    assert len(set(bars)) == len(bars)  # redrawn only when the percent changes
    # The progress line is ended before the next log line.
    assert re.search(r"KiB written\)\r?\n\[\d\d:\d\d:\d\d\] ", text), text
    assert (dev.dir / "reboots").read_text().count("reboot") == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_failed_health_check_rolls_back(tmp_path, base, nginx_factory, backend):
    """1.1.0 boots but fails its health check: the agent switches back to
    slot a by itself, records it, and never retries that release."""
    srv = nginx_factory(root=base.public)
    dev = Device.create(tmp_path / "dev", backend, [srv.url], base.root1, V1, product="bad")
    boots = dev.boot_until_idle()
    assert [(b.slot, b.rebooting) for b in boots] == [("a", True), ("b", True), ("a", False)]
    assert "rolling back 1.1.0" in boots[1].stderr
    assert "rolled_back: 1.1.0 (health_check)" in boots[2].stderr
    st = assert_idle_on(dev, "a", "1.0.0")
    assert st["last"]["result"] == "rolled_back" and st["last"]["error"] == "health_check"
    assert st["blocked"] == 1 and st["security_floor"] == 0
    # Not retried: the next round finds nothing to install.
    again = dev.boot_until_idle()
    assert len(again) == 1 and not again[0].rebooting
    assert "that failed here" in again[0].stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_crash_looping_slot_falls_back_after_bootlimit(tmp_path, base, nginx_factory,
                                                       backend):
    """A new slot whose kernel never reaches the agent: the bootloader
    counts bootlimit (3) trial attempts, then boots slot a again; the agent
    there records fell_back and blocks the release."""
    srv = nginx_factory(root=base.public)
    dev = Device.create(tmp_path / "dev", backend, [srv.url], base.root1, V1, product="crash")
    boots = dev.boot_until_idle()
    assert [(b.slot, b.booted) for b in boots] == [
        ("a", True), ("b", False), ("b", False), ("b", False), ("a", True)]
    assert "fell_back: 1.1.0 (fell_back)" in boots[-1].stderr
    st = assert_idle_on(dev, "a", "1.0.0")
    assert st["last"]["result"] == "fell_back" and st["blocked"] == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_power_cuts_of_committed_device_never_switch_back(tmp_path, base, nginx_factory,
                                                          backend):
    """After the commit, ten power cuts before user space (the bootloader
    runs, the agent never does) leave the device on slot b: attempts are
    counted only during a trial."""
    srv = nginx_factory(root=base.public)
    dev = Device.create(tmp_path / "dev", backend, [srv.url], base.root1, V1)
    dev.boot_until_idle()
    for _ in range(10):
        slot, _ = dev._bootloader()
        assert slot == "b"
    assert dev.boot_state()[:3] == ("b", False, 0)


# ---------------------------------------------- the bootloader environment


def assert_nothing_armed(dev):
    st = dev.status()
    assert st["phase"] == "idle" and st["installed"]["version"] == "1.0.0"
    assert dev.slot_image("b", len(V1)) == V1  # the inactive slot untouched


def test_bad_crc_refuses_to_arm(tmp_path, base, nginx_factory):
    """No environment copy with a valid CRC (U-Boot would boot its default
    environment): the agent says why and installs nothing."""
    srv = nginx_factory(root=base.public)
    dev = Device.create(tmp_path / "dev", "uboot", [srv.url], base.root1, V1)
    dev.env.corrupt_all()
    b = dev.power_on()
    assert "bootloader: bad CRC, using default environment" in b.log
    assert b.agent_rc == 1
    assert "warning: updates cannot be armed: bootenv_crc" in b.stderr
    assert "otachain-agent: bootenv_crc:" in b.stderr
    assert not b.rebooting
    assert_nothing_armed(dev)


def test_broken_fw_env_config_refuses_to_arm(tmp_path, base, nginx_factory):
    srv = nginx_factory(root=base.public)
    dev = Device.create(tmp_path / "dev", "uboot", [srv.url], base.root1, V1)
    good = dev.env.agent_config.read_text()
    dev.env.agent_config.write_text("/nonexistent/env 0x0 0x4000\n")
    b = dev.power_on()
    assert b.agent_rc == 1 and "bootenv_config" in b.stderr and "/nonexistent/env" in b.stderr
    assert_nothing_armed(dev)
    dev.env.agent_config.write_text("# nothing configured\n")
    b = dev.power_on()
    assert b.agent_rc == 1 and "bootenv_config" in b.stderr
    dev.env.agent_config.write_text(good)
    assert dev.boot_until_idle()[-1].slot == "b"


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_only_boot_partition_refuses_to_arm(tmp_path, base, nginx_factory, backend):
    """The boot partition mounted read-only (a private mount namespace with
    a read-only bind mount over the environment's directory)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) missing")
    srv = nginx_factory(root=base.public)
    dev = Device.create(tmp_path / "dev", backend, [srv.url], base.root1, V1)
    boot_dir = dev.dir / "boot"
    dev._bootloader()
    dev.cmdline.write_text("root=/dev/sima otachain.slot=a\n")
    p = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         f'mount --bind -o ro "{boot_dir}" "{boot_dir}" && exec "$0" "$@"',
         str(agent_path()), "--config", str(dev.config), "run", "--once"],
        capture_output=True, text=True, timeout=300)
    if "mount:" in p.stderr and p.returncode != 0 and "bootenv" not in p.stderr:
        pytest.skip(f"cannot make a read-only bind mount here: {p.stderr}")
    assert p.returncode == 1, p.stderr
    assert "otachain-agent: bootenv_readonly:" in p.stderr, p.stderr
    assert_nothing_armed(dev)


# ------------------------------------------------ acceptance 2: refusals


def test_release_rules(tmp_path, nginx_factory):
    """Only a newer release for this product and hardware, at or above the
    security floor, is installed: another hardware id, another product, an
    older version and a release below the floor are passed over and nothing
    is written to the inactive slot."""
    v12 = fw("1.2.0", base=V11, edits=[(2000, 50)])
    repo = make_repo(tmp_path, [("1.0.0", V1, {}), ("1.1.0", V11, {"security_version": 2})])
    srv = nginx_factory(root=repo.public)
    dev = Device.create(tmp_path / "dev", "uboot", [srv.url], repo.root1, V1)
    dev.boot_until_idle()
    assert_idle_on(dev, "b", "1.1.0")
    slot_a = dev.slot_image("a")
    # 1.2.0 for another board, 0.9.0 (older), 1.3.0 below the floor (2),
    # and 9.0.0 of another product.
    repo.add_release("sim", "1.2.0", v12, hardware="board-b", security_version=2, sign=0,
                     publish=False)
    repo.add_release("sim", "0.9.0", fw("0.9.0"), hardware="board-a", security_version=2,
                     sign=0, publish=False)
    repo.add_release("sim", "1.3.0", fw("1.3.0"), hardware="board-a", security_version=1,
                     sign=0, publish=False)
    repo.add_release("other", "9.0.0", fw("9.0.0"), hardware="board-a", security_version=5)
    boots = dev.boot_until_idle()
    assert len(boots) == 1 and not boots[0].rebooting
    assert "1 newer release(s) below the security floor 2" in boots[0].stderr
    assert "no newer release for sim/board-a (running 1.1.0)" in boots[0].stderr
    assert dev.slot_image("a") == slot_a
    assert_idle_on(dev, "b", "1.1.0")


def test_metadata_not_in_cosigned_checkpoint_refused(tmp_path, nginx_factory):
    """A mirror serving the new release's metadata with the log's old
    checkpoint: the snapshot is in no checkpoint the device can verify
    (not_in_log): refused, reported in the error line, nothing written."""
    repo = make_repo(tmp_path, [("1.0.0", V1, {})])
    old = repo.save("v1")
    repo.add_release("sim", "1.1.0", V11)
    mirror = tmp_path / "withheld"
    shutil.copytree(repo.public, mirror)
    shutil.rmtree(mirror / "ledger")
    shutil.copytree(old / "ledger", mirror / "ledger")
    srv = nginx_factory(root=mirror)
    dev = Device.create(tmp_path / "dev", "uboot", [srv.url], repo.root1, V1)
    b = dev.power_on()
    assert b.agent_rc == 1 and not b.rebooting
    assert "otachain-agent: not_in_log:" in b.stderr, b.stderr
    assert f"mirror {srv.url} dropped for this round: not_in_log" in b.stderr
    assert_nothing_armed(dev)


def test_lying_mirrors_fail_over_in_the_same_round(tmp_path, base, nginx_factory):
    """Three mirrors: the first serves a timestamp with a broken signature,
    the second a pack with one flipped byte, the third is honest. The
    device drops the first two and installs from the third, in one round."""
    forged = tmp_path / "forged"
    shutil.copytree(base.public, forged)
    ts = json.loads((forged / "metadata" / "timestamp.json").read_text())
    sig = ts["signatures"][0]["sig"]
    ts["signatures"][0]["sig"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    (forged / "metadata" / "timestamp.json").write_text(json.dumps(ts))
    flipped = tmp_path / "flipped"
    shutil.copytree(base.public, flipped)
    pack = flipped / "chunks" / f"{sha256_hex(V11)}.pack"
    data = bytearray(pack.read_bytes())
    for off in range(64, len(data), 4096):  # every frame region gets a flip
        data[off] ^= 0x01
    pack.write_bytes(bytes(data))
    m1 = nginx_factory(root=forged)
    m2 = nginx_factory(root=flipped)
    m3 = nginx_factory(root=base.public)
    dev = Device.create(tmp_path / "dev", "uboot", [m1.url, m2.url, m3.url], base.root1, V1)
    boots = dev.boot_until_idle()
    first = boots[0].stderr
    assert re.search(rf"mirror {re.escape(m1.url)} dropped for this round: "
                     r"(threshold|bad_signature)", first), first
    assert re.search(rf"mirror {re.escape(m2.url)} dropped for this round: "
                     r"(hash_mismatch|decompress)", first), first
    assert f"fetched 1.1.0 from {m3.url}" in first
    assert_idle_on(dev, "b", "1.1.0")
    assert dev.slot_image("b", len(V11)) == V11


# --------------------------------------------------- acceptance 5: resume


def recorded_chunks(state):
    n = 0
    for f in (state / "download" / "dp").glob("*.dpstate"):
        n += sum(bin(b).count("1") for b in f.read_bytes()[64:])
    return n


def test_interrupted_download_resumes(tmp_path, nginx_factory):
    """The agent is killed (SIGKILL) in the middle of a slow download; the
    next run fetches none of the chunks it had verified."""
    big = fw("1.0.0", size=3_000_000, seed=1)
    other = fw("1.1.0", size=3_000_000, seed=2)  # nothing in common
    repo = make_repo(tmp_path, [("1.0.0", big, {}), ("1.1.0", other, {})])
    slow = nginx_factory(root=repo.public,
                         extra_conf="        location /chunks/ { limit_rate 300k; }\n")
    dev = Device.create(tmp_path / "dev", "uboot", [slow.url], repo.root1, big)
    dev._bootloader()
    dev.cmdline.write_text("root=/dev/sima otachain.slot=a\n")
    proc = subprocess.Popen([str(agent_path()), "--config", str(dev.config), "run", "--once"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while recorded_chunks(dev.state) == 0 and proc.poll() is None and \
            time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = recorded_chunks(dev.state)
    assert done > 0
    assert dev.status()["phase"] == "fetching"
    fast = nginx_factory(root=repo.public)
    cfg = dev.config.read_text().replace(f"mirror = {slow.url}", f"mirror = {fast.url}")
    dev.config.write_text(cfg)
    p = dev.agent("run", "--once")
    m = re.search(r"chunks: (\d+) total, (\d+) already verified, (\d+) copied, (\d+) fetched",
                  p.stderr)
    assert m, p.stderr
    total, already, copied, fetched = map(int, m.groups())
    assert already >= done and fetched == total - already - copied
    assert "armed: slot b boots 1.1.0" in p.stderr
    assert dev.slot_image("b", len(other)) == other


# ------------------------------------------------------- status and audit


def test_status_and_audit(tmp_path, base, nginx_factory):
    srv = nginx_factory(root=base.public)
    dev = Device.create(tmp_path / "dev", "uboot", [srv.url], base.root1, V1)
    dev.boot_until_idle()
    text = dev.agent("status").stdout
    assert "installed:     1.1.0 on slot b" in text
    assert "bootloader:    uboot: boots slot b (attempts 0 of 3)" in text
    assert "security floor: 1" in text
    st = dev.status()
    assert st["trusted"]["root"] == 1 and st["trusted"]["targets"] >= 2
    p = dev.agent("audit", "--chunks", "all")
    assert "all match the signed index" in p.stdout and "every one" in p.stdout
    a = json.loads(dev.agent("audit", "--json").stdout)
    assert a["result"] == "ok" and a["checked"] == 16
    # One flipped byte in the running slot.
    with open(dev.slots["b"], "r+b") as f:
        f.seek(400_000)
        c = f.read(1)
        f.seek(400_000)
        f.write(bytes([c[0] ^ 0xFF]))
    p = dev.agent("audit", "--chunks", "all", check=False)
    assert p.returncode == 1 and "otachain-agent: hash_mismatch:" in p.stderr
    a = json.loads(dev.agent("audit", "--json", "--chunks", "all", check=False).stdout)
    assert a["result"] == "bad" and a["error"] == "hash_mismatch"
    assert a["bad_offset"] <= 400_000


def test_config_refusals(tmp_path, base):
    dev = Device.create(tmp_path / "dev", "uboot", ["http://127.0.0.1:9"], base.root1, V1)
    good = dev.config.read_text()
    for bad, what in [
        (good.replace("[agent]", "[agent]\nbogus = 1"), "[agent] bogus: unknown key"),
        (good.replace("product = sim", "product = sim\nproduct = x"), "set twice"),
        (good.replace("backend = uboot", "backend = grub"), "uboot or file"),
        (good.replace("mirror = http://", "mirror = ftp://"), "http:// or https:// URL"),
        (good.replace("[slot b]", "[slot c]"), None),
        (good.replace("factory_version = 1.0.0\n", ""), "factory_version: missing"),
    ]:
        dev.config.write_text(bad)
        p = dev.agent("status", check=False)
        if what is None:  # three slots is fine; drop one of two instead
            continue
        assert p.returncode == 2 and "otachain-agent: config:" in p.stderr, p.stderr
        assert what in p.stderr, p.stderr


# -------------------------------------------------- acceptance 6: nm check

SIGNING = ["ota_signer_sign", "ota_signer_load", "ota_signer_generate", "ota_note_sign",
           "ota_note_cosign", "ota_tuf_sign", "ota_tuf_merge_signatures", "ota_delta_make",
           "ota_chunk_build_new", "EVP_DigestSign"]


def defined_symbols(path):
    p = subprocess.run(["nm", "--defined-only", str(path)], capture_output=True, text=True,
                       check=True)
    return {line.split()[-1] for line in p.stdout.splitlines() if line.strip()}


def test_agent_links_no_signing_code():
    """STYLE rule 6: nm on the unstripped agent finds none of the signing
    functions; the CLI, which signs, is the positive control."""
    agent = defined_symbols(agent_path())
    cli = defined_symbols(otachain_path())
    assert "ota_tuf_client_refresh" in agent and "ota_dp_fetch" in agent
    for name in SIGNING[:-1]:
        assert name in cli, name
        assert name not in agent, name
    assert not [s for s in agent if "sign" in s and s.startswith("ota_") and
                "verify" not in s and s not in ("ota_tuf_find_target",)
                and not s.startswith("ota_tuf_sig") and "signature" not in s
                and not s.startswith("ota_note_verif")], \
        sorted(s for s in agent if "sign" in s and s.startswith("ota_"))


def test_forked_log_refused(tmp_path, nginx_factory):
    """The log operator shows this device one history and then another of
    the same log (two repositories grown from one state, each signed by
    the log key): the second is refused as split_view and nothing is
    installed from it."""
    repo = make_repo(tmp_path, [("1.0.0", V1, {})])
    twin_dir = tmp_path / "twin"
    shutil.copytree(repo.dir, twin_dir)
    twin = Repo(twin_dir, repo.keydir, repo.root_keys, repo.targets_keys)
    repo.add_release("sim", "1.1.0", V11)
    other = fw("1.1.0", base=V1, edits=[(9000, 100)])
    twin.add_release("sim", "1.1.0", other)
    twin.add_release("sim", "1.2.0", fw("1.2.0", base=V1, edits=[(9000, 200)]))
    honest = nginx_factory(root=repo.public)
    dev = Device.create(tmp_path / "dev", "uboot", [honest.url], repo.root1, V1)
    dev.boot_until_idle()
    assert_idle_on(dev, "b", "1.1.0")
    forked = nginx_factory(root=twin.public)
    dev.config.write_text(dev.config.read_text().replace(honest.url, forked.url))
    slot_a = dev.slot_image("a")
    b = dev.power_on()
    assert b.agent_rc == 1 and not b.rebooting
    assert "otachain-agent: split_view:" in b.stderr, b.stderr
    assert dev.slot_image("a") == slot_a
    assert_idle_on(dev, "b", "1.1.0")
