#!/usr/bin/env bash
# package.sh: build the Debian package target/debian/pipework_VERSION_ARCH.deb from
# this tree, with one command. Holds the binary, the man page, bash/zsh/fish
# completions, the copyright (license) and the changelog.
#
# Built with dpkg-deb from this script rather than `cargo deb`: dpkg-deb is part
# of dpkg, on every Debian machine, while cargo-deb would be compiled from source
# on each fresh machine and CI run first; the script stays short and every path in
# the package is written here, in one place.
#
# The binary is the static build (the same command as scripts/test.sh, so a test
# run builds it once): no libc dependency, and the installed /usr/bin/pipework can
# be bind-mounted into a minimal container for `pipework --wait`. The man page and
# completions are printed by that binary from its own clap definition, so they
# cannot drift from `--help`.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'package: %s\n' "$*"; }
die() { printf 'package: FAILED: %s\n' "$*" >&2; exit 1; }

# What it calls, installed when missing (scripts/deps.sh): a static C link (libc.a,
# for +crt-static), strip, and dpkg-deb, gzip and md5sum, which every Debian has.
command -v cargo >/dev/null 2>&1 ||
	die "no cargo: install a Rust toolchain (https://rustup.rs), then run scripts/package.sh again"
. scripts/deps.sh
need_commands strip:binutils dpkg-deb:dpkg gzip:gzip md5sum:coreutils /etc/ssl/certs/ca-certificates.crt:ca-certificates
need_linker static

arch=$(dpkg --print-architecture)
case $arch in
amd64) target=x86_64-unknown-linux-gnu ;;
arm64) target=aarch64-unknown-linux-gnu ;;
*) die "no Rust target known for Debian architecture $arch" ;;
esac
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || die "no version in Cargo.toml"

say "static release build for $target"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --locked --release --target "$target" --quiet
bin=target/$target/release/pipework

out=target/debian
root=$out/root
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man8" "$root/usr/share/doc/pipework" \
	"$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
	"$root/usr/share/fish/vendor_completions.d" "$root/lib/systemd/system" "$root/usr/lib/cni"

install -m 0755 "$bin" "$root/usr/bin/pipework"
strip --strip-unneeded "$root/usr/bin/pipework"
# The CNI plugin: Debian's CNI directory (containernetworking-plugins, the
# CNI_PATH of Debian's containerd and Podman) gets a link; runtimes that look in
# /opt/cni/bin (containerd's default bin_dir) need one there, or bin_dir set to
# /usr/lib/cni (see README, "Use with Kubernetes (containerd)").
ln -s ../../bin/pipework "$root/usr/lib/cni/pipework"
"$bin" --man-page | gzip -9n >"$root/usr/share/man/man8/pipework.8.gz"
"$bin" completions bash >"$root/usr/share/bash-completion/completions/pipework"
"$bin" completions zsh >"$root/usr/share/zsh/vendor-completions/_pipework"
"$bin" completions fish >"$root/usr/share/fish/vendor_completions.d/pipework.fish"
# The watcher's unit, shipped but not enabled: `systemctl enable --now pipework-watch`.
install -m 0644 contrib/pipework-watch.service "$root/lib/systemd/system/pipework-watch.service"
gzip -9nc CHANGELOG.md >"$root/usr/share/doc/pipework/changelog.gz"
cat >"$root/usr/share/doc/pipework/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pipework
Source: $(sed -n 's/^repository = "\(.*\)"$/\1/p' Cargo.toml)

Files: *
Copyright: the pipework (Rust) authors
License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0 (and in LICENSE in the source tree).
EOF
# A tree built by root with a umask of its own: give every file the same modes.
find "$root" -type d -exec chmod 0755 {} +
find "$root/usr/share" -type f -exec chmod 0644 {} +

# What each mode needs beyond the binary. The main job (bridges, macvlan, static
# addresses, the built-in dhcp4 client) needs nothing: it speaks netlink itself.
#   Recommends iproute2: `route|rule|tc` run ip and tc inside the guest.
#   Suggests openvswitch-switch: ovs* bridges (ovs-vsctl);
#            udhcpc | isc-dhcp-client | dhcpcd-base: the udhcpc, dhclient, dhcpcd IPSPECs;
#            docker.io: Docker guests by name (or any daemon on the socket) and `dhcp`.
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: pipework
Version: $version
Architecture: $arch
Maintainer: pipework (Rust) developers <pipework@localhost>
Installed-Size: $installed_size
Recommends: iproute2
Suggests: openvswitch-switch, udhcpc | isc-dhcp-client | dhcpcd-base, docker.io
Section: net
Priority: optional
Homepage: $(sed -n 's/^repository = "\(.*\)"$/\1/p' Cargo.toml)
Description: software-defined networking for Linux containers
 A single fast binary that is a drop-in replacement for the pipework shell
 script: \`pipework br1 web1 192.168.1.10/24@192.168.1.1\` gives container
 web1 an interface on bridge br1 with that address and default route,
 through netlink alone. Guests are Docker or LXC containers, processes
 (pid:N) or network-namespace files; host interfaces are Linux or Open
 vSwitch bridges, NICs (macvlan or moved whole), IPoIB and dummy devices;
 addresses are static or by DHCP (a built-in client, or udhcpc, dhclient,
 dhcpcd).
EOF
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

deb=$out/pipework_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
say "built $deb ($(du -h "$deb" | cut -f1))"
