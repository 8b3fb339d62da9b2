# shellcheck shell=bash
# What deploy/pi/install.sh and deploy/central/install.sh share: their common options, the
# --root and root checks, and the actions that print "would:" in a dry run, "done:" after
# doing it, and "ok:" for what is already as wanted. Sourced, never run; the installer sets
# `repo`, its `steps` and its own options' defaults.

# The common options' defaults: the host itself, for real, this source tree, start services.
root=/
dry_run=0
source_arg=""
start=1
prefix=/opt/envnet

# The installer's header comment, up to `set -euo pipefail`, is its usage.
# ${BASH_SOURCE[-1]}: the installer that sourced this file.
usage() {
  sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[-1]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# parse_options OWN ARGS...: the command line, then check_root. OWN is the installer's
# function for its own options: like parse_common_option, it sets `taken` (0: not its option).
parse_options() {
  local own=$1
  shift
  while [ $# -gt 0 ]; do
    parse_common_option "$@"
    if [ "$taken" -eq 0 ]; then
      "$own" "$@"
    fi
    if [ "$taken" -eq 0 ]; then
      echo "install.sh: unknown argument $1" >&2
      usage
    fi
    shift "$taken"
  done
  check_root
}

# parse_common_option ARGS...: take an option both installers accept. Sets `taken` to the
# number of words it used, or 0 when $1 is not one of them.
parse_common_option() {
  taken=2
  case "$1" in
    --root) root=${2:?--root needs a directory} ;;
    --source) source_arg=${2:?--source needs a directory or a wheel} ;;
    --steps) steps=${2:?--steps needs a list} ;;
    --dry-run) dry_run=1; taken=1 ;;
    --no-start) start=0; taken=1 ;;
    -h|--help) usage ;;
    *) taken=0 ;;
  esac
}

# The target root without its trailing slash ("" is the host itself), which must exist; and
# root privileges unless this is a dry run.
check_root() {
  root=${root%/}
  if [ -n "$root" ] && [ ! -d "$root" ]; then
    echo "install.sh: --root $root is not a directory" >&2
    exit 2
  fi
  if [ "$dry_run" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo), or with --dry-run" >&2
    exit 1
  fi
}

# -- output and actions ------------------------------------------------------------------

say() { printf '%s\n' "$*"; }
# Whether this run has changed anything (the central installer restarts services then).
changed=0
# A change: printed as "would: ..." in a dry run, "done: ..." after doing it.
change() {
  local what=$1
  shift
  if [ "$dry_run" -eq 1 ]; then
    say "would: $what"
  else
    "$@"
    changed=1
    say "done: $what"
  fi
}
same() { say "ok: $*"; }
# A path inside the target root.
r() { printf '%s%s' "$root" "$1"; }
on_host() { [ -z "$root" ]; }
wants() { case ",$steps," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
systemd_running() { on_host && [ -d /run/systemd/system ]; }

# A group's id in the target root's /etc/group (numeric: under --root the host's names do
# not apply), or 0 (root) when the group does not exist (yet).
gid_of() {
  local gid
  gid=$(awk -F: -v g="$1" '$1 == g { print $3 }' "$(r /etc/group)" 2>/dev/null || true)
  printf '%s' "${gid:-0}"
}

# make_dir MODE GROUP DIR: a directory owned by root and GROUP.
make_dir() {
  local mode=$1 group=$2 dir=$3
  if [ -d "$dir" ]; then
    same "$dir exists"
  else
    change "create $dir (root:gid $group $mode)" install -d -m "$mode" -o 0 -g "$group" "$dir"
  fi
}

# install_unit SRC: the systemd unit SRC into /etc/systemd/system, kept equal to the
# shipped one; systemd re-reads its units when it runs here.
install_unit() {
  local src=$1 unit
  unit=$(r "/etc/systemd/system/$(basename "$src")")
  if [ -f "$unit" ] && cmp -s "$src" "$unit"; then
    same "$unit is current"
  else
    change "install $unit" install -D -m 0644 "$src" "$unit"
    if systemd_running; then
      change "systemctl daemon-reload" systemctl daemon-reload
    fi
  fi
}

# package_spec EXTRAS: what pip installs, from --source (a source tree or a wheel) or else
# this source tree, with the extras.
package_spec() {
  local src=${source_arg:-$repo}
  if [ -d "$src" ] && [ -f "$src/pyproject.toml" ]; then
    printf '%s[%s]' "$(cd "$src" && pwd)" "$1"
  elif [ -f "$src" ] && [[ $src == *.whl ]]; then
    printf '%s[%s]' "$(cd "$(dirname "$src")" && pwd)/$(basename "$src")" "$1"
  else
    echo "install.sh: --source must be an envnet source tree or a .whl, got $src" >&2
    return 1
  fi
}
