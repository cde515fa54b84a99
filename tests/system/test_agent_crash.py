"""An update survives a crash at every step (issue 12, acceptance 3, the
kill -9 half): the agent is killed with SIGKILL just before each
file-system step of an update (OTACHAIN_CRASH_AT=N: every step of the
install round on slot a, every step of the commit on slot b; trusted
metadata, journal, slot and bootloader-environment writes), then the
simulated device reboots as often as it needs. In every run it boots
only verified slots and ends committed on the new release, idle, with
the bootloader confirmed and the outcome recorded. U-Boot environment
stores are cut three ways: before the store (old), after it (new), and
after it with the new copy torn (the bootloader reads the old copy).

The power-cut half (unsynced writes lost or torn, through the
file-system layer's power-cut mode) is tests/system/test_agent_power_cut.py.

Where the kills run (as in the power-cut suites): with
OTACHAIN_POWER_CUT_BIN_DIR set (make check sets it to build-cut/, an
optimised build with test hooks), every kill runs with the agent of that
build, then a sample (every OTACHAIN_POWER_CUT_SAMPLE-th, default 6, and
the last) again with the agent of OTACHAIN_BIN_DIR (ASan in make check);
without it every kill runs with OTACHAIN_BIN_DIR's.
"""

import os
import re
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from devsim import Device, fw, sha256_hex
from testlib import programs_of

V1 = fw("1.0.0")
V11 = fw("1.1.0", base=V1, edits=[(1000, 300), (300000, 500)])
CUT_BIN = os.environ.get("OTACHAIN_POWER_CUT_BIN_DIR")
SAMPLE = int(os.environ.get("OTACHAIN_POWER_CUT_SAMPLE", "6"))


@pytest.fixture(name="repo", scope="module")
def repo_fixture(tmp_path_factory):
    from otarepo import Repo

    repo = Repo.create(tmp_path_factory.mktemp("crash") / "repo")
    repo.add_release("sim", "1.0.0", V1, hardware="board-a", sign=0, publish=False)
    repo.add_release("sim", "1.1.0", V11, hardware="board-a", security_version=1)
    return repo


def steps_of(stderr):
    return [ln.split() for ln in stderr.splitlines() if ln.startswith("fs-step ")]


def check_end(dev, label):
    """Idle on 1.1.0 in slot b, confirmed; every boot booted a verified slot."""
    st = dev.status()
    assert st["phase"] == "idle", (label, st)
    assert st["installed"]["version"] == "1.1.0" and st["installed"]["slot"] == "b", (label, st)
    assert st["last"]["result"] == "committed", (label, st)
    assert st["bootloader"]["slot"] == "b" and not st["bootloader"]["trial"], (label, st)
    assert dev.slot_image("b", len(V11)) == V11, label
    assert dev.slot_image("a", len(V1)) == V1, label
    for b in dev.boots:
        if b.booted:  # what the kernel booted, hashed at that boot
            assert b.image_sha256 in (sha256_hex(V1), sha256_hex(V11)), (label, b.slot)


@pytest.mark.parametrize("backend", ["uboot", "file"])
def test_kill9_at_every_step_of_an_update(tmp_path, repo, nginx_factory, backend):
    srv = nginx_factory(root=repo.public)

    def device(name):
        return Device.create(tmp_path / name, backend, [srv.url], repo.root1, V1)

    # The uninterrupted update: its steps, per boot.
    ref = device("ref")
    with programs_of(CUT_BIN):
        install = ref.power_on(env={"OTACHAIN_FS_TRACE": "1"})
        commit = ref.power_on(env={"OTACHAIN_FS_TRACE": "1"})
    assert install.rebooting and not commit.rebooting
    check_end(ref, "reference")
    plan = []
    for k, b in enumerate((install, commit)):
        steps = steps_of(b.stderr)
        for n, (_, _, kind, path) in enumerate(steps, 1):
            plan.append((k, n, False, f"{kind} {path}"))
            if backend == "uboot" and kind == "write" and path.endswith("uboot.env"):
                plan.append((k, n + 1, True, f"torn store of {path}"))
    kinds = {p[3].split()[0] for p in plan}
    assert {"create", "write", "fsync", "rename", "dirsync"} <= kinds
    assert sum(1 for p in plan if "journal.json" in p[3]) >= 25
    assert sum(1 for p in plan if "slot-b.img" in p[3]) >= 2
    assert len(plan) >= 50, len(plan)

    def run(case, tag=""):
        k, n, torn, what = case
        label = f"boot {k + 1} step {n} ({what}){' torn' if torn else ''} {tag}"
        dev = device(f"{tag}c{k}-{n}{'-torn' if torn else ''}")
        if k == 1:
            assert dev.power_on().rebooting
        b = dev.power_on(env={"OTACHAIN_CRASH_AT": str(n)}, check_agent=False)
        assert b.agent_rc == -signal.SIGKILL, (label, b.agent_rc, b.stderr)
        if torn:
            dev.env.tear(dev.env.newest_copy())
        dev.boot_until_idle()
        check_end(dev, label)
        return label

    rounds = [(CUT_BIN, plan, "all-")]
    if CUT_BIN:
        rounds.append((None, [c for i, c in enumerate(plan)
                              if i % SAMPLE == 0 or i == len(plan) - 1], "asan-"))
    done = []
    for bin_dir, cases, tag in rounds:
        with programs_of(bin_dir), ThreadPoolExecutor(max_workers=2) as pool:
            done += list(pool.map(lambda c, t=tag: run(c, t), cases))
    assert len(done) >= len(plan)
    every = [d for d in done if d.endswith(" all-")]
    assert len(every) == len(plan)
    assert len([d for d in every if re.search(r"torn", d)]) == (2 if backend == "uboot" else 0)
