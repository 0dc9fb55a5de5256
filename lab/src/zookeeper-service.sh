#!/bin/bash
# zookeeper-service: how the lab's hosts manage ZooKeeper, as systemd would
# (start|stop|restart|status|enable|disable). Installed by zklab as
# /usr/local/sbin/zookeeper-service on every host.
#
# - A disabled service refuses to start (exit 6), as `systemctl start` of a
#   masked unit does: fencing in zkmigrate relies on that.
# - stop waits until the JVM is gone (SIGTERM, then SIGKILL after 10 s).
# - status follows LSB: 0 running, 3 stopped.
# - While /etc/zookeeper/zklab-start-broken exists (`zklab fault
#   break-start`), start fails as a unit that does not come up: an error,
#   nothing started, exit 1 (`zklab fault fix-start` removes it).
set -u

CONF=/etc/zookeeper/conf/zoo.cfg
PIDFILE=/var/lib/zookeeper/zookeeper_server.pid
DISABLED=/etc/zookeeper/disabled
START_BROKEN=/etc/zookeeper/zklab-start-broken
LOG=/var/log/zookeeper/zookeeper.log
CLASSPATH=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/servlet-api.jar

pid_of() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid=$(cat "$PIDFILE")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q QuorumPeerMain || return 1
  echo "$pid"
}

start() {
  if [ -e "$DISABLED" ]; then
    echo "zookeeper is disabled on $(hostname -s 2>/dev/null || echo this host); run: zookeeper-service enable" >&2
    exit 6
  fi
  if pid=$(pid_of); then
    echo "zookeeper is already running (pid $pid)"
    return 0
  fi
  if [ -e "$START_BROKEN" ]; then
    echo "$(date -Is) zookeeper failed to start (zklab fault break-start)" >> "$LOG"
    echo "zookeeper failed to start on $(hostname -s 2>/dev/null || echo this host): the server did not come up (lab fault: $START_BROKEN; undo with zklab fault fix-start)" >&2
    exit 1
  fi
  echo "$(date -Is) starting zookeeper" >> "$LOG"
  setsid java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dzookeeper.jmx.log4j.disable=true \
    -cp "$CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain "$CONF" \
    >> "$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  echo "zookeeper started (pid $!)"
}

stop() {
  local pid
  if ! pid=$(pid_of); then
    rm -f "$PIDFILE"
    echo "zookeeper is not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    echo "zookeeper did not stop in 10 s: killed" >&2
  fi
  rm -f "$PIDFILE"
  echo "$(date -Is) stopped zookeeper" >> "$LOG"
  echo "zookeeper stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status)
    if pid=$(pid_of); then echo "zookeeper is running (pid $pid)"; exit 0; fi
    if [ -e "$DISABLED" ]; then echo "zookeeper is stopped (disabled)"
    elif [ -e "$START_BROKEN" ]; then echo "zookeeper is stopped (failed to start)"
    else echo "zookeeper is stopped"; fi
    exit 3 ;;
  enable) rm -f "$DISABLED"; echo "zookeeper enabled" ;;
  disable) touch "$DISABLED"; echo "zookeeper disabled" ;;
  is-enabled)
    if [ -e "$DISABLED" ]; then echo disabled; exit 1; fi
    echo enabled ;;
  *) echo "usage: zookeeper-service start|stop|restart|status|enable|disable|is-enabled" >&2; exit 2 ;;
esac
