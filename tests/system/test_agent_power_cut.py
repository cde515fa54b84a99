"""An update survives a power cut at every step (issue 12, acceptance 3,
the power-cut half; the kill -9 half is tests/system/test_agent_crash.py).

The reference update of a simulated device (tests/devsim.py: install on
slot a, reboot, commit on slot b) is traced once per boot with
OTACHAIN_FS_TRACE=1; then, from the same starting state, the agent of that
boot is run with OTACHAIN_POWER_CUT=N for every step N: just before step N
the file-system layer's power-cut mode (lib/fs_fault.c,
docs/internals/test-hooks.md) loses or tears what the agent had not made
durable (journal, trusted metadata, floors, the file backend's state
file), then the process dies. The device is then powered on again until
it settles. In every run it boots only slots holding a verified image
(1.0.0 or 1.1.0, byte for byte), ends idle, committed on 1.1.0 in slot b
or back on 1.0.0 in slot a with the bootloader confirmed, and says which
in `status` (the outcome it reports).

The power-cut journal models files written through the layer's writer.
The slot and the U-Boot environment are written in place (a block device,
libubootenv in a child), and the agent announces those writes as `write`
and `fsync` steps on the device; the test applies the same model to
them: a cut after a device's `write` and before its `fsync` finds the
slot torn (odd 512-byte sectors zeroed over the image), and the
environment either as stored (new) or with the copy just written torn
(the bootloader reads the other copy: old). A cut before the `write` is
the environment's third outcome (old, untouched).

`test_agent_power_cut_reported_through_the_server` runs a sample of the
cuts with the update-server source (a real otachain-server, mutual TLS)
and checks that the server recorded each device's outcome.

`test_agent_power_cut_catches_a_skipped_fsync` shows the suite can fail:
with the fsync of the agent's journal skipped (OTACHAIN_SKIP_FSYNC), some
cut leaves it torn and the device does not end as required.

Where the cuts run (as in tests/system/test_power_cut.py): with
OTACHAIN_POWER_CUT_BIN_DIR set (make check sets it to build-cut/, an
optimised build with test hooks), every cut runs with the agent of that
build and a sample (every OTACHAIN_POWER_CUT_SAMPLE-th, default 6, and the
last) again with the agent of OTACHAIN_BIN_DIR (ASan in make check);
without it every cut runs with OTACHAIN_BIN_DIR's.
"""

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from devsim import Device, fw, sha256_hex
from testlib import programs_of

V1 = fw("1.0.0")
V11 = fw("1.1.0", base=V1, edits=[(1000, 300), (300000, 500)])
assert len(V1) == len(V11)  # devsim hashes each booted slot over the factory length
VERIFIED = {sha256_hex(V1), sha256_hex(V11)}
CUT_BIN = os.environ.get("OTACHAIN_POWER_CUT_BIN_DIR")
SAMPLE = int(os.environ.get("OTACHAIN_POWER_CUT_SAMPLE", "6"))
SECTOR = 512


@pytest.fixture(name="repo", scope="module")
def repo_fixture(tmp_path_factory):
    from otarepo import Repo

    repo = Repo.create(tmp_path_factory.mktemp("cut") / "repo")
    repo.add_release("sim", "1.0.0", V1, hardware="board-a", sign=0, publish=False)
    repo.add_release("sim", "1.1.0", V11, hardware="board-a", security_version=1)
    return repo


def steps_of(stderr):
    """[(kind, path)] of the fs-step lines of one agent run."""
    return [tuple(ln.split(None, 3)[2:4]) for ln in stderr.splitlines()
            if ln.startswith("fs-step ")]


def unsynced_devices(steps, n):
    """The devices (slot, environment) written in place and not fsynced
    before step n (1-based) of steps."""
    pending = set()
    for kind, path in steps[:n - 1]:
        device = path.endswith(".img") or path.endswith("uboot.env")
        if device and kind == "write":
            pending.add(path)
        elif device and kind == "fsync":
            pending.discard(path)
    return pending


def tear_slot(path, length):
    """What a cut leaves of an unsynced in-place write: odd sectors of the
    written range zeroed."""
    with open(path, "r+b") as f:
        for off in range(SECTOR, length, 2 * SECTOR):
            f.seek(off)
            f.write(b"\0" * min(SECTOR, length - off))


def build_plan(backend, boots):
    """[(boot, n, variant, what)] for every step of every boot."""
    plan = []
    for k, steps in enumerate(boots):
        for n, (kind, path) in enumerate(steps, 1):
            envs = [p for p in unsynced_devices(steps, n) if p.endswith("uboot.env")]
            if envs:
                plan.append((k, n, "env-new", f"{kind} {path}"))
                plan.append((k, n, "env-torn", f"{kind} {path}"))
            else:
                plan.append((k, n, "", f"{kind} {path}"))
    return plan


def end_state(dev):
    """'new' or 'old' when the device ended as acceptance 3 requires;
    raises AssertionError otherwise."""
    st = dev.status()
    assert st["phase"] == "idle", st
    for b in dev.boots:
        if b.booted:  # what the kernel booted, hashed at that boot
            assert b.image_sha256 in VERIFIED, ("booted an unverified slot", b.slot)
    assert dev.boots[-1].agent_rc == 0, (dev.boots[-1].agent_rc, dev.boots[-1].stderr)
    assert not st["bootloader"]["trial"], st
    if st["installed"]["version"] == "1.1.0":
        assert st["installed"]["slot"] == "b" and st["bootloader"]["slot"] == "b", st
        assert st["last"]["result"] == "committed", st
        assert dev.slot_image("b", len(V11)) == V11
        return "new"
    assert st["installed"]["version"] == "1.0.0" and st["installed"]["slot"] == "a", st
    assert st["bootloader"]["slot"] == "a", st
    assert st["last"]["result"] in ("rolled_back", "fell_back"), st
    assert dev.slot_image("a", len(V1)) == V1
    return "old"


def reference(tmp_path, device):
    ref = device(tmp_path / "ref")
    install = ref.power_on(env={"OTACHAIN_FS_TRACE": "1"})
    commit = ref.power_on(env={"OTACHAIN_FS_TRACE": "1"})
    assert install.rebooting and not commit.rebooting
    assert end_state(ref) == "new"
    return [steps_of(install.stderr), steps_of(commit.stderr)]


def run_case(tmp_path, device, boots, case, env=None):
    """One cut: returns (label, 'new' | 'old'); raises on a bad end."""
    k, n, variant, what = case
    label = f"boot {k + 1} step {n} ({what}){' ' + variant if variant else ''}"
    dev = device(tmp_path / f"c{k}-{n}{'-' + variant if variant else ''}")
    if k == 1:
        assert dev.power_on().rebooting, label
    b = dev.power_on(env={"OTACHAIN_POWER_CUT": str(n), **(env or {})}, check_agent=False)
    assert b.agent_rc == -signal.SIGKILL, (label, b.agent_rc, b.stderr)
    for path in unsynced_devices(boots[k], n):
        if path.endswith(".img"):
            tear_slot(path, len(V11))
    if variant == "env-torn":
        dev.env.tear(dev.env.newest_copy())
    dev.boot_until_idle()
    try:
        return label, end_state(dev)
    except AssertionError as e:
        raise AssertionError(f"{label}: {e}") from e


def cut_all(tmp_path, device, boots, plan, sample=True, env=None):
    """Every case with the fast agent, then a sample under the sanitizers."""
    rounds = [(CUT_BIN, plan, "fast")] if CUT_BIN else [(None, plan, "")]
    if CUT_BIN and sample:
        picked = [c for i, c in enumerate(plan) if i % SAMPLE == 0 or i == len(plan) - 1]
        rounds.append((None, picked, "asan"))
    done = []
    for bin_dir, cases, tag in rounds:
        with programs_of(bin_dir), ThreadPoolExecutor(max_workers=2) as pool:
            done += list(pool.map(
                lambda c, t=tag: run_case(tmp_path / t, device, boots, c, env), cases))
    return done


@pytest.mark.parametrize("backend", ["uboot", "file"])
def test_agent_power_cut_at_every_step_of_an_update(tmp_path, repo, nginx_factory, backend):
    srv = nginx_factory(root=repo.public)

    def device(d):
        return Device.create(d, backend, [srv.url], repo.root1, V1)

    with programs_of(CUT_BIN):
        boots = reference(tmp_path, device)
    plan = build_plan(backend, boots)
    kinds = {c[3].split()[0] for c in plan}
    assert {"create", "write", "fsync", "rename", "dirsync"} <= kinds, kinds
    whats = [c[3] for c in plan]
    assert sum("journal.json" in w for w in whats) >= 20, whats
    assert any(w.startswith("write ") and w.endswith("slot-b.img") for w in whats), whats
    # A cut between the slot's write and its fsync: the slot is torn.
    assert any(w.startswith("fsync ") and w.endswith("slot-b.img") for w in whats), whats
    if backend == "uboot":
        # Each environment store is cut three ways: before its write (old),
        # between write and fsync as stored (new) and torn (old copy read).
        stores = [(c[0], c[1]) for c in plan if c[3].startswith("write ")
                  and c[3].endswith("uboot.env")]
        assert len(stores) >= 2, plan
        for k, n in stores:
            assert {v for (b, m, v, _) in plan if b == k and m == n + 1} == \
                {"env-new", "env-torn"}, (k, n)
    else:
        assert any(w.endswith("otachain.state") for w in whats), whats
    assert len({(c[0], c[1]) for c in plan}) >= 50, len(plan)

    done = cut_all(tmp_path, device, boots, plan)
    assert len(done) >= len(plan)
    # Every run ended on one of the two releases; say how many of each.
    ends = {e: sum(1 for _, x in done if x == e) for e in ("new", "old")}
    points = len({(c[0], c[1]) for c in plan})
    print(f"{backend}: {points} cut points, {len(plan)} cases, {len(done)} runs, ends {ends}")


def test_agent_power_cut_catches_a_skipped_fsync(tmp_path, repo, nginx_factory):
    """The same cuts (install boot, file backend, fast agent only) with the
    fsync of the agent's journal skipped: some cut leaves the journal torn
    and the device does not end as required."""
    srv = nginx_factory(root=repo.public)

    def device(d):
        return Device.create(d, "file", [srv.url], repo.root1, V1)

    with programs_of(CUT_BIN):
        boots = reference(tmp_path, device)
    plan = [c for c in build_plan("file", boots) if c[0] == 0]
    skip = {"OTACHAIN_SKIP_FSYNC": "/journal.json"}
    failures = []

    def one(case):
        try:
            run_case(tmp_path / "skip", device, boots, case, env=skip)
        except AssertionError as e:
            failures.append((case[:3], " ".join(str(e).split())[-300:]))

    with programs_of(CUT_BIN), ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, plan))
    assert failures, "no cut noticed the skipped fsync of the journal"
    print(f"skipped journal fsync: {len(failures)} of {len(plan)} cuts failed, "
          f"first: {min(failures)}")


@pytest.mark.parametrize("backend", ["uboot", "file"])
def test_agent_power_cut_reported_through_the_server(tmp_path, tmp_path_factory, backend):
    """The update-server source, a sample of the cuts (every
    OTACHAIN_POWER_CUT_SAMPLE-th step of both boots, fast agent): each
    device ends as above and the server has its outcome (the report
    survives the cut: a lost one is repeated by the next check-in)."""
    from otarepo import Repo
    from serverlib import Fleet, Server

    fleet = Fleet.create(tmp_path_factory.mktemp("fleet"))
    repo = Repo.create(tmp_path / "repo")
    repo.add_release("sim", "1.0.0", V1, hardware="board-a", sign=0, publish=False)
    repo.add_release("sim", "1.1.0", V11, hardware="board-a", security_version=1)
    srv = Server(tmp_path / "srv", repo.dir, fleet).start()
    read = srv.token("ro", "read")
    url = f"https://127.0.0.1:{srv.ports['device']}"
    names = []

    def device(d):
        name = f"{backend}-{d.parent.name}-{d.name}"[:60]
        cert, key, _ = fleet.device(name)
        dev = Device.create(d, backend, None, repo.root1, V1, server=url,
                            ca_file=fleet.server_ca, device_cert=cert, device_key=key)
        dev.id = name
        names.append(name)
        return dev

    try:
        with programs_of(CUT_BIN):
            boots = reference(tmp_path, device)
        plan = build_plan(backend, boots)
        picked = [c for i, c in enumerate(plan) if i % SAMPLE == 0 or i == len(plan) - 1]
        assert len(picked) >= 10, len(picked)

        def one(case):
            k, n, variant, _ = case
            label, end = run_case(tmp_path / "srv-cuts", device, boots, case)
            dev_id = f"{backend}-srv-cuts-c{k}-{n}{'-' + variant if variant else ''}"[:60]
            r = srv.admin(read).get(f"/admin/v1/devices/{dev_id}")
            assert r.status == 200, (label, r.text)
            want = "committed" if end == "new" else None
            assert r.json["update"]["state"] in ((want,) if want else ("rolled_back",
                                                                       "fell_back")), (label,
                                                                                       r.json)
            assert r.json["running"]["version"] == ("1.1.0" if end == "new" else "1.0.0"), (
                label, r.json)
            return end

        with programs_of(CUT_BIN), ThreadPoolExecutor(max_workers=2) as pool:
            ends = list(pool.map(one, picked))
        print(f"{backend} through the server: {len(picked)} cuts, ends "
              f"{ {e: ends.count(e) for e in ('new', 'old')} }")
    finally:
        srv.stop()
