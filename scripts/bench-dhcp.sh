#!/usr/bin/env bash
# bench-dhcp.sh: how long a DHCP attach takes with the built-in client (dhcp4) and
# with busybox udhcpc, side by side in one run against the same dnsmasq. Each run
# attaches a fresh guest (a process in its own netns) to the bridge of a private
# "host" namespace; the attach alone (0/0) is timed too, so that the lease's own
# share shows. Prints the median and min/max of each, in milliseconds.
# Run as root on Debian, with dnsmasq-base and udhcpc installed. RUNS=N to change N.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-15}
[ "$(id -u)" = 0 ] || { echo "bench-dhcp.sh: needs root" >&2; exit 1; }
for tool in dnsmasq udhcpc nsenter unshare; do
	command -v "$tool" >/dev/null || { echo "bench-dhcp.sh: $tool is missing" >&2; exit 1; }
done

cargo build --release --quiet
BIN=$PWD/target/release/pipework
WORK=$(mktemp -d /tmp/bench-dhcp.XXXXXX)
PIDS=()

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# A process alone in a new network namespace; prints its pid once unshare has run.
new_ns() {
	unshare -n sleep 3600 </dev/null >/dev/null 2>&1 &
	local pid=$! mine
	mine=$(stat -L -c %i /proc/self/ns/net)
	while [ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null || echo "$mine")" = "$mine" ]; do sleep 0.01; done
	echo "$pid"
}

in_ns() { local pid=$1; shift; nsenter --net="/proc/$pid/ns/net" "$@"; }

HOST=$(new_ns); PIDS+=("$HOST")
SERVER=$(new_ns); PIDS+=("$SERVER")
in_ns "$HOST" "$BIN" br1 "pid:$SERVER" 0/0
in_ns "$SERVER" ip addr add 10.77.0.1/24 dev eth1
# Not through in_ns: $! must be nsenter itself (which becomes dnsmasq), not a subshell.
nsenter --net="/proc/$SERVER/ns/net" dnsmasq --no-daemon --no-ping --port=0 --bind-interfaces --interface=eth1 \
	--dhcp-range=10.77.0.10,10.77.0.250,255.255.255.0,2m --dhcp-option=3,10.77.0.1 \
	--dhcp-leasefile="$WORK/leases" --pid-file="$WORK/pid" --log-facility="$WORK/log" \
	</dev/null >/dev/null 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do grep -q "sockets bound" "$WORK/log" 2>/dev/null && break; sleep 0.05; done

# One attach of a fresh guest with IPSPEC; appends its wall time (ms) to $WORK/IPSPEC.
one() {
	local spec=$1 guest t0 t1
	guest=$(new_ns)
	t0=$(date +%s%N)
	in_ns "$HOST" "$BIN" br1 "pid:$guest" "$spec" >/dev/null
	t1=$(date +%s%N)
	echo "scale=2; ($t1 - $t0) / 1000000" | bc >>"$WORK/${spec//[:\/]/_}"
	kill "$guest"
}

# Interleaved, so that neither client gets a quieter machine than the other.
for _ in $(seq "$RUNS"); do
	one 0/0
	one dhcp4
	one udhcpc
done

stats() {
	sort -n "$WORK/$1" | awk '{ v[NR] = $1 } END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.2f %.2f %.2f\n", m, v[1], v[NR] }'
}

read -r base_med base_min base_max < <(stats 0_0)
printf 'bench-dhcp: %d runs each, one fresh guest per run, same dnsmasq (%s)\n' "$RUNS" "$(dnsmasq --version | head -n 1)"
printf '%-34s %10s %10s %10s %14s\n' "attach with IPSPEC" "median ms" "min ms" "max ms" "lease ms (med)"
printf '%-34s %10s %10s %10s %14s\n' "0/0 (no address, baseline)" "$base_med" "$base_min" "$base_max" "-"
for spec in dhcp4 udhcpc; do
	read -r med min max < <(stats "$spec")
	lease=$(echo "$med - $base_med" | bc)
	label="$spec"
	[ "$spec" = dhcp4 ] && label="dhcp4 (built-in)"
	# sed reads it all: head would close the pipe early, and pipefail would end the script.
	[ "$spec" = udhcpc ] && label="udhcpc (busybox $(busybox 2>&1 | sed -n '1s/^BusyBox \([^ ]*\).*/\1/p'))"
	printf '%-34s %10s %10s %10s %14s\n' "$label" "$med" "$min" "$max" "$lease"
done
