# otaab U-Boot boot script: A/B slot selection (the same variables and rules as
# grub/ota-select.cfg) and the boot of the chosen slot. Build it into boot.scr
# with uboot/build-boot-scr.sh; distro boot runs boot.scr from the boot partition.
#
# The A/B state lives in two env files on the FAT boot partition, each in
# U-Boot's plain format (CRC32 + NUL-separated name=value, 0x4000 bytes), the
# same format libubootenv's fw_printenv/fw_setenv use for a one-copy config:
#   otaab.env   the primary copy
#   otaab.bak   the second copy, read when otaab.env is missing or its CRC fails
# Both the agent and this script write otaab.env first and otaab.bak second, so
# a power cut during one write leaves the other copy valid.
#
# Board settings come from otaab-device.txt on the boot partition (plain
# name=value lines, imported with env import -t), with the defaults below.
# Every failure after the try counter is saved ends in a reset, never a prompt.

# Where the boot partition is: distro boot sets devtype, devnum, distro_bootpart.
if test -z "${devtype}"; then setenv devtype mmc; fi
if test -z "${devnum}"; then setenv devnum 0; fi
if test -z "${distro_bootpart}"; then setenv distro_bootpart 1; fi
setenv ota_dev "${devtype} ${devnum}:${distro_bootpart}"
# Scratch memory for the env files: the PXE file area is free while booting a script.
if test -z "${ota_envaddr}"; then setenv ota_envaddr ${pxefile_addr_r}; fi
if test -z "${ota_envaddr}"; then setenv ota_envaddr ${kernel_addr_r}; fi

# Defaults, overridden by otaab-device.txt: slot A on partition 2, B on 3, each
# carrying its own kernel and initrd, so an update replaces both.
setenv ota_part_A 2
setenv ota_part_B 3
setenv ota_root_prefix /dev/mmcblk0p
setenv ota_kernel /boot/Image
setenv ota_initrd /boot/initrd.img
setenv ota_cmdline "ro rootwait panic=5"
setenv ota_fdt ${fdtcontroladdr}
if load ${ota_dev} ${ota_envaddr} otaab-device.txt; then
  env import -t ${ota_envaddr} ${filesize}
fi
# ota_fdt=firmware: the device tree the firmware handed over (Raspberry Pi).
if test "${ota_fdt}" = firmware; then setenv ota_fdt ${fdt_addr}; fi

# Values set before (an old env, a console) must not stand in for missing ones.
setenv ORDER
setenv A_OK
setenv B_OK
setenv A_TRY
setenv B_TRY
setenv MAX_TRIES
# Only the six names are imported: nothing in the file can change bootcmd & co.
setenv ota_envsrc none
if load ${ota_dev} ${ota_envaddr} otaab.env; then
  if env import -c ${ota_envaddr} ${filesize} ORDER A_OK B_OK A_TRY B_TRY MAX_TRIES; then
    setenv ota_envsrc otaab.env
  fi
fi
if test "${ota_envsrc}" = none; then
  if load ${ota_dev} ${ota_envaddr} otaab.bak; then
    if env import -c ${ota_envaddr} ${filesize} ORDER A_OK B_OK A_TRY B_TRY MAX_TRIES; then
      setenv ota_envsrc otaab.bak
    fi
  fi
fi
echo "ota: env from ${ota_envsrc}: ORDER=${ORDER} A_OK=${A_OK} B_OK=${B_OK} A_TRY=${A_TRY} B_TRY=${B_TRY} MAX_TRIES=${MAX_TRIES}"

# MAX_TRIES: 1 to 5; anything else is the design default 3. Counting is done
# with lists, not setexpr: some U-Boot builds lack it, and it works in hex.
setenv ota_max 3
for n in 1 2 3 4 5; do
  if test "${MAX_TRIES}" = "${n}"; then setenv ota_max ${n}; fi
done
# The try counts that still leave a try: anything else means exhausted.
if test "${ota_max}" = 1; then setenv ota_left "0"
elif test "${ota_max}" = 2; then setenv ota_left "0 1"
elif test "${ota_max}" = 3; then setenv ota_left "0 1 2"
elif test "${ota_max}" = 4; then setenv ota_left "0 1 2 3"
else setenv ota_left "0 1 2 3 4"
fi

# ORDER: known names in the given order, then any slot left out.
setenv ota_order
setenv ota_seen_A 0
setenv ota_seen_B 0
for s in ${ORDER} A B; do
  if test "${s}" = A -a "${ota_seen_A}" = 0; then
    setenv ota_seen_A 1
    setenv ota_order "${ota_order} A"
  elif test "${s}" = B -a "${ota_seen_B}" = 0; then
    setenv ota_seen_B 1
    setenv ota_order "${ota_order} B"
  fi
done
setenv ota_first
for s in ${ota_order}; do
  if test -z "${ota_first}"; then setenv ota_first ${s}; fi
done

# ota_read_slot: ota_ok and ota_count of slot ${ota_s}. A missing OK is
# bootable (the agent disarms with X_OK=0); a missing counter is 0.
setenv ota_read_slot 'if test "${ota_s}" = A; then setenv ota_ok "${A_OK}"; setenv ota_count "${A_TRY}"; else setenv ota_ok "${B_OK}"; setenv ota_count "${B_TRY}"; fi; if test -z "${ota_ok}"; then setenv ota_ok 1; fi; if test -z "${ota_count}"; then setenv ota_count 0; fi'
# ota_pick: ota_slot = first slot in ota_order that is OK with a try left.
setenv ota_pick 'setenv ota_slot; for s in ${ota_order}; do if test -z "${ota_slot}"; then setenv ota_s ${s}; run ota_read_slot; if test "${ota_ok}" = 1; then for n in ${ota_left}; do if test "${ota_count}" = "${n}"; then setenv ota_slot ${ota_s}; fi; done; fi; fi; done'

setenv ota_reset 0
run ota_pick
if test -z "${ota_slot}"; then
  # Never brick: every slot gets its tries back; an OK slot is preferred.
  echo "ota: no slot is OK with tries left, resetting A_TRY and B_TRY"
  setenv ota_reset 1
  setenv A_TRY 0
  setenv B_TRY 0
  run ota_pick
  if test -z "${ota_slot}"; then setenv ota_slot ${ota_first}; fi
fi

setenv ota_s ${ota_slot}
run ota_read_slot
if test "${ota_count}" = 0; then setenv ota_attempt 1
elif test "${ota_count}" = 1; then setenv ota_attempt 2
elif test "${ota_count}" = 2; then setenv ota_attempt 3
elif test "${ota_count}" = 3; then setenv ota_attempt 4
else setenv ota_attempt 5
fi
if test "${ota_slot}" = A; then
  setenv A_TRY ${ota_attempt}
  setenv ota_part ${ota_part_A}
else
  setenv B_TRY ${ota_attempt}
  setenv ota_part ${ota_part_B}
fi

# Save before any kernel runs, so every failure from here on counts: primary
# first, then the second copy. Boot even when saving fails.
setenv ota_vars
for v in ORDER A_OK B_OK A_TRY B_TRY MAX_TRIES; do
  if env exists ${v}; then setenv ota_vars "${ota_vars} ${v}"; fi
done
setenv ota_saved 0
if env export -c -s 0x4000 ${ota_envaddr} ${ota_vars}; then
  if fatwrite ${ota_dev} ${ota_envaddr} otaab.env 0x4000; then
    if fatwrite ${ota_dev} ${ota_envaddr} otaab.bak 0x4000; then setenv ota_saved 1; fi
  fi
fi
if test "${ota_saved}" = 0; then echo "ota: could not save the try counter, booting anyway"; fi
echo "ota: slot ${ota_slot}, attempt ${ota_attempt} of ${ota_max}"

# Boot only with kernel and initrd loaded (the initrd last: booti takes its size).
if load ${devtype} ${devnum}:${ota_part} ${kernel_addr_r} ${ota_kernel}; then
  if load ${devtype} ${devnum}:${ota_part} ${ramdisk_addr_r} ${ota_initrd}; then
    setenv bootargs "${ota_cmdline} root=${ota_root_prefix}${ota_part} ota.slot=${ota_slot}"
    booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${ota_fdt}
  fi
fi
# Reached only when something failed to load: reset, so the counter advances.
echo "ota: slot ${ota_slot} did not load, resetting"
sleep 1
reset
