#!/usr/bin/env bash
# Create, or rotate, an edge node's MQTT credentials in the broker's password file.
#
#   add-node.sh [--passwd FILE] [--broker HOST[:PORT]] [--ca-file PATH] [--rotate]
#               [--password-stdin] [--service] NODE_ID
#
# The username is the node id: deploy/mosquitto/envnet.acl grants each node its own topics by
# username, and the nodes' listener uses it as the client id (envnet-tls.conf). Node ids may
# not start with "envnet-": those are the services' client ids. --service creates a service's
# login instead (envnet-aggregator, envnet-operator, envnet-viewer), in the services'
# password file (/etc/mosquitto/envnet-services.passwd) for the listener on port 8884.
# The password is random (48 hex digits, so it goes into an mqtts:// URL without
# escaping) unless --password-stdin reads one line from standard input. It is hashed with
# `mosquitto_passwd -U` from a private temporary file, so it never appears on a command line
# (where `ps` would show it).
#
# Prints the [mqtt] lines for the node's /etc/envnet/node.toml on standard output. Afterwards,
# reload the broker so that it re-reads the file: systemctl reload mosquitto.
# The same script creates the aggregator's login: add-node.sh --service envnet-aggregator.
set -euo pipefail

passwd_file=""
broker=broker.example
ca_file=/etc/envnet/ca.crt
rotate=0
password_stdin=0
service=0
node=""

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --passwd) passwd_file=${2:?--passwd needs a file}; shift 2 ;;
    --broker) broker=${2:?--broker needs HOST[:PORT]}; shift 2 ;;
    --ca-file) ca_file=${2:?--ca-file needs a path}; shift 2 ;;
    --rotate) rotate=1; shift ;;
    --password-stdin) password_stdin=1; shift ;;
    --service) service=1; shift ;;
    -h|--help) usage ;;
    -*) echo "add-node.sh: unknown option $1" >&2; usage ;;
    *) [ -z "$node" ] || usage; node=$1; shift ;;
  esac
done
[ -n "$node" ] || usage

# The node id rule of the contract (schemas/messages.py ID_PATTERN); it also keeps ':' and
# newlines, which would corrupt the password file, out of the username.
if ! [[ $node =~ ^[a-z0-9][a-z0-9_-]{0,62}$ ]]; then
  echo "add-node.sh: '$node' is not a node id (lower case letters, digits, - and _)" >&2
  exit 2
fi
# The nodes' listener makes a node's username its client id; the services' client ids start
# with envnet- (the aggregator's envnet-aggregator and -pub, envnet-cli-…). A node named like
# one could take over that service's connection and discard its queued session.
if [ "$service" -eq 0 ] && [[ $node == envnet-* ]]; then
  echo "add-node.sh: node ids starting with 'envnet-' are reserved for envnet's services;" \
    "a service's login: add-node.sh --service $node" >&2
  exit 2
fi
if [ "$service" -eq 1 ] && [[ $node != envnet-* ]]; then
  echo "add-node.sh: a service's login starts with 'envnet-' (e.g. envnet-aggregator)" >&2
  exit 2
fi
if [ "$service" -eq 1 ]; then
  default_passwd=/etc/mosquitto/envnet-services.passwd
  default_port=8884
else
  default_passwd=/etc/mosquitto/envnet.passwd
  default_port=8883
fi
passwd_file=${passwd_file:-$default_passwd}
command -v mosquitto_passwd >/dev/null 2>&1 || {
  echo "add-node.sh: mosquitto_passwd not found (Debian package mosquitto)" >&2
  exit 1
}

if [ -f "$passwd_file" ] && grep -q "^${node}:" "$passwd_file" && [ "$rotate" -eq 0 ]; then
  echo "add-node.sh: $node already has credentials in $passwd_file; --rotate replaces them" >&2
  exit 1
fi

if [ "$password_stdin" -eq 1 ]; then
  IFS= read -r password || true
  if [ -z "$password" ]; then
    echo "add-node.sh: empty password on standard input" >&2
    exit 2
  fi
  if ! [[ $password =~ ^[A-Za-z0-9._~-]+$ ]]; then
    echo "add-node.sh: the password holds characters that must be percent-encoded" \
      "in the mqtts:// URL below" >&2
  fi
else
  password=$(openssl rand -hex 24)
fi

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s:%s\n' "$node" "$password" >"$work/entry"
mosquitto_passwd -U "$work/entry"

# Every other user's line, then the new one; written back in place so that the file keeps
# its owner and mode (Debian: root:mosquitto 0640).
if [ -f "$passwd_file" ]; then
  grep -v "^${node}:" "$passwd_file" >"$work/new" || true
else
  : >"$work/new"
fi
cat "$work/entry" >>"$work/new"
if [ -f "$passwd_file" ]; then
  cat "$work/new" >"$passwd_file"
else
  install -m 0640 "$work/new" "$passwd_file"
  if getent group mosquitto >/dev/null 2>&1; then
    chgrp mosquitto "$passwd_file"
  fi
fi

case "$broker" in
  *:*) url_host=$broker ;;
  *) url_host="$broker:$default_port" ;;
esac
echo "add-node.sh: credentials for $node written to $passwd_file;" \
  "reload the broker: systemctl reload mosquitto" >&2
if [ "$service" -eq 1 ]; then
  echo "# [mqtt] of $node's configuration (e.g. agg.toml; it holds the password)"
else
  echo "# /etc/envnet/node.toml on $node (keep the file root:envnet 0640: it holds the password)"
fi
cat <<EOF
[mqtt]
url = "mqtts://$node:$password@$url_host"
ca_file = "$ca_file"
EOF
