# otachain A/B boot script for U-Boot (docs/agent.md, "U-Boot").
#
# Build:  mkimage -A arm64 -O linux -T script -C none -d boot.cmd boot.scr
#
# Environment (made with mkenvimage from env.txt beside this file; the
# agent writes it through libubootenv, redundant copies recommended):
#   otachain_slot      a or b: the slot to boot
#   upgrade_available  1 while a new slot is on trial (set by the agent)
#   bootcount          boot attempts of this trial
#   bootlimit          attempts allowed before falling back (1..8)
#
# Boot attempts are counted only during a trial boot: on a committed
# device this script neither counts nor saves anything, so power cuts of
# a healthy device can never switch it back. During a trial each attempt
# is saved before the kernel is loaded; once more than bootlimit attempts
# were made without the agent confirming the slot, the other slot is
# booted again and the trial ends (the agent reports "fell_back").
#
# For a U-Boot built with CONFIG_BOOTCOUNT_LIMIT and CONFIG_BOOTCOUNT_ENV
# (which count the same way and run altbootcmd past bootlimit), delete the
# counting block below and set altbootcmd to "run otachain_fallback; run
# bootcmd" with otachain_fallback from env.txt.
#
# bootcount stays below 10 here, so setexpr's hexadecimal result is also
# its decimal value.

if test -z "${otachain_slot}"; then setenv otachain_slot a; fi
if test -z "${bootlimit}"; then setenv bootlimit 3; fi

if test "${upgrade_available}" = "1"; then
    if test -z "${bootcount}"; then setenv bootcount 0; fi
    setexpr bootcount ${bootcount} + 1
    if test ${bootcount} -gt ${bootlimit}; then
        echo "otachain: slot ${otachain_slot} failed ${bootlimit} trial boots: falling back"
        if test "${otachain_slot}" = "a"; then setenv otachain_slot b; else setenv otachain_slot a; fi
        setenv upgrade_available 0
        setenv bootcount 0
    fi
    saveenv
fi

# Slot a is partition 2, slot b partition 3 of the boot device.
if test "${otachain_slot}" = "a"; then setenv otachain_part 2; else setenv otachain_part 3; fi
setenv bootargs "${bootargs} root=/dev/mmcblk0p${otachain_part} rootwait ro otachain.slot=${otachain_slot}"

load mmc 0:${otachain_part} ${kernel_addr_r} /boot/Image
load mmc 0:${otachain_part} ${fdt_addr_r} /boot/${fdtfile}
booti ${kernel_addr_r} - ${fdt_addr_r}

# The kernel could not be started: reset, which counts another attempt
# during a trial (and changes nothing on a committed device).
echo "otachain: booting slot ${otachain_slot} failed"
reset
