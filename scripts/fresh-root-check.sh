#!/usr/bin/env bash
# fresh-root-check.sh: the README's quick start, tried as a new user would, on a
# truly fresh machine: a minimal Debian root (debootstrap --variant=minbase) with
# nothing but this machine's Rust toolchain bound into it.
#
# In the root, in order: install git and ca-certificates and clone this repository
# (its committed HEAD), scripts/demo.sh as the very first command (it must install
# what it needs: ip, ping, a C toolchain that links), the demo again, then
# scripts/package.sh, `apt-get install ./target/debian/pipework_*.deb`, and
# `man pipework` (minbase has no man-db: the script shows that, then installs it);
# then `pipework --version` and `pipework` with no arguments. Each step is timed.
#
# The root and its mounts live in a mount and PID namespace of their own
# (unshare): whatever happens, a failure or a Ctrl-C, the mounts go with the
# namespace and every process started in the root with its PID namespace, and the
# root directory is removed at the end. The machine's own interfaces are never
# touched (the demo works in network namespaces of its own). Run as root; about
# 10 minutes on 2 cores, most of it two release builds from a clean target/.
#   FRESH_ROOT_SUITE (bookworm), FRESH_ROOT_MIRROR (the Debian URI of this
#   machine's apt sources, else debootstrap's default), FRESH_ROOT_KEEP=1 (keep the
#   root for a look, its path printed), CARGO_HOME, RUSTUP_HOME (~/.cargo, ~/.rustup).
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

say() { printf 'fresh-root: %s\n' "$*"; }
die() { printf 'fresh-root: FAILED: %s\n' "$*" >&2; exit 1; }

suite=${FRESH_ROOT_SUITE:-bookworm}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
# The environment of every command in the root: a login's, the toolchain on PATH.
root_env=(env -i HOME=/root TERM=dumb LANG=C.UTF-8 USER=root
	PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)

# `step NAME CMD...`: runs CMD, then says how long it took (and fails the check
# with its exit status if it failed).
timings=()
step() {
	local name=$1 start end status=0
	shift
	say "== $name"
	start=$(date +%s.%N)
	"$@" || status=$?
	end=$(date +%s.%N)
	local secs
	secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
	timings+=("$(printf '%-58s %7s s  exit %s' "$name" "$secs" "$status")")
	say "== $name: exit $status after $secs s"
	[ "$status" = 0 ] || { summary; die "$name (exit $status)"; }
}
summary() {
	say "timings:"
	printf '  %s\n' "${timings[@]}"
}

# Runs "$@" in the root, as root's login would.
in_root() { chroot "$root" "${root_env[@]}" "$@"; }
in_clone() { in_root bash -c "cd /root/pipework && $1"; }

# The part in the private mount and PID namespace: $root is made already.
inside() {
	root=$1 src_git=$2 commit=$3
	local mirror=${FRESH_ROOT_MIRROR:-}
	if [ -z "$mirror" ]; then
		mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
			awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[a-z]+:\/\/.*\/debian\/?$/) { print $i; exit } }' || true)
	fi
	bootstrap() {
		debootstrap --variant=minbase "$suite" "$root" ${mirror:+"$mirror"} >"$root.debootstrap.log" 2>&1 ||
			{ tail -n 20 "$root.debootstrap.log" >&2; return 1; }
	}
	step "debootstrap --variant=minbase $suite" bootstrap

	# What a container or chroot gets: /proc (of this PID namespace), /sys, /dev,
	# a fresh /run, the name servers; then the toolchain and, read-only, the repository.
	mount -t proc proc "$root/proc"
	mount -t sysfs sysfs "$root/sys"
	mount --rbind /dev "$root/dev"
	mount -t tmpfs tmpfs "$root/run"
	cp -L /etc/resolv.conf "$root/etc/resolv.conf"
	mkdir -p "$root/root/.cargo" "$root/root/.rustup" "$root/mnt/pipework.git"
	mount --bind "$cargo_home" "$root/root/.cargo"
	mount --bind "$rustup_home" "$root/root/.rustup"
	mount --bind "$src_git" "$root/mnt/pipework.git"
	mount -o remount,bind,ro "$root/mnt/pipework.git"

	say "what minbase has: $(in_root bash -c 'for c in cargo git cc ip ping man; do
		printf "%s=%s " "$c" "$(command -v "$c" >/dev/null && echo yes || echo no)"; done')"

	step "quick start: apt-get install git ca-certificates; git clone" in_root bash -c "
		set -e
		export DEBIAN_FRONTEND=noninteractive
		apt-get -qq update
		apt-get -y -qq install --no-install-recommends git ca-certificates >/dev/null
		git clone -q --no-checkout file:///mnt/pipework.git /root/pipework
		git -C /root/pipework checkout -q --detach $commit
		echo \"cloned \$(git -C /root/pipework log -1 --format='%h %s' | cut -c1-72)\""
	step "scripts/demo.sh (the first command on the fresh root)" in_clone scripts/demo.sh
	step "scripts/demo.sh again (nothing left to install or build)" in_clone scripts/demo.sh
	step "scripts/package.sh" in_clone scripts/package.sh
	step "apt-get install ./target/debian/pipework_*.deb" in_clone \
		'DEBIAN_FRONTEND=noninteractive apt-get -y -qq install ./target/debian/pipework_*_$(dpkg --print-architecture).deb >/dev/null && command -v pipework'
	if in_root bash -c 'command -v man' >/dev/null; then
		die "man is on the fresh root: the README's word that minbase lacks man-db is stale"
	fi
	say "man pipework: 'man: command not found' (minbase has no man-db), as the README says"
	step "apt-get install man-db" in_root bash -c \
		'DEBIAN_FRONTEND=noninteractive apt-get -y -qq install --no-install-recommends man-db >/dev/null'
	step "man pipework (its EXAMPLES section)" in_root bash -c '
		set -o pipefail
		page=$(MANPAGER=cat MANWIDTH=100 man pipework) || exit 1
		printf "%s\n" "$page" | head -n 12
		printf "%s\n" "$page" | grep -A 4 "^EXAMPLES"'
	step "pipework --version" in_root pipework --version
	step "pipework (no arguments: Syntax block, a line to --help; exit 1)" in_root bash -c '
		out=$(pipework); status=$?
		printf "%s\n" "$out"
		[ "$status" = 1 ] && [ "$(printf "%s\n" "$out" | head -n 1)" = "Syntax:" ] &&
			printf "%s\n" "$out" | tail -n 1 | grep -q "^Run .pipework --help."'
	summary
}

# The outer part, in this namespace: the whole script is read before it runs (a
# function), so that editing it during a run cannot change what runs.
main() {
	[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot, mounts)"
	[ -d "$cargo_home/bin" ] && [ -d "$rustup_home" ] ||
		die "no Rust toolchain at $cargo_home and $rustup_home (rustup's CARGO_HOME and RUSTUP_HOME)"
	. scripts/deps.sh
	need_commands debootstrap:debootstrap unshare:util-linux chroot:coreutils

	src_git=$(git rev-parse --path-format=absolute --git-common-dir)
	commit=$(git rev-parse HEAD)
	[ -z "$(git status --porcelain --untracked-files=no)" ] ||
		say "note: uncommitted changes are not checked: the root clones the committed HEAD ($(git rev-parse --short HEAD))"

	root=$(mktemp -d "${TMPDIR:-/var/tmp}/pipework-fresh-root.XXXXXX")
	# It becomes the root's /: mktemp's 0700 would keep apt's _apt and man-db's man
	# users out of everything.
	chmod 0755 "$root"
	child=
	cleanup() {
		local status=$?
		trap - EXIT INT TERM HUP
		# unshare --kill-child: its end kills the namespace's first process, and with it
		# every process in the root; the mounts go with the mount namespace. SIGKILL:
		# unshare hands a SIGTERM on to that first process, which as a PID namespace's
		# init ignores it (seen: the run went on).
		if [ -n "$child" ]; then
			say "stopping the root's namespace (unshare, pid $child)"
			kill -KILL "$child" 2>/dev/null || true
			wait "$child" 2>/dev/null || true
		fi
		if grep -q " ${root}[/ ]" /proc/self/mountinfo; then
			say "mounts under $root left in this namespace: unmounting them"
			grep " ${root}[/ ]" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n 1 umount -l
		fi
		if [ "${FRESH_ROOT_KEEP:-}" = 1 ]; then
			say "kept the root: $root (rm -rf --one-file-system $root)"
		else
			rm -rf --one-file-system "$root" "$root.debootstrap.log"
		fi
		exit "$status"
	}
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP

	say "root $root, suite $suite, toolchain $cargo_home + $rustup_home, repository $src_git at $(git rev-parse --short HEAD)"
	start=$(date +%s)
	# In the background and waited for, so that a signal runs the trap at once.
	unshare --mount --propagation private --pid --fork --kill-child \
		"$self" --inside "$root" "$src_git" "$commit" &
	child=$!
	status=0
	wait "$child" || status=$?
	child=
	[ "$status" = 0 ] || die "see above (exit $status)"
	say "PASSED in $(($(date +%s) - start)) s"
}

if [ "${1:-}" = --inside ]; then
	shift
	inside "$@"
	exit 0
fi
main "$@"
exit
