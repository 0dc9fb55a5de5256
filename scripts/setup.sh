#!/usr/bin/env bash
# Installs what zkmigrate's tests and lab need on a Debian bookworm machine,
# and only what is missing: apt-get runs only when a package is absent.
# Needs root (or sudo). Changes nothing in the network configuration.
set -euo pipefail

packages=(
  zookeeper            # Debian's ZooKeeper 3.8: the real servers of every test
  libservlet-api-java  # the AdminServer (Jetty) needs the servlet API on the classpath
  libslf4j-java        # slf4j-simple, so that test servers write logs
  openssh-server       # sshd on the lab's hosts
  openssh-client
  iptables             # partitions and the lab's ClusterIP DNAT, inside lab namespaces
  iproute2             # ip netns, veth, bridges
  netcat-openbsd       # four-letter words by hand in runbooks and docs
  bubblewrap           # the lab kubelet's container sandbox
  curl                 # AdminServer checks by hand
  procps               # pgrep/pkill in the lab's service scripts
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
