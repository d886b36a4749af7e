#!/usr/bin/env bash
# Checks the system tools that parts of otaab need (the table is system-tools.txt next to this
# file) and, as root on Debian, installs every missing one in one `apt-get install`.
#
#   scripts/setup/system-tools.sh PART...     PART: build demo tests boot bench reliability package
#                                             device
#                                             (or "all")
#
# Not root, not Debian (no /etc/debian_version or no apt-get), or OTAAB_NO_APT=1: nothing is
# installed; one message names every missing tool, its package and the one command that installs
# them, and the exit status is 1. Nothing is written anywhere. Exit 0 when everything is there,
# 2 on a usage error. Only shell built-ins are used, so it runs on a bare PATH.
set -uo pipefail

self=${BASH_SOURCE[0]}
case "$self" in */*) here=${self%/*} ;; *) here=. ;; esac
table="$here/system-tools.txt"
prog="otaab setup"

if [ "$#" -eq 0 ]; then
  echo "usage: $0 PART... (build demo tests boot bench reliability package postgres device all)" >&2
  exit 2
fi

known=" build demo tests boot bench reliability package postgres device all "
for part in "$@"; do
  case "$known" in
    *" $part "*) ;;
    *) echo "$prog: unknown part '$part' (known:$known)" >&2; exit 2 ;;
  esac
done

describe() {
  case "$1" in
    build) echo "npm ci" ;;
    demo) echo "npm run demo" ;;
    tests) echo "npm test" ;;
    boot) echo "npm run test:boot" ;;
    bench) echo "npm run bench" ;;
    reliability) echo "npm run test:reliability" ;;
    package) echo "npm run package" ;;
    postgres) echo "npm run test:pg, npm run test:scale" ;;
    device) echo "npm run test:device" ;;
    all) echo "every part of otaab" ;;
  esac
}

wanted() { # wanted PARTS-COLUMN → true if one of the requested parts is in it
  local p
  for p in "${requested[@]}"; do
    [ "$p" = all ] && return 0
    case ",$1," in *",$p,"*) return 0 ;; esac
  done
  return 1
}

present() { # present TOOL → true if the command or file exists
  local t=$1 d f
  if [ "${t:0:1}" = / ]; then
    for f in $t; do [ -e "$f" ] && return 0; done
    return 1
  fi
  local IFS=:
  for d in ${PATH:-} /usr/sbin /sbin; do
    [ -n "$d" ] && [ -x "$d/$t" ] && [ ! -d "$d/$t" ] && return 0
  done
  return 1
}

missing_tools=()
missing_packages=()
scan() {
  missing_tools=()
  missing_packages=()
  local parts tool package why
  while read -r parts tool package why; do
    case "$parts" in '' | '#'*) continue ;; esac
    wanted "$parts" || continue
    present "$tool" && continue
    case " ${missing_tools[*]-} " in *" $tool:"*) continue ;; esac
    missing_tools+=("$tool:$package")
    case " ${missing_packages[*]-} " in
      *" $package "*) ;;
      *) missing_packages+=("$package") ;;
    esac
  done <"$table"
}

requested=("$@")
what=""
for part in "$@"; do what="${what:+$what, }$(describe "$part")"; done

scan
[ "${#missing_tools[@]}" -eq 0 ] && exit 0

install_cmd="apt-get install -y --no-install-recommends ${missing_packages[*]}"
reason=""
if [ "${OTAAB_NO_APT:-}" = 1 ]; then
  reason="OTAAB_NO_APT=1 is set"
elif [ "$EUID" -ne 0 ]; then
  reason="not running as root"
  install_cmd="sudo $install_cmd"
elif [ ! -e /etc/debian_version ] || ! present apt-get; then
  reason="this is not Debian (no apt-get); the names are Debian 12's packages"
fi

if [ -z "$reason" ]; then
  echo "$prog: installing the Debian packages $what needs: ${missing_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Fresh images ship without package lists; an update is cheap next to the install.
  apt-get -o DPkg::Lock::Timeout=900 update -qq || { echo "$prog: apt-get update failed (exit $?)" >&2; exit 1; }
  apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing_packages[@]}" ||
    { echo "$prog: apt-get install ${missing_packages[*]} failed" >&2; exit 1; }
  scan
  [ "${#missing_tools[@]}" -eq 0 ] && exit 0
  reason="still missing after apt-get install"
fi

{
  echo "$prog: $what needs ${#missing_tools[@]} system tool(s) that are missing ($reason):"
  for entry in "${missing_tools[@]}"; do
    printf '  %-40s from the Debian package %s\n' "${entry%%:*}" "${entry##*:}"
  done
  echo "Install them with:"
  echo "  $install_cmd"
} >&2
exit 1
