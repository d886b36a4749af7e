#!/bin/sh
# Builds boot.scr from uboot/boot.cmd with mkimage (Debian package u-boot-tools).
# Usage: uboot/build-boot-scr.sh [ARCH [OUT]]   ARCH: arm64 (default), arm, x86 ...
set -eu
here=$(dirname "$0")
arch=${1:-arm64}
out=${2:-boot.scr}
mkimage -A "$arch" -O linux -T script -C none -n "otaab A/B boot script" -d "$here/boot.cmd" "$out"
