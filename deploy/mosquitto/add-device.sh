#!/usr/bin/env bash
# Add an edge box to a RUNNING broker (dynamic-security plugin): its login, bound to its client id,
# and a role that confines it to its own topics. The plugin saves dynamic-security.json itself.
#   deploy/mosquitto/add-device.sh <device_id> [mosquitto_ctrl connect options]
# e.g. deploy/mosquitto/add-device.sh van-08 -h 127.0.0.1 -p 1883 -u broker-admin
# mosquitto_ctrl asks for the admin's password (and the box's, unless MQTT_DEVICE_PASSWORD is set).
# The rules are the ones python -m streetwatch.broker_security writes (streetwatch/broker_security.py).
set -euo pipefail
device=${1:?usage: add-device.sh <device_id> [mosquitto_ctrl connect options]}
shift
if [[ ! $device =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ ]]; then
  echo "device id '$device' must be letters, digits, '_' or '-' (at most 64), starting with a letter or digit" >&2
  exit 2
fi
ctrl() { mosquitto_ctrl "$@"; }
role="device:$device"
root="streetwatch/v1/$device"
password_args=()
[[ -n "${MQTT_DEVICE_PASSWORD:-}" ]] && password_args=(-p "$MQTT_DEVICE_PASSWORD")

ctrl "$@" dynsec createRole "$role"
for topic in "$root/events" "$root/evidence/+" "$root/status" "$root/telemetry" "$root/commands/reply"; do
  ctrl "$@" dynsec addRoleACL "$role" publishClientSend "$topic" allow
done
for topic in "$root/commands" "$root/acks"; do
  ctrl "$@" dynsec addRoleACL "$role" subscribeLiteral "$topic" allow
  ctrl "$@" dynsec addRoleACL "$role" publishClientReceive "$topic" allow
done
ctrl "$@" dynsec createClient "$device" -c "$device" "${password_args[@]}"
ctrl "$@" dynsec addClientRole "$device" "$role"
echo "added $device: it logs in as '$device' with client id '$device' and sees only $root/{commands,acks}" >&2
