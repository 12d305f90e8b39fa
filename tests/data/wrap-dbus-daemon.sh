#!/bin/sh
# A stand-in for "the user's own bus": writes its own config into the private dir the rig
# gives it (BUSRIG_DIR) and execs dbus-daemon, which prints its address first and serves
# until SIGTERM. Usage: busrig run S.toml --bus-cmd "sh tests/data/wrap-dbus-daemon.sh"
set -e
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
exec dbus-daemon --config-file="$conf" --nofork --nopidfile --nosyslog --print-address=1
