#!/bin/bash
# The way users start their own builds: a wrapper that does not exec the bus but keeps it as
# a child, with a cleanup trap. On SIGTERM or SIGINT the trap stops the bus and the wrapper
# exits with the status it likes (here 143, 130, or 1 with WRAP_EXIT=1), whatever the bus did:
# the rig must judge the bus, not this shell. Usage: --bus-cmd "bash tests/data/wrap-trap-dbus-daemon.sh"
conf="$BUSRIG_DIR/wrapped.conf"
cat > "$conf" <<CONF
<busconfig>
  <listen>unix:path=$BUSRIG_DIR/wrapped.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
cleanup() {
  kill -TERM "$bus" 2>/dev/null
  wait "$bus" 2>/dev/null
  rm -f "$conf"
  exit "${WRAP_EXIT:-$1}"
}
trap 'cleanup 143' TERM
trap 'cleanup 130' INT
dbus-daemon --config-file="$conf" --nofork --nopidfile --nosyslog --print-address=1 &
bus=$!
wait "$bus"
