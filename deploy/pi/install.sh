#!/usr/bin/env bash
# Install the envnet edge agent on Raspberry Pi OS bookworm or later: envnet needs Python
# >= 3.11. Bullseye ships Python 3.9, so the installer refuses it (before changing anything).
#
#   sudo deploy/pi/install.sh [--source DIR|WHEEL] [--config node.toml] [--ca-file ca.crt]
#                             [--extras edge] [--disable-bt] [--no-start]
#                             [--steps boot,user,venv,config,service] [--root DIR] [--dry-run]
#
# Steps, each safe to run again (it changes only what is not yet as wanted):
#   boot     enable the UART (enable_uart=1) and I2C (dtparam=i2c_arm=on, i2c-dev module),
#            remove the serial console from cmdline.txt so the UART is free for a sensor;
#            /boot/firmware (bookworm) or /boot (older images). This is what
#            `raspi-config nonint do_serial_hw 0; do_serial_cons 1; do_i2c 0` does, as plain
#            edits that also work on a mounted SD card image (--root). --disable-bt gives the
#            PL011 UART to GPIO 14/15 on a Pi 3/4/Zero W (dtoverlay=disable-bt).
#   user     a system user `envnet` in the dialout (serial) and i2c groups;
#   venv     /opt/envnet/venv with `pip install 'envnet[edge]'` from --source, a source tree
#            (default: the tree this script is in) or a wheel;
#   config   /etc/envnet/node.toml from --config or the example, never over an existing one,
#            root:envnet 0640 (it holds the broker password); --ca-file to /etc/envnet/ca.crt;
#   service  /etc/systemd/system/envnet-edge.service (deploy/pi/envnet-edge.service), enabled;
#            (re)started unless the boot settings changed (then: reboot) or --no-start.
#
# --root DIR works on another root file system (a mounted SD card image); the venv step then
# does nothing (its interpreter must run on the Pi) and systemd is not started. The Python
# version is then read from the image's /usr/bin/python3 link (python3.11 on bookworm).
# --dry-run prints what would change and changes nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/install-common.sh
. "$here/../lib/install-common.sh"

config_src=""
ca_src=""
extras=edge
disable_bt=0
steps="boot,user,venv,config,service"
unit_name=envnet-edge.service
reboot_needed=0

# The options only this installer takes (parse_options: the common ones).
pi_option() {
  taken=2
  case "$1" in
    --config) config_src=${2:?--config needs a file} ;;
    --ca-file) ca_src=${2:?--ca-file needs a file} ;;
    --extras) extras=${2:?--extras needs a list} ;;
    --disable-bt) disable_bt=1; taken=1 ;;
    *) taken=0 ;;
  esac
}
parse_options pi_option "$@"

# -- python: envnet needs >= 3.11 ---------------------------------------------------------

min_python=3.11

# The target's Python as MAJOR.MINOR, or nothing if it cannot be told. Under --root the
# image's interpreter may not run here (another CPU): its /usr/bin/python3 link names it.
target_python() {
  local link
  if on_host; then
    python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true
  else
    link=$(readlink "$(r /usr/bin/python3)" 2>/dev/null || true)
    if [[ $link =~ python([0-9]+\.[0-9]+)$ ]]; then
      printf '%s' "${BASH_REMATCH[1]}"
    fi
  fi
}

# MAJOR.MINOR $1 >= $2
version_at_least() {
  local a=${1%%.*} b=${1#*.} c=${2%%.*} d=${2#*.}
  ((a > c || (a == c && b >= d)))
}

python_check() {
  local version where
  version=$(target_python)
  where=$(if on_host; then printf 'this system'; else printf '%s' "$root"; fi)
  if [ -z "$version" ]; then
    if on_host; then
      echo "install.sh: no python3 on this system: envnet needs Python >= $min_python" >&2
      exit 1
    fi
    say "note: cannot tell the Python of $(r /usr/bin/python3): envnet needs >= $min_python"
  elif version_at_least "$version" "$min_python"; then
    same "Python $version (envnet needs >= $min_python)"
  else
    echo "install.sh: envnet needs Python >= $min_python, but $where has Python $version" \
      "(Raspberry Pi OS bullseye ships 3.9): install Raspberry Pi OS bookworm or later." \
      "Nothing was changed." >&2
    exit 1
  fi
}

# -- boot: UART and I2C ------------------------------------------------------------------

boot_dir() {
  if [ -f "$(r /boot/firmware/config.txt)" ]; then
    printf '/boot/firmware'
  elif [ -f "$(r /boot/config.txt)" ]; then
    printf '/boot'
  fi
}

# Set KEY=VALUE in config.txt (KEY may itself hold '=', e.g. dtparam=i2c_arm). An active line
# with another value is rewritten; otherwise the setting is appended under [all], so that a
# conditional section such as [pi4] at the end of the file does not capture it.
append_config() {
  local file=$1 line=$2 last
  last=$(grep -E '^\[' "$file" | tail -n 1 || true)
  {
    printf '\n# envnet (deploy/pi/install.sh)\n'
    if [ -n "$last" ] && [ "$last" != "[all]" ]; then
      printf '[all]\n'
    fi
    printf '%s\n' "$line"
  } >>"$file"
}

rewrite_config() {
  local file=$1 key=$2 value=$3
  sed -i -E "s/^[[:space:]]*${key}=.*/${key}=${value}/" "$file"
}

config_set() {
  local file=$1 key=$2 value=$3 current
  current=$(grep -E "^[[:space:]]*${key}=" "$file" | tail -n 1 | sed -E "s/^[[:space:]]*${key}=//" || true)
  if [ "$current" = "$value" ]; then
    same "$file: ${key}=${value}"
  elif [ -n "$current" ]; then
    change "$file: ${key}=${current} -> ${key}=${value}" rewrite_config "$file" "$key" "$value"
    reboot_needed=1
  else
    change "$file: add ${key}=${value}" append_config "$file" "${key}=${value}"
    reboot_needed=1
  fi
}

config_line() {
  local file=$1 line=$2
  if grep -qxF "$line" "$file"; then
    same "$file: $line"
  else
    change "$file: add $line" append_config "$file" "$line"
    reboot_needed=1
  fi
}

# The kernel's serial console would talk on, and read from, the sensor's UART.
console_pattern='console=(serial0|serial1|ttyAMA0|ttyS0)(,[0-9]+)?'

strip_console() {
  local file=$1
  sed -i -E "s/(^| )${console_pattern}( |$)/\1/g; s/  +/ /g; s/ $//" "$file"
}

boot_step() {
  local dir config cmdline modules
  dir=$(boot_dir)
  if [ -z "$dir" ]; then
    say "skip: no config.txt in $(r /boot/firmware) or $(r /boot): not Raspberry Pi OS?"
    return
  fi
  config=$(r "$dir/config.txt")
  cmdline=$(r "$dir/cmdline.txt")
  config_set "$config" enable_uart 1
  config_set "$config" dtparam=i2c_arm on
  if [ "$disable_bt" -eq 1 ]; then
    config_line "$config" dtoverlay=disable-bt
  fi
  if [ -f "$cmdline" ] && grep -qE "(^| )${console_pattern}( |$)" "$cmdline"; then
    change "$cmdline: remove the serial console" strip_console "$cmdline"
    reboot_needed=1
  else
    same "$cmdline: no serial console"
  fi
  modules=$(r /etc/modules)
  if [ -f "$modules" ] && grep -qx 'i2c-dev' "$modules"; then
    same "$modules: i2c-dev"
  else
    change "$modules: add i2c-dev" sh -c "printf 'i2c-dev\n' >>'$modules'"
    reboot_needed=1
  fi
}

# -- user ---------------------------------------------------------------------------------

has_entry() { grep -q "^$2:" "$(r "/etc/$1")" 2>/dev/null; }
in_group() { grep -qE "^$1:[^:]*:[^:]*:(.*,)?envnet(,|$)" "$(r /etc/group)" 2>/dev/null; }
prefix_opt() { if on_host; then :; else printf -- '--prefix\n%s\n' "$root"; fi; }

user_step() {
  local -a p
  mapfile -t p < <(prefix_opt)
  if has_entry group i2c; then
    same "group i2c exists"
  else
    # Raspberry Pi OS has it, with a udev rule giving it /dev/i2c-*; plain Debian does not.
    change "create group i2c" groupadd "${p[@]}" --system i2c
  fi
  if has_entry passwd envnet; then
    same "user envnet exists"
  else
    change "create system user envnet" useradd "${p[@]}" --system --user-group \
      --home-dir /var/lib/envnet --no-create-home --shell /usr/sbin/nologin envnet
  fi
  local group
  for group in dialout i2c; do
    if in_group "$group"; then
      same "envnet is in $group"
    else
      change "add envnet to $group" usermod "${p[@]}" -a -G "$group" envnet
    fi
  done
}

# -- venv ---------------------------------------------------------------------------------

venv_step() {
  local spec venv=$prefix/venv
  if ! on_host; then
    say "skip: venv under --root (run this installer on the Pi to create $venv)"
    return
  fi
  spec=$(package_spec "$extras")
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    change "apt-get install python3-venv" apt-get install -y -q python3-venv
  fi
  if [ -x "$venv/bin/python" ]; then
    same "$venv exists"
  else
    change "create $venv" python3 -m venv "$venv"
  fi
  # pip itself decides what is up to date; on Raspberry Pi OS it also finds piwheels.
  change "pip install $spec into $venv" "$venv/bin/pip" install -q --upgrade "$spec"
}

# -- config -------------------------------------------------------------------------------

install_file() { install -m "$1" -o 0 -g "$2" "$3" "$4"; }

config_step() {
  local etc node src group
  etc=$(r /etc/envnet)
  node="$etc/node.toml"
  src=${config_src:-$here/node.toml}
  group=$(gid_of envnet)
  make_dir 0750 "$group" "$etc"
  if [ -f "$node" ]; then
    same "$node kept (not overwritten)"
  else
    [ -f "$src" ] || { echo "install.sh: no config $src" >&2; return 1; }
    change "install $node from $src (root:gid $group 0640)" \
      install_file 0640 "$group" "$src" "$node"
    say "note: edit $node: node id, broker URL and password, sensors"
  fi
  if [ -n "$ca_src" ]; then
    if [ -f "$etc/ca.crt" ] && cmp -s "$ca_src" "$etc/ca.crt"; then
      same "$etc/ca.crt"
    else
      change "install $etc/ca.crt from $ca_src" install_file 0644 0 "$ca_src" "$etc/ca.crt"
    fi
  fi
}

# -- service ------------------------------------------------------------------------------

enable_by_link() { mkdir -p "$(dirname "$1")" && ln -s "/etc/systemd/system/$unit_name" "$1"; }

service_step() {
  install_unit "$here/$unit_name"
  local wants_link
  wants_link=$(r "/etc/systemd/system/multi-user.target.wants/$unit_name")
  if [ -L "$wants_link" ]; then
    same "$unit_name enabled"
  elif on_host || command -v systemctl >/dev/null 2>&1; then
    local -a sys=(systemctl)
    on_host || sys+=("--root=$root")
    change "enable $unit_name" "${sys[@]}" --quiet enable "$unit_name"
  else
    # What `systemctl enable` does for WantedBy=multi-user.target, on an image without it.
    change "enable $unit_name" enable_by_link "$wants_link"
  fi
  if [ "$reboot_needed" -eq 1 ]; then
    say "note: UART/I2C settings changed: reboot; $unit_name starts at boot"
  elif [ "$start" -eq 1 ] && systemd_running; then
    change "restart $unit_name" systemctl restart "$unit_name"
  else
    say "note: $unit_name not started now (--no-start, --root, or no systemd)"
  fi
}

# -- main ---------------------------------------------------------------------------------

say "envnet edge install: root ${root:-/}$([ "$dry_run" -eq 1 ] && printf ', dry run')"
python_check
for step in boot user venv config service; do
  if wants "$step"; then
    "${step}_step"
  fi
done
