#!/usr/bin/env bash
# demo.sh [--docker|--no-docker]: build pipework and show its main job in a throw-away world.
# Two guests are joined on a new bridge `br1` by pipework, their addresses are
# shown, and each pings the other: the demo fails loudly if they cannot; then
# `pipework ls` lists both and `pipework del` takes them off again.
#
# Guests: processes in their own network namespace, or, with --docker (or when a
# Docker daemon answers already, unless --no-docker), real containers of a local
# busybox image (scripts/docker-up.sh installs docker.io, starts dockerd, builds it).
# Works on a fresh Debian machine as the first command run: whatever it calls and
# is missing (ip, ping, a C compiler and libc6-dev for cargo's link step) is
# installed with apt-get first (scripts/fresh-root-check.sh proves it).
# Everything runs inside a private "host" network namespace and is removed at the
# end: the machine's own interfaces, routes and firewall are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }

docker_mode=auto
case "${1:-}" in
"") ;;
--docker) docker_mode=yes ;;
--no-docker) docker_mode=no ;;
-h | --help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
*) die "unknown argument '$1' (expected --docker, --no-docker or nothing)" ;;
esac
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces)"
command -v cargo >/dev/null 2>&1 ||
	die "no cargo: install a Rust toolchain (https://rustup.rs), then run scripts/demo.sh again"

# Docker when asked, or when a daemon answers already; never started unasked.
if [ "$docker_mode" = auto ]; then
	if command -v docker >/dev/null 2>&1 && timeout 10 docker version >/dev/null 2>&1; then
		docker_mode=yes
	else
		docker_mode=no
	fi
fi

# What this run calls, installed when missing (scripts/deps.sh): the commands, by
# Debian package, and a C toolchain that links (cargo links through cc).
. scripts/deps.sh
need=(ip:iproute2 unshare:util-linux nsenter:util-linux /etc/ssl/certs/ca-certificates.crt:ca-certificates)
[ "$docker_mode" = no ] && need+=(ping:iputils-ping)
need_commands "${need[@]}"
need_linker
if [ "$docker_mode" = yes ]; then
	say "Docker: scripts/docker-up.sh (docker.io, dockerd without iptables or bridge, a local busybox image)"
	scripts/docker-up.sh | sed 's/^/demo: /'
fi

say "building (cargo build --release; a few minutes the first time)"
cargo build --release --quiet
PIPEWORK=$PWD/target/release/pipework

# The attachments' records go to a run directory of the demo's own, not the
# machine's /run/pipework.
PIPEWORK_RUN_DIR=$(mktemp -d /tmp/pipework-demo.XXXXXX)
export PIPEWORK_RUN_DIR

pids=() containers=()
cleanup() {
	for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$PIPEWORK_RUN_DIR"
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
say "the \"host\" is a private network namespace (process $host): br1 is made there"

if [ "$docker_mode" = yes ]; then
	say "guests are Docker containers web1-$$ and web2-$$ (--network none)"
	for n in web1-$$ web2-$$; do
		docker run -d --init --network none --name "$n" busybox sleep 600 >/dev/null
		containers+=("$n")
	done
	g1=web1-$$ g2=web2-$$
	# pipework finds containers through the Docker socket, from any namespace.
	in_guest() { docker exec "$1" "${@:2}"; }
else
	say "guests are processes in their own network namespaces (scripts/demo.sh --docker: containers)"
	p1=$(new_netns); p2=$(new_netns); pids+=("$p1" "$p2")
	g1=pid:$p1 g2=pid:$p2
	in_guest() { nsenter --net=/proc/${1#pid:}/ns/net "${@:2}"; }
fi

say "\$ pipework br1 $g1 192.168.1.10/24@192.168.1.1"
in_host "$PIPEWORK" --verbose br1 "$g1" 192.168.1.10/24@192.168.1.1
say "\$ pipework br1 $g2 192.168.1.11/24@192.168.1.1"
in_host "$PIPEWORK" --verbose br1 "$g2" 192.168.1.11/24@192.168.1.1

say "host side:"; in_host ip -br link show master br1
say "$g1:"; in_guest "$g1" ip addr show eth1; in_guest "$g1" ip route
say "$g2:"; in_guest "$g2" ip addr show eth1

say "check: $g1 pings $g2, and back"
in_guest "$g1" ping -c 3 -W 2 192.168.1.11 || die "$g1 (192.168.1.10) cannot reach $g2 (192.168.1.11) over br1"
in_guest "$g2" ping -c 1 -W 2 192.168.1.10 >/dev/null || die "$g2 (192.168.1.11) cannot reach $g1 (192.168.1.10) over br1"
say "ok: the guests reach each other over br1"

say "\$ pipework ls"; in_host "$PIPEWORK" ls
say "\$ pipework del $g1; pipework del $g2"
in_host "$PIPEWORK" del "$g1"
in_host "$PIPEWORK" del "$g2"
[ -z "$(in_host ip -br link show master br1)" ] || die "ports left on br1 after pipework del"
say "ok: both attachments are off again (br1 stays: other guests may use it); removing everything"
