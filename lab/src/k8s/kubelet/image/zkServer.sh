#!/bin/bash
# zkServer.sh of the lab's `zookeeper` image: the part of Apache ZooKeeper's
# bin/zkServer.sh (3.8) that containers use, running Debian's ZooKeeper 3.8
# jars with the host's java. `start-foreground` execs the JVM, so the server
# is the container's main process and gets its signals, as in the official
# image. Also: `print-cmd`, `status`, `version`.
#
# Logging goes to stdout (slf4j-simple; the official image's logback CONSOLE
# appender), so `kubectl logs` shows the server's log.

ZOOBINDIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ZOOCFGDIR="${ZOOCFGDIR:-${ZOO_CONF_DIR:-/conf}}"
ZOOCFG="$ZOOCFGDIR/zoo.cfg"
if [ "x$2" != "x" ]; then
    ZOOCFG="$ZOOCFGDIR/$2"
fi
# As Apache's: a config given with a path of its own is taken as is.
if [ "x$(dirname "$ZOOCFG")" != "x$ZOOCFGDIR" ]; then
    ZOOCFG="$2"
fi

ZOOMAIN=org.apache.zookeeper.server.quorum.QuorumPeerMain
JAVA="${JAVA:-/usr/bin/java}"
CLASSPATH="$ZOOCFGDIR:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/servlet-api.jar${CLASSPATH:+:$CLASSPATH}"
ZOO_LOG_DIR="${ZOO_LOG_DIR:-/logs}"
ZOO_LOG_FILE="${ZOO_LOG_FILE:-zookeeper-$(hostname).log}"
ZK_SERVER_HEAP="${ZK_SERVER_HEAP:-1000}"
# Serial GC and C1 only: the lab runs many small servers on one machine and
# wants them up quickly; behaviour is unchanged.
JVMFLAGS="-Xmx${ZK_SERVER_HEAP}m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
-Dorg.slf4j.simpleLogger.logFile=System.out \
-Dorg.slf4j.simpleLogger.showDateTime=true \
-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ \
-Dzookeeper.jmx.log4j.disable=true $SERVER_JVMFLAGS $JVMFLAGS"

client_port() {
    local port
    port=$(sed -n 's/^[[:space:]]*clientPort[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "$ZOOCFG" | tail -n 1)
    if [ -z "$port" ]; then
        local myid
        myid=$(cat "$(sed -n 's/^[[:space:]]*dataDir[[:space:]]*=[[:space:]]*//p' "$ZOOCFG" | tail -n 1)/myid" 2>/dev/null)
        port=$(sed -n "s/^server\.${myid}=.*;\(.*:\)\{0,1\}\([0-9]*\)[[:space:]]*$/\2/p" "$ZOOCFG" | tail -n 1)
    fi
    echo "${port:-2181}"
}

case "$1" in
start-foreground)
    echo "ZooKeeper JMX enabled by default" >&2
    echo "Using config: $ZOOCFG" >&2
    # shellcheck disable=SC2086
    exec "$JAVA" "-Dzookeeper.log.dir=${ZOO_LOG_DIR}" "-Dzookeeper.log.file=${ZOO_LOG_FILE}" \
        -XX:+HeapDumpOnOutOfMemoryError -XX:OnOutOfMemoryError='kill -9 %p' \
        -cp "$CLASSPATH" $JVMFLAGS $ZOOMAIN "$ZOOCFG"
    ;;
print-cmd)
    echo "\"$JAVA\" -Dzookeeper.log.dir=\"${ZOO_LOG_DIR}\" -Dzookeeper.log.file=\"${ZOO_LOG_FILE}\" -XX:+HeapDumpOnOutOfMemoryError -XX:OnOutOfMemoryError='kill -9 %p' -cp \"$CLASSPATH\" $JVMFLAGS $ZOOMAIN \"$ZOOCFG\""
    ;;
status)
    echo "ZooKeeper JMX enabled by default" >&2
    echo "Using config: $ZOOCFG" >&2
    port=$(client_port)
    echo "Client port found: $port. Client address: localhost. Client SSL: false." >&2
    if ! exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
        echo "Error contacting service. It is probably not running." >&2
        exit 1
    fi
    printf srvr >&3
    out=$(cat <&3)
    mode=$(echo "$out" | sed -n 's/^Mode: //p')
    if [ -z "$mode" ]; then
        echo "Error contacting service. It is probably not running." >&2
        exit 1
    fi
    echo "Mode: $mode"
    ;;
version)
    exec "$JAVA" -cp "$CLASSPATH" org.apache.zookeeper.version.VersionInfoMain 2>/dev/null
    ;;
*)
    echo "Usage: $0 [--config <conf-dir>] {start-foreground|print-cmd|status|version}" >&2
    exit 1
    ;;
esac
