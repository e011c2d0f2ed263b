#!/usr/bin/env bash
# test.sh: install what the tests need, start the daemons they use, and run every
# check (format, lints, unit and integration tests). Run as root on a Debian machine.
# PIPEWORK_SKIP_INSTALL=1 skips the apt step on a machine that has it all already.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "test.sh: the integration tests need root" >&2; exit 1; }

if [ "${PIPEWORK_SKIP_INSTALL:-}" != 1 ]; then
	echo "test.sh: installing test packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=300 -qq update
	# Every package the tests use, by name, even where this machine has it already.
	apt-get -o DPkg::Lock::Timeout=300 -y -qq install --no-install-recommends \
		iproute2 util-linux iputils-ping procps docker.io tcpdump openvswitch-switch \
		dnsmasq-base udhcpc isc-dhcp-client dhcpcd-base bc strace \
		containernetworking-plugins podman containerd runc busybox-static protobuf-compiler \
		gcc libc6-dev binutils ca-certificates qemu-system-x86 kmod cpio >/dev/null
fi
# cargo links through cc, the static build against libc.a: check that both link
# (and say what to install) rather than that `cc` exists.
say() { printf 'test.sh: %s\n' "$*"; }
die() { printf 'test.sh: FAILED: %s\n' "$*" >&2; exit 1; }
. scripts/deps.sh
need_linker
need_linker static

scripts/docker-up.sh

echo "test.sh: cargo fmt --check"
cargo fmt --check
echo "test.sh: cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
# The --wait test runs this static binary inside a busybox container (no libc there).
# The explicit --target keeps +crt-static off build scripts and proc macros.
echo "test.sh: static release build for containers"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --locked --release --target x86_64-unknown-linux-gnu
# The Debian package, from that same static build, so that it cannot rot: its
# control fields and contents, then installed by dpkg into a throw-away root,
# where the installed binary must run and its man page hold the examples.
echo "test.sh: Debian package"
scripts/package.sh
check_package() {
	local deb=$1 root listing f
	dpkg-deb -I "$deb" control >/tmp/pipework-control.$$
	grep -qx 'Package: pipework' /tmp/pipework-control.$$
	grep -qx 'Recommends: iproute2' /tmp/pipework-control.$$
	grep -q '^Suggests: .*openvswitch-switch.*docker.io' /tmp/pipework-control.$$
	rm -f /tmp/pipework-control.$$
	# Each entry's path (a link's, before its " -> TARGET").
	listing=$(dpkg-deb -c "$deb" | awk '{ print ($(NF - 1) == "->") ? $(NF - 2) : $NF }')
	for f in ./usr/bin/pipework ./usr/share/man/man8/pipework.8.gz \
		./usr/share/bash-completion/completions/pipework ./usr/share/zsh/vendor-completions/_pipework \
		./usr/share/fish/vendor_completions.d/pipework.fish ./usr/share/doc/pipework/copyright \
		./usr/share/doc/pipework/changelog.gz ./lib/systemd/system/pipework-watch.service \
		./usr/lib/cni/pipework; do
		grep -qx -- "$f" <<<"$listing" || { echo "test.sh: $deb lacks $f" >&2; return 1; }
	done
	root=$(mktemp -d /tmp/pipework-pkgroot.XXXXXX)
	mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
	: >"$root/var/lib/dpkg/status"
	dpkg --root="$root" --log=/dev/null -i "$deb" >/dev/null
	dpkg --root="$root" -s pipework | grep -qx 'Status: install ok installed'
	"$root/usr/bin/pipework" --version | grep -Eq "^pipework .* \((commit |built )"
	# The CNI plugin link resolves to the binary, and answers as a plugin.
	[ "$(readlink -f "$root/usr/lib/cni/pipework")" = "$(readlink -f "$root/usr/bin/pipework")" ] ||
		{ echo "test.sh: $deb's /usr/lib/cni/pipework is not a link to /usr/bin/pipework" >&2; return 1; }
	echo '{"cniVersion":"1.0.0"}' | CNI_COMMAND=VERSION "$root/usr/lib/cni/pipework" | grep -q '"supportedVersions"'
	zcat "$root/usr/share/man/man8/pipework.8.gz" | grep -q '^\.SH EXAMPLES'
	grep -q '^_pipework()' "$root/usr/share/bash-completion/completions/pipework"
	echo "test.sh: package ok: $("$root/usr/bin/pipework" --version), $(wc -l <<<"$listing") entries"
	rm -rf "$root"
}
check_package target/debian/pipework_*_"$(dpkg --print-architecture)".deb
# Tests must never touch the machine's own namespace: note its interfaces before,
# and fail the run if any appeared (a test that ran pipework outside its own world).
links() { ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort; }
before=$(links)
echo "test.sh: cargo test"
status=0
cargo test --locked || status=$?
leaked=$(comm -13 <(echo "$before") <(links))
if [ -n "$leaked" ]; then
	echo "test.sh: the tests left interfaces in the machine's own namespace: $leaked" >&2
	status=1
fi
# What this kernel may lack (802.1Q, dummy, bridge VLAN filtering...), in a VM
# booted from Debian's kernel (its package is fetched with apt-get download).
echo "test.sh: VM tier"
scripts/vm-test.sh || status=1
exit "$status"
