#!/usr/bin/env bash
# docker-up.sh: make a local Docker daemon and a `busybox:latest` image
# available for pipework's integration tests, on a machine that reaches
# Debian's package archive but no image registry.
#
# Idempotent: every phase first checks whether its work is already done.
#   1. install Debian's docker.io if `dockerd` is missing
#   2. start dockerd by hand (no systemd here) unless a daemon answers, or
#      a dockerd process already runs (then only wait for it)
#   3. wait, bounded, until `docker version` reaches the daemon
#   4. build busybox:latest from Debian's busybox-static with `docker import`
#   5. check that a container runs
#
# The daemon is told to leave the host's network alone: no iptables rules,
# no docker0 bridge, no change to net.ipv4.ip_forward. Tests create their
# own networking; a host-wide firewall or bridge would leak between them.
set -euo pipefail

SOCK=/var/run/docker.sock
LOG=${DOCKERD_LOG:-/tmp/dockerd.log}
WAIT_SECS=${DOCKERD_WAIT_SECS:-60}
IMAGE=busybox:latest

# Always talk to the local daemon this script manages, whatever the caller's
# environment points the CLI at (a context or a remote host).
unset DOCKER_CONTEXT
export DOCKER_HOST="unix://$SOCK"

say() { printf 'docker-up: %s\n' "$*"; }

# apt-get, retried once after `apt-get update`: the caller normally updates
# the lists, but an empty or stale list should not fail a fresh machine.
apt_retry() {
	if ! apt-get -o DPkg::Lock::Timeout=300 "$@"; then
		apt-get -o DPkg::Lock::Timeout=300 -qq update
		apt-get -o DPkg::Lock::Timeout=300 "$@"
	fi
}

daemon_answers() {
	timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

install_docker() {
	if command -v dockerd >/dev/null 2>&1; then
		say "install: dockerd present ($(dockerd --version))"
		return
	fi
	say "install: dockerd missing, installing docker.io"
	DEBIAN_FRONTEND=noninteractive apt_retry install -y -qq --no-install-recommends docker.io >/dev/null
	# docker.io only recommends its CLI's plugins, and `docker` itself may be
	# a separate newer client in /usr/local/bin: either one is fine.
	command -v docker >/dev/null 2>&1 || { say "install: no docker CLI after install" >&2; exit 1; }
}

start_daemon() {
	if daemon_answers; then
		say "daemon: already answering on $SOCK"
		return
	fi
	# A dockerd that is still starting (or another run of this script that
	# just launched one) must not get a twin: both would fight over
	# /var/lib/docker and the socket. Wait for it instead.
	if pidof dockerd >/dev/null 2>&1; then
		say "daemon: dockerd already running (pid $(pidof dockerd)), waiting for it"
		return
	fi
	say "daemon: starting dockerd (log $LOG)"
	# setsid + nohup: the daemon outlives this script and its terminal.
	setsid nohup dockerd \
		--iptables=false --ip6tables=false --bridge=none --ip-forward=false \
		</dev/null >>"$LOG" 2>&1 &
}

wait_daemon() {
	local i
	for ((i = 0; i < WAIT_SECS; i++)); do
		if daemon_answers; then
			say "wait: daemon answers ($(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}'))"
			return
		fi
		sleep 1
	done
	say "wait: no answer from dockerd after ${WAIT_SECS}s; last lines of $LOG:" >&2
	tail -n 20 "$LOG" >&2 || true
	exit 1
}

# The lease script baked into the image, used by `udhcpc` run inside a
# container (Debian's busybox looks for /etc/udhcpc/default.script).
write_udhcpc_script() {
	cat >"$1" <<'EOF'
#!/bin/sh
# udhcpc lease script for the pipework test image: applies a lease with `ip`.
# shellcheck disable=SC2154,SC2086 # udhcpc sets the variables; lists split on purpose
# udhcpc exports: interface ip mask (prefix length) subnet broadcast router
# staticroutes dns domain.
[ -n "$1" ] || { echo "usage: $0 deconfig|bound|renew|leasefail|nak" >&2; exit 1; }

case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set dev "$interface" up
	;;
bound|renew)
	prefix=${mask:-32}
	# A renewal that keeps the address must not drop it (that would cut
	# traffic); a lease with a new address replaces the old one.
	if ! ip -4 addr show dev "$interface" | grep -q "inet $ip/$prefix "; then
		ip -4 addr flush dev "$interface"
	fi
	ip addr replace "$ip/$prefix" broadcast "${broadcast:-+}" dev "$interface"
	if [ -n "$staticroutes" ]; then
		# RFC 3442: with classless static routes the router option is ignored.
		set -- $staticroutes
		while [ $# -ge 2 ]; do
			if [ "$2" = "0.0.0.0" ]; then
				ip route replace "$1" dev "$interface"
			else
				ip route replace "$1" via "$2" dev "$interface"
			fi
			shift 2
		done
	elif [ -n "$router" ]; then
		set -- $router
		# On a /32 the router is not on any subnet: reach it on-link first.
		[ "$prefix" = 32 ] && ip route replace "$1" dev "$interface"
		ip route replace default via "$1" dev "$interface"
	fi
	# DNS only inside a container (Docker creates /.dockerenv there): this
	# script must never rewrite the host's resolver configuration.
	if [ -f /.dockerenv ] && [ -n "$dns" ]; then
		{
			[ -n "$domain" ] && echo "search $domain"
			for s in $dns; do echo "nameserver $s"; done
		} >/etc/resolv.conf
	fi
	;;
esac
exit 0
EOF
	chmod 0755 "$1"
}

make_rootfs() {
	local root=$1 bb applet
	bb=$(find "$2" -path '*/bin/busybox' -type f | head -n 1)
	[ -n "$bb" ] || { say "image: no bin/busybox in busybox-static" >&2; exit 1; }
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/udhcpc,root,proc,sys,dev,run,var/run}
	install -m 0755 "$bb" "$root/bin/busybox"
	# --list-full gives each applet with its usual directory (bin/sh,
	# sbin/ip, usr/bin/wget): the same set as --list, at the standard places.
	while read -r applet; do
		[ "$applet" = bin/busybox ] && continue
		mkdir -p "$root/$(dirname "$applet")"
		ln -sf /bin/busybox "$root/$applet"
	done < <("$root/bin/busybox" --list-full)
	install -d -m 1777 "$root/tmp" "$root/var/tmp"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	# Docker bind-mounts these at run time; the files only need to exist.
	: >"$root/etc/hosts"
	: >"$root/etc/hostname"
	: >"$root/etc/resolv.conf"
	write_udhcpc_script "$root/etc/udhcpc/default.script"
}

build_image() {
	if docker image inspect "$IMAGE" >/dev/null 2>&1; then
		say "image: $IMAGE already present"
		return
	fi
	local tmp deb
	tmp=$(mktemp -d /tmp/docker-up.XXXXXX)
	BUILD_TMP=$tmp
	trap 'rm -rf "$BUILD_TMP"' EXIT
	# apt-get download drops privileges to _apt: let it write here.
	id _apt >/dev/null 2>&1 && chown _apt "$tmp"
	(cd "$tmp" && apt_retry download -qq busybox-static >/dev/null)
	deb=$(ls "$tmp"/busybox-static_*.deb)
	# Unpack only: the host's own busybox packages are left untouched.
	dpkg-deb -x "$deb" "$tmp/pkg"
	make_rootfs "$tmp/rootfs" "$tmp/pkg"
	say "image: importing $IMAGE from $(basename "$deb") ($("$tmp/rootfs/bin/busybox" --list | grep -cvx busybox) applets)"
	tar --numeric-owner --owner=0 --group=0 -C "$tmp/rootfs" -c . |
		docker import --change 'CMD ["sh"]' - "$IMAGE" >/dev/null
}

check_run() {
	local out
	out=$(docker run --rm --init --network none "$IMAGE" echo ok)
	[ "$out" = ok ] || { say "check: container printed '$out', not 'ok'" >&2; exit 1; }
	say "check: docker run --rm --init --network none $IMAGE echo ok: ok"
}

install_docker
start_daemon
wait_daemon
build_image
check_run
