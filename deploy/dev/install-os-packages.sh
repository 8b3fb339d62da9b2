#!/usr/bin/env bash
# Install the real services the demo and the integration tests run: Debian's mosquitto
# (broker), nats-server (the clustered MQTT broker of tests/integration/cluster/), influxdb
# (1.6.7, the v1 HTTP API) and victoria-metrics (a real server that accepts the InfluxDB v2
# /api/v2/write line protocol), prometheus-alertmanager (alert delivery,
# with amtool) and chromium (the test that opens Alertmanager's web UI). Debian's Alertmanager
# ships without its web UI; golang-github-prometheus-alertmanager-dev carries the compiled UI
# that simulators/alertmanager_ui.py unpacks. Nothing is started here: the demo and the test
# fixtures start their own processes on free ports.
set -euo pipefail

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v influx >/dev/null 2>&1 || need+=(influxdb-client)
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
[ -f /usr/share/gocode/src/github.com/prometheus/alertmanager/asset/assets_vfsdata.go ] ||
  need+=(golang-github-prometheus-alertmanager-dev)
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "installing OS packages: ${need[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Debian's policy-rc.d may forbid starting services on install; that is fine, we start our own.
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
