"""A simulated A/B device for the agent's process-level tests.

    dev = Device.create(tmp_path / "dev", backend="uboot", mirrors=[srv.url],
                        root=repo.root1, factory=fw(version="1.0.0"))
    dev.boot_until_idle()               # power on, run the agent, reboot as asked
    assert dev.running_version() == "1.0.0"

What it simulates:

- Slots: two files (slot-a.img, slot-b.img) of a fixed size, the block
  devices of a real board.
- Firmware images (`fw()`): a first line "OTASIM1 version=V boot=ok
  health=ok" followed by pseudo-random bytes. The simulated kernel boots
  a slot only when its first line says boot=ok (anything else, a torn or
  empty slot included, is a kernel that never reaches user space); the
  health-check hook the tests install passes only when it says health=ok.
- U-Boot (backend "uboot"): a redundant environment made with U-Boot's
  mkenvimage (two copies in one file, as two offsets of an eMMC), read and
  written only through libubootenv's fw_printenv / fw_setenv, never by a
  parser of our own (the agent uses libubootenv's library). Each power-on
  applies U-Boot's documented rules (doc/api/bootcount.rst,
  drivers/bootcount/bootcount_env.c, CONFIG_BOOTCOUNT_ENV):
    * an environment with no valid copy is replaced by the built-in default
      environment ("bad CRC, using default environment");
    * bootcount is loaded only when upgrade_available=1 (else 0), incremented
      and saved only when upgrade_available=1;
    * when bootlimit is set and bootcount > bootlimit, altbootcmd runs
      instead of bootcmd: here, as in contrib/u-boot/env.txt, it switches
      otachain_slot to the other slot, clears upgrade_available and bootcount
      and saves (otachain_fallback), then boots;
    * bootcmd boots the slot otachain_slot names, passing
      "otachain.slot=NAME" on the kernel command line.
- A custom bootloader (backend "file"): the file backend's state file
  (slot=, trial=, attempts=, limit=, docs/agent.md), with the same rule:
  attempts are counted and saved only during a trial, and past the limit
  the other slot is booted and the trial cleared.
- The kernel command line is a file the agent reads (its `cmdline` key);
  the reboot command writes a marker file; the agent runs `run --once` after
  each successful boot.
"""

import hashlib
import os
import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from testlib import bin_dir

SLOT_SIZE = 4 << 20
ENV_SIZE = 0x4000

DEFAULT_ENV = {
    "otachain_slot": "a",
    "upgrade_available": "0",
    "bootcount": "0",
    "bootlimit": "3",
    "bootcmd": "run otachain_boot",
    "altbootcmd": "run otachain_fallback; run bootcmd",
}


def agent_path():
    return bin_dir() / "programs" / "otachain-agent" / "otachain-agent"


def fw(version, size=600_000, seed=None, boot="ok", health="ok", base=None, edits=()):
    """A firmware image for the simulator. base: an earlier image to start
    from (so that chunks and deltas have something to reuse), with edits a
    list of (offset, length) regions rewritten at random."""
    header = f"OTASIM1 version={version} boot={boot} health={health}\n".encode()
    header = header.ljust(128, b" ")
    if base is not None:
        body = bytearray(base[128:])
        rnd = random.Random(seed if seed is not None else version)
        for off, n in edits:
            body[off:off + n] = rnd.randbytes(n)
        body = bytes(body)
    else:
        rnd = random.Random(seed if seed is not None else version)
        body = rnd.randbytes(size - len(header))
    return header + body


def image_fields(data):
    line = data[:128].split(b"\n", 1)[0].decode(errors="replace")
    if not line.startswith("OTASIM1 "):
        return {}
    return dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)


def _run(cmd, check=True, env=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                       timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


class UBootEnv:
    """A redundant U-Boot environment in one file (copy 1 at 0, copy 2 at
    ENV_SIZE), accessed only through fw_printenv / fw_setenv."""

    def __init__(self, dir, defaults=None):
        self.dir = Path(dir)
        self.file = self.dir / "uboot.env"
        # The simulated U-Boot knows where its environment is (compiled
        # in); fw_env.config is the agent's, which tests may break.
        self.config = self.dir / "uboot-sim.config"
        self.agent_config = self.dir / "fw_env.config"
        self.defenv = self.dir / "default.env"
        self.defaults = dict(defaults or DEFAULT_ENV)

    def create(self, values=None):
        self.dir.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{k}={v}\n" for k, v in self.defaults.items())
        self.defenv.write_text(text)
        vals = dict(self.defaults)
        vals.update(values or {})
        src = self.dir / "initial.txt"
        src.write_text("".join(f"{k}={v}\n" for k, v in vals.items()))
        one = self.dir / "copy1.bin"
        _run(["mkenvimage", "-r", "-s", hex(ENV_SIZE), "-o", one, src])
        # Copy 2 starts erased (all 0xff), as fresh flash.
        self.file.write_bytes(one.read_bytes() + b"\xff" * ENV_SIZE)
        one.unlink()
        text = f"{self.file} 0x0 {hex(ENV_SIZE)}\n{self.file} {hex(ENV_SIZE)} {hex(ENV_SIZE)}\n"
        self.config.write_text(text)
        self.agent_config.write_text(text)
        return self

    def read(self):
        """(variables, default_used): what U-Boot would load."""
        p = _run(["fw_printenv", "-c", self.config, "-f", self.defenv])
        vals = {}
        for line in p.stdout.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                vals[k] = v
        return vals, "using default" in p.stderr

    def set(self, **kv):
        """One saveenv with these variables changed (None deletes)."""
        script = self.dir / "set.script"
        script.write_text("".join(f"{k}={'' if v is None else v}\n" for k, v in kv.items()))
        _run(["fw_setenv", "-c", self.config, "-f", self.defenv, "-s", script])

    def get(self, name):
        return self.read()[0].get(name)

    # -- damage, as power cuts and failing flash leave it

    def copies(self):
        data = self.file.read_bytes()
        return [data[:ENV_SIZE], data[ENV_SIZE:2 * ENV_SIZE]]

    def newest_copy(self):
        """Index of the copy libubootenv/U-Boot would use: the valid one
        with the higher flags byte (by fw_printenv's answer, not our own
        CRC check: flip each and see)."""
        c = self.copies()
        return 0 if c[0][4] >= c[1][4] or c[1][4] == 0xff else 1

    def tear(self, copy):
        """A torn write of one copy: its second half is left erased."""
        data = bytearray(self.file.read_bytes())
        start = copy * ENV_SIZE
        data[start + ENV_SIZE // 2:start + ENV_SIZE] = b"\xff" * (ENV_SIZE // 2)
        data[start + 8] ^= 0x55
        self.file.write_bytes(bytes(data))

    def corrupt_all(self):
        data = bytearray(self.file.read_bytes())
        data[8] ^= 0x55
        data[ENV_SIZE + 8] ^= 0x55
        self.file.write_bytes(bytes(data))


class FileBootState:
    """The file backend's state file, as a custom bootloader reads it."""

    def __init__(self, path):
        self.path = Path(path)

    def create(self, slot="a", limit=3):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"slot={slot}\ntrial=0\nattempts=0\nlimit={limit}\n")
        return self

    def read(self):
        vals = {}
        for line in self.path.read_text().splitlines():
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                vals[k] = v
        return vals

    def write(self, vals):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(f"{k}={v}\n" for k, v in vals.items()))
        os.replace(tmp, self.path)


HEALTH_HOOK = """#!/bin/sh
# Test health check: the booted slot's image says health=ok.
head -c 128 "$OTACHAIN_SLOT_DEVICE" | head -n 1 | grep -q 'health=ok'
"""

REBOOT_CMD = 'echo reboot >> "{dir}/reboots"'


@dataclass
class Boot:
    slot: str
    booted: bool          # the kernel reached user space (the agent ran)
    agent_rc: int = None
    stdout: str = ""
    stderr: str = ""
    rebooting: bool = False
    log: list = field(default_factory=list)
    image_sha256: str = None  # of the slot's first image_len bytes, as booted


class Device:
    """A simulated board: two slots, a bootloader, a data partition with
    the agent's state, and the agent."""

    def __init__(self, dir, backend):
        self.dir = Path(dir).resolve()
        self.backend = backend
        self.slots = {"a": self.dir / "slot-a.img", "b": self.dir / "slot-b.img"}
        self.state = self.dir / "data" / "otachain"
        self.cmdline = self.dir / "cmdline"
        self.config = self.dir / "agent.ini"
        self.env = UBootEnv(self.dir / "boot") if backend == "uboot" else None
        self.filestate = FileBootState(self.dir / "boot" / "otachain.state") \
            if backend == "file" else None
        self.boots = []
        self.agent_env = {}
        self.image_len = None  # set by create(): the factory image's length

    @classmethod
    def create(cls, dir, backend, mirrors, root, factory, product="sim", hardware="board-a",
               ca_file=None, extra_ini="", bootlimit=3, slot_size=SLOT_SIZE, server=None,
               device_cert=None, device_key=None):
        """mirrors: the mirror list; or server: the update server's URL
        (device_cert, device_key and ca_file for its mutual TLS)."""
        dev = cls(dir, backend)
        dev.image_len = len(factory)
        dev.dir.mkdir(parents=True, exist_ok=True)
        for s, path in dev.slots.items():
            with open(path, "wb") as f:
                f.truncate(max(slot_size, len(factory)))
        dev.write_slot("a", factory)
        dev.write_slot("b", factory)  # the factory flashes both slots
        if backend == "uboot":
            dev.env.defaults["bootlimit"] = str(bootlimit)
            dev.env.create()
        else:
            dev.filestate.create(limit=bootlimit)
        hook = dev.dir / "health-check"
        hook.write_text(HEALTH_HOOK)
        hook.chmod(0o755)
        factory_version = image_fields(factory)["version"]
        lines = [
            "[agent]",
            f"state_dir = {dev.state}",
            f"product = {product}",
            f"hardware = {hardware}",
            f"factory_version = {factory_version}",
            f"cmdline = {dev.cmdline}",
            f"reboot_command = {REBOOT_CMD.format(dir=dev.dir)}",
            "",
            "[trust]",
            f"root = {root}",
        ]
        if ca_file:
            lines.append(f"ca_file = {ca_file}")
        if device_cert:
            lines += [f"device_cert = {device_cert}", f"device_key = {device_key}"]
        lines += ["", "[source]"]
        lines += [f"server = {server}"] if server else [f"mirror = {m}" for m in mirrors]
        lines += ["", "[slot a]", f"device = {dev.slots['a']}",
                  "", "[slot b]", f"device = {dev.slots['b']}", "", "[bootloader]",
                  f"backend = {backend}"]
        if backend == "uboot":
            lines.append(f"fw_env_config = {dev.env.agent_config}")
        else:
            lines.append(f"state_file = {dev.filestate.path}")
        lines += ["", "[hooks]", f"health_check = {hook}", "timeout = 30", ""]
        dev.config.write_text("\n".join(lines) + extra_ini)
        return dev

    # -- slots

    def write_slot(self, slot, image):
        with open(self.slots[slot], "r+b") as f:
            f.write(image)

    def slot_image(self, slot, length=None):
        with open(self.slots[slot], "rb") as f:
            return f.read() if length is None else f.read(length)

    def slot_sha256(self, slot, length):
        """SHA-256 of the slot's first length bytes, read in blocks (a
        bench's slot is gigabytes)."""
        h = hashlib.sha256()
        with open(self.slots[slot], "rb") as f:
            while length > 0:
                block = f.read(min(length, 1 << 20))
                if not block:
                    break
                h.update(block)
                length -= len(block)
        return h.hexdigest()

    def slot_fields(self, slot):
        return image_fields(self.slot_image(slot, 128))

    # -- the bootloader

    def boot_state(self):
        """(slot, trial, attempts, limit) as the bootloader sees it."""
        if self.env is not None:
            v, _ = self.env.read()
            up = v.get("upgrade_available", "0") == "1"
            return (v.get("otachain_slot"), up, int(v.get("bootcount", "0") or 0),
                    int(v.get("bootlimit", "0") or 0))
        v = self.filestate.read()
        return (v["slot"], v.get("trial") == "1", int(v.get("attempts", "0")),
                int(v.get("limit", "0")))

    def _bootloader(self):
        """Runs the bootloader's rules once; returns the slot it boots."""
        if self.env is not None:
            vals, default_used = self.env.read()
            upgrade = vals.get("upgrade_available", "0") == "1"
            bootcount = (int(vals.get("bootcount", "0") or 0) if upgrade else 0) + 1
            if upgrade:
                self.env.set(bootcount=bootcount)  # bootcount_store: saved only on trial
            bootlimit = int(vals.get("bootlimit", "0") or 0)
            slot = vals.get("otachain_slot", "a")
            if bootlimit and bootcount > bootlimit:
                # altbootcmd: otachain_fallback, then bootcmd
                slot = "b" if slot == "a" else "a"
                self.env.set(otachain_slot=slot, upgrade_available=0, bootcount=0)
            return slot, default_used
        vals = self.filestate.read()
        slot = vals["slot"]
        if vals.get("trial") == "1":
            attempts = int(vals.get("attempts", "0")) + 1
            vals["attempts"] = str(attempts)
            if attempts > int(vals.get("limit", "3")):
                slot = "b" if slot == "a" else "a"
                vals.update(slot=slot, trial="0", attempts="0")
            self.filestate.write(vals)
        return slot, False

    # -- power

    def power_on(self, env=None, check_agent=True):
        """One boot: the bootloader's rules, the kernel, the agent (run --once)."""
        slot, default_used = self._bootloader()
        fields = self.slot_fields(slot)
        b = Boot(slot=slot, booted=fields.get("boot") == "ok")
        if self.image_len:
            b.image_sha256 = self.slot_sha256(slot, self.image_len)
        if default_used:
            b.log.append("bootloader: bad CRC, using default environment")
        if not b.booted:
            b.log.append(f"slot {slot}: kernel did not start")
            self.boots.append(b)
            return b
        self.cmdline.write_text(f"console=ttyS0 root=/dev/sim{slot} ro otachain.slot={slot}\n")
        reboots = self.dir / "reboots"
        before = reboots.read_text().count("reboot") if reboots.exists() else 0
        p = self.agent("run", "--once", env=env, check=False)
        b.agent_rc, b.stdout, b.stderr = p.returncode, p.stdout, p.stderr
        after = reboots.read_text().count("reboot") if reboots.exists() else 0
        b.rebooting = after > before
        self.boots.append(b)
        if check_agent:
            assert "ERROR: AddressSanitizer" not in p.stderr, p.stderr
            assert "runtime error" not in p.stderr, p.stderr
        return b

    def boot_until_idle(self, max_boots=10, env=None, check_agent=True):
        """Powers on, and again after every reboot the agent asked for or
        every kernel that did not start, until the agent runs without
        asking for a reboot. Returns the boots of this call."""
        start = len(self.boots)
        for _ in range(max_boots):
            b = self.power_on(env=env, check_agent=check_agent)
            if b.booted and not b.rebooting:
                return self.boots[start:]
        raise AssertionError(f"device did not settle in {max_boots} boots: "
                             f"{[(b.slot, b.booted, b.rebooting) for b in self.boots[start:]]}")

    # -- the agent

    def agent(self, *args, env=None, check=True, timeout=300):
        full = dict(os.environ)
        full.update(self.agent_env)
        if env:
            full.update(env)
        p = subprocess.run([str(agent_path()), "--config", str(self.config), *map(str, args)],
                           capture_output=True, text=True, env=full, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"otachain-agent {args} exited {p.returncode}:\n"
                                 f"{p.stdout}\n{p.stderr}")
        return p

    def status(self):
        import json
        return json.loads(self.agent("status", "--json").stdout)

    def running_version(self):
        """What the kernel booted last, by the image in that slot."""
        b = [b for b in self.boots if b.booted][-1]
        return self.slot_fields(b.slot).get("version")


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------ command line
# For scripts/demo: python3 tests/devsim.py create|image|boot|status ...


def _describe_boot(dev, b):
    state = dev.boot_state()
    line = f"power on: bootloader boots slot {b.slot}"
    if not b.booted:
        line += f": kernel does not start (attempt {state[2]} of {state[3]} of this trial)"
    for msg in b.log:
        if not msg.startswith("slot "):
            line += f" [{msg}]"
    print(line)
    for ln in b.stderr.splitlines():
        print("    " + ln)
    if b.rebooting:
        print("    (reboot)")


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(prog="devsim", description="simulated A/B device (tests)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("dir")
    c.add_argument("--backend", default="uboot", choices=["uboot", "file"])
    c.add_argument("--mirror", action="append")
    c.add_argument("--server", help="the update server's URL (instead of mirrors)")
    c.add_argument("--device-cert")
    c.add_argument("--device-key")
    c.add_argument("--root", required=True)
    c.add_argument("--factory", required=True, help="factory image file")
    c.add_argument("--product", default="sim")
    c.add_argument("--hardware", default="board-a")
    c.add_argument("--ca-file")
    i = sub.add_parser("image", help="write a simulator firmware image")
    i.add_argument("out")
    i.add_argument("--version", required=True)
    i.add_argument("--size", type=int, default=600_000)
    i.add_argument("--base", help="an earlier image to edit (small changes)")
    i.add_argument("--health", default="ok")
    i.add_argument("--boot", default="ok")
    b = sub.add_parser("boot")
    b.add_argument("dir")
    b.add_argument("--backend", default="uboot", choices=["uboot", "file"])
    s = sub.add_parser("status")
    s.add_argument("dir")
    s.add_argument("--backend", default="uboot", choices=["uboot", "file"])
    a = ap.parse_args(argv)
    if a.cmd == "image":
        base = Path(a.base).read_bytes() if a.base else None
        edits = [(5000, 200), (len(base) // 2, 300)] if base else ()
        Path(a.out).write_bytes(fw(a.version, size=a.size, base=base, edits=edits,
                                   health=a.health, boot=a.boot))
        return 0
    if a.cmd == "create":
        if bool(a.mirror) == bool(a.server):
            ap.error("create: --mirror (repeatable) or --server")
        absolute = {k: str(Path(v).resolve()) if v else None
                    for k, v in (("ca_file", a.ca_file), ("device_cert", a.device_cert),
                                 ("device_key", a.device_key))}
        Device.create(a.dir, a.backend, a.mirror, str(Path(a.root).resolve()),
                      Path(a.factory).read_bytes(), product=a.product, hardware=a.hardware,
                      server=a.server, **absolute)
        return 0
    dev = Device(a.dir, a.backend)
    if a.cmd == "status":
        print(dev.agent("status").stdout, end="")
        return 0
    for _ in range(10):
        boot = dev.power_on()
        _describe_boot(dev, boot)
        if boot.booted and not boot.rebooting:
            return 0 if boot.agent_rc == 0 else 1
    return 1


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
