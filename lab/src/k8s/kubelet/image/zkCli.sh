#!/bin/bash
# zkCli.sh of the lab's `zookeeper` image: Apache ZooKeeper's command-line
# client on Debian's ZooKeeper 3.8 jars (logging to stderr, warnings only).
ZOOCFGDIR="${ZOOCFGDIR:-${ZOO_CONF_DIR:-/conf}}"
CLASSPATH="$ZOOCFGDIR:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar${CLASSPATH:+:$CLASSPATH}"
# shellcheck disable=SC2086
exec "${JAVA:-/usr/bin/java}" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$CLASSPATH" $CLIENT_JVMFLAGS $JVMFLAGS org.apache.zookeeper.ZooKeeperMain "$@"
