#!/usr/bin/env bash
# Install envnet's central site on one Debian host (12 or later): mosquitto with TLS and the
# ACL, InfluxDB, Alertmanager and the aggregator as a hardened systemd unit of its own user.
#
#   sudo deploy/central/install.sh [--source DIR|WHEEL] [--tls-dir DIR] [--broker-host NAME]
#                                  [--alertmanager-config FILE]
#                                  [--steps packages,user,broker,influxdb,alertmanager,
#                                           aggregator,service]
#                                  [--no-start] [--root DIR] [--dry-run]
#
# Steps, each safe to run again (it changes only what is not yet as wanted, and never
# overwrites a file an operator may have edited: the ACL, agg.toml, fleet.toml):
#   packages      apt-get install mosquitto influxdb prometheus-alertmanager python3-venv
#   user          a system user `envnet` (home /var/lib/envnet, no login shell);
#   broker        /etc/mosquitto/conf.d/envnet.conf and envnet-tls.conf (nodes on 8883,
#                 services on 8884), /etc/mosquitto/envnet.acl, the two password files
#                 (root:mosquitto 0640), the certificates from --tls-dir (ca.crt, server.crt,
#                 server.key) into /etc/mosquitto/certs, and the aggregator's broker login
#                 (envnet-aggregator, a random password, written only to aggregator.env);
#   influxdb      enable influxdb.service (the aggregator creates its database at start);
#   alertmanager  /etc/prometheus/alertmanager.yml from deploy/alertmanager/alertmanager.yml
#                 (or --alertmanager-config), once (Debian's example is kept as .debian);
#                 enable the service;
#   aggregator    /opt/envnet/venv with envnet[aggregator]; /etc/envnet (root:envnet 0750)
#                 with agg.toml, fleet.toml (an empty inventory: enrol nodes with
#                 `envnet fleet enrol`), node-template.toml and aggregator.env (0640);
#   service       /etc/systemd/system/envnet-aggregator.service (deploy/systemd/), enabled;
#                 the services restarted if this run changed anything, else started if
#                 down (unless --no-start).
#
# --root DIR works on another root file system (tests, an image): packages and the venv are
# skipped, nothing is started. --dry-run prints what would change and changes nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/install-common.sh
. "$here/../lib/install-common.sh"

tls_dir=""
broker_host=localhost
steps="packages,user,broker,influxdb,alertmanager,aggregator,service"
unit_name=envnet-aggregator.service
alertmanager_src=$repo/deploy/alertmanager/alertmanager.yml

# The options only this installer takes (parse_options: the common ones).
central_option() {
  taken=2
  case "$1" in
    --tls-dir) tls_dir=${2:?--tls-dir needs a directory} ;;
    --broker-host) broker_host=${2:?--broker-host needs a name} ;;
    --alertmanager-config) alertmanager_src=${2:?--alertmanager-config needs a file} ;;
    *) taken=0 ;;
  esac
}
parse_options central_option "$@"

# install_new MODE GROUP SRC DEST: a file that is the operator's once installed.
install_new() {
  local mode=$1 group=$2 src=$3 dest=$4
  if [ -f "$dest" ]; then
    same "$dest kept (not overwritten)"
  else
    change "install $dest (root:gid $group $mode)" \
      install -D -m "$mode" -o 0 -g "$group" "$src" "$dest"
  fi
}

# install_current MODE GROUP SRC DEST: a file envnet owns, kept equal to the shipped one.
install_current() {
  local mode=$1 group=$2 src=$3 dest=$4
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    same "$dest is current"
  else
    change "install $dest (root:gid $group $mode)" \
      install -D -m "$mode" -o 0 -g "$group" "$src" "$dest"
  fi
}

# enable UNIT: what `systemctl enable` does for WantedBy=multi-user.target.
enable_link() { mkdir -p "$(dirname "$1")" && ln -s "$2" "$1"; }
enable_unit() {
  local unit=$1 path=$2 link
  link=$(r "/etc/systemd/system/multi-user.target.wants/$unit")
  if [ -L "$link" ]; then
    same "$unit enabled"
  elif on_host; then
    change "enable $unit" systemctl --quiet enable "$unit"
  else
    change "enable $unit" enable_link "$link" "$path"
  fi
}

# -- steps --------------------------------------------------------------------------------

packages_step() {
  if ! on_host; then
    say "skip: packages under --root (apt-get runs on the host itself)"
    return
  fi
  local missing=() package
  for package in mosquitto influxdb prometheus-alertmanager python3-venv; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$package")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    same "packages installed"
  else
    change "apt-get install ${missing[*]}" apt-get install -y -q "${missing[@]}"
  fi
}

user_step() {
  local -a p=()
  on_host || p=(--prefix "$root")
  if grep -q '^envnet:' "$(r /etc/passwd)" 2>/dev/null; then
    same "user envnet exists"
  else
    change "create system user envnet" useradd "${p[@]}" --system --user-group \
      --home-dir /var/lib/envnet --no-create-home --shell /usr/sbin/nologin envnet
  fi
}

new_password() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

# The aggregator's broker login: hashed into the services' password file, the clear password
# only in aggregator.env (root:envnet 0640). Never printed.
aggregator_login() {
  local passwd=$1 env_file=$2 password work
  password=$(new_password)
  umask 077
  work=$(mktemp -d)
  printf 'envnet-aggregator:%s\n' "$password" >"$work/entry"
  mosquitto_passwd -U "$work/entry"
  cat "$work/entry" >>"$passwd"
  rm -rf "$work"
  install -d -m 0750 -o 0 -g "$(gid_of envnet)" "$(dirname "$env_file")"
  {
    printf '# The aggregator environment (deploy/central/install.sh): secrets live here.\n'
    printf 'ENVNET_MQTT_URL=mqtts://envnet-aggregator:%s@%s:8884\n' "$password" "$broker_host"
    printf 'ENVNET_FLEET=/etc/envnet/fleet.toml\n'
  } >"$env_file"
  chown 0:"$(gid_of envnet)" "$env_file"
  chmod 0640 "$env_file"
}

broker_step() {
  local conf_d mosq_gid passwd services acl certs name
  conf_d=$(r /etc/mosquitto/conf.d)
  mosq_gid=$(gid_of mosquitto)
  install_current 0644 0 "$repo/deploy/mosquitto/envnet.conf" "$conf_d/envnet.conf"
  install_current 0644 0 "$repo/deploy/mosquitto/envnet-tls.conf" "$conf_d/envnet-tls.conf"
  # The ACL gains a block per enrolled node (envnet fleet enrol): never overwritten.
  install_new 0644 0 "$repo/deploy/mosquitto/envnet.acl" "$(r /etc/mosquitto/envnet.acl)"
  passwd=$(r /etc/mosquitto/envnet.passwd)
  services=$(r /etc/mosquitto/envnet-services.passwd)
  for name in "$passwd" "$services"; do
    if [ -f "$name" ]; then
      same "$name exists"
    else
      change "create $name (root:gid $mosq_gid 0640)" \
        install -D -m 0640 -o 0 -g "$mosq_gid" /dev/null "$name"
    fi
  done
  if grep -q '^envnet-aggregator:' "$services" 2>/dev/null; then
    same "the aggregator's broker login exists"
  else
    command -v mosquitto_passwd >/dev/null 2>&1 || {
      echo "install.sh: mosquitto_passwd not found (Debian package mosquitto)" >&2
      exit 1
    }
    change "create the aggregator's broker login (password in /etc/envnet/aggregator.env)" \
      aggregator_login "$services" "$(r /etc/envnet/aggregator.env)"
  fi
  certs=$(r /etc/mosquitto/certs)
  if [ -n "$tls_dir" ]; then
    install_current 0644 0 "$tls_dir/ca.crt" "$certs/envnet-ca.crt"
    install_current 0644 0 "$tls_dir/server.crt" "$certs/server.crt"
    install_current 0640 "$mosq_gid" "$tls_dir/server.key" "$certs/server.key"
  elif [ -f "$certs/server.key" ]; then
    same "$certs has the broker's certificates"
  else
    say "note: no certificates: put envnet-ca.crt, server.crt and server.key in $certs" \
      "(or run again with --tls-dir DIR); mosquitto does not start without them"
  fi
}

influxdb_step() {
  enable_unit influxdb.service /lib/systemd/system/influxdb.service
}

# Debian's example config is kept as alertmanager.yml.debian; the marker says envnet's was
# installed once, and from then on the file is the operator's.
install_alertmanager_config() {
  local dest=$1 marker=$2
  if [ -f "$dest" ]; then
    cp -p "$dest" "$dest.debian"
  fi
  install -D -m 0644 -o 0 -g 0 "$alertmanager_src" "$dest"
  install -D -m 0644 -o 0 -g 0 /dev/null "$marker"
}

alertmanager_step() {
  local dest marker
  dest=$(r /etc/prometheus/alertmanager.yml)
  marker=$(r /etc/envnet/.alertmanager-config-installed)
  if [ -f "$alertmanager_src" ]; then
    if [ -f "$marker" ]; then
      same "$dest kept (installed once; yours to edit)"
    else
      change "install $dest from $alertmanager_src" \
        install_alertmanager_config "$dest" "$marker"
    fi
  else
    say "note: no $alertmanager_src in this tree: configure $dest by hand" \
      "(routes, receivers; README: Central site)"
  fi
  enable_unit prometheus-alertmanager.service /lib/systemd/system/prometheus-alertmanager.service
}

# deploy/config/agg.toml, its [mqtt] trusting the broker's CA (the URL, with the password,
# comes from aggregator.env).
central_agg_toml() {
  install -D -m 0640 -o 0 -g "$2" /dev/null "$1"
  sed 's#^\(client_id = .*\)$#\1\nca_file = "/etc/mosquitto/certs/envnet-ca.crt"#' \
    "$repo/deploy/config/agg.toml" >"$1"
}

empty_fleet() {
  printf '%s\n' \
    '# The fleet inventory (envnet fleet enrol adds nodes, envnet fleet retire removes them;' \
    '# the aggregator reloads this file when it changes). README: "Central site".' \
    '[nodes]' >"$1"
  chown 0:"$(gid_of envnet)" "$1"
  chmod 0640 "$1"
}

aggregator_step() {
  local etc group spec venv=$prefix/venv
  etc=$(r /etc/envnet)
  group=$(gid_of envnet)
  if on_host; then
    if [ -x "$venv/bin/python" ]; then
      same "$venv exists"
    else
      change "create $venv" python3 -m venv "$venv"
    fi
    spec=$(package_spec aggregator)
    change "pip install $spec into $venv" "$venv/bin/pip" install -q --upgrade "$spec"
  else
    say "skip: venv under --root (run this installer on the host to create $venv)"
  fi
  make_dir 0750 "$group" "$etc"
  if [ -f "$etc/agg.toml" ]; then
    same "$etc/agg.toml kept (not overwritten)"
  else
    change "install $etc/agg.toml (root:gid $group 0640; the broker's CA as [mqtt] ca_file)" \
      central_agg_toml "$etc/agg.toml" "$group"
  fi
  install_current 0644 0 "$repo/deploy/pi/node.toml" "$etc/node-template.toml"
  if [ -f "$etc/fleet.toml" ]; then
    same "$etc/fleet.toml kept (not overwritten)"
  else
    change "create $etc/fleet.toml (an empty inventory, root:gid $group 0640)" \
      empty_fleet "$etc/fleet.toml"
  fi
}

service_step() {
  install_unit "$repo/deploy/systemd/$unit_name"
  enable_unit "$unit_name" "/etc/systemd/system/$unit_name"
  local service
  if [ "$start" -eq 1 ] && systemd_running; then
    # Restarted after a change (new settings, a new login); otherwise only started if down.
    for service in mosquitto influxdb prometheus-alertmanager "$unit_name"; do
      if [ "$changed" -eq 1 ]; then
        change "restart $service" systemctl restart "$service"
      elif systemctl is-active --quiet "$service"; then
        same "$service is running"
      else
        change "start $service" systemctl start "$service"
      fi
    done
  else
    say "note: services not started now (--no-start, --root, or no systemd)"
  fi
}

# -- main ---------------------------------------------------------------------------------

say "envnet central install: root ${root:-/}$([ "$dry_run" -eq 1 ] && printf ', dry run')"
for step in packages user broker influxdb alertmanager aggregator service; do
  if wants "$step"; then
    "${step}_step"
  fi
done
