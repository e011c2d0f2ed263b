#!/usr/bin/env bash
# demo.sh: build pipework and show its main job in a throw-away world.
# Two guests (Docker containers when a Docker daemon answers, else plain
# processes in their own network namespace) are joined on a new bridge `br1`
# by pipework, their addresses are shown, and one pings the other.
# Everything runs inside a private "host" network namespace and is removed at
# the end: the machine's own interfaces, routes and firewall are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (it creates namespaces)" >&2; exit 1; }

echo "demo: building (cargo build --release)"
cargo build --release --quiet
PIPEWORK=$PWD/target/release/pipework

pids=() containers=()
cleanup() {
	for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

# A process alone in a new network namespace; prints its PID.
new_netns() {
	unshare -n sleep 3600 </dev/null >/dev/null 2>&1 &
	local pid=$!
	# Until unshare(2) has run, /proc/PID/ns/net is still ours.
	while [ "$(readlink /proc/$pid/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do sleep 0.01; done
	echo "$pid"
}

host=$(new_netns); pids+=("$host")
in_host() { nsenter --net=/proc/$host/ns/net "$@"; }

if docker version >/dev/null 2>&1 && docker image inspect busybox >/dev/null 2>&1; then
	echo "demo: guests are Docker containers web1-$$ and web2-$$"
	for n in web1-$$ web2-$$; do
		docker run -d --init --network none --name "$n" busybox sleep 600 >/dev/null
		containers+=("$n")
	done
	g1=web1-$$ g2=web2-$$
	in_guest() { docker exec "$1" "${@:2}"; }
else
	echo "demo: no Docker daemon (run scripts/docker-up.sh for one); guests are netns processes"
	p1=$(new_netns); p2=$(new_netns); pids+=("$p1" "$p2")
	g1=pid:$p1 g2=pid:$p2
	in_guest() { nsenter --net=/proc/${1#pid:}/ns/net "${@:2}"; }
fi

echo "demo: \$ pipework br1 $g1 192.168.1.10/24@192.168.1.1"
in_host "$PIPEWORK" --verbose br1 "$g1" 192.168.1.10/24@192.168.1.1
echo "demo: \$ pipework br1 $g2 192.168.1.11/24@192.168.1.1"
in_host "$PIPEWORK" --verbose br1 "$g2" 192.168.1.11/24@192.168.1.1

echo "demo: host side:"; in_host ip -br link show master br1
echo "demo: $g1:"; in_guest "$g1" ip addr show eth1; in_guest "$g1" ip route
echo "demo: $g2:"; in_guest "$g2" ip addr show eth1
echo "demo: $g1 pings $g2:"
in_guest "$g1" ping -c 3 -W 2 192.168.1.11
echo "demo: done; removing everything"
