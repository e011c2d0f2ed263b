#!/usr/bin/env bash
# vm-test.sh: the tests that need kernel features this machine's kernel may lack
# (802.1Q, dummy, ipvlan, bonding, bridge VLAN filtering), run inside a VM booted
# from Debian's own kernel (the linux-image-amd64 package, unpacked, not installed)
# under qemu with KVM (TCG when /dev/kvm is missing). The initramfs this script
# builds holds busybox, the static pipework, the kernel modules the tests load,
# iproute2's ip/bridge and tcpdump with their libraries, and tests/vm/*.sh. Each
# test builds its own namespaces inside the VM and reports over the serial console;
# this script counts the reports: `vm-test: N passed, M failed`, exit 1 if any failed.
# The VM has no network to the outside: its two virtio NICs sit on a qemu hub with
# nothing else on it (a wire between them, for the tests that move a real NIC).
# Needs root only for `depmod -b` (no); runs as any user that can open /dev/kvm.
# Packages: qemu-system-x86 busybox-static iproute2 tcpdump kmod cpio (see test.sh).
# VM_TEST_ONLY=NAME runs only tests/vm/NAME.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'vm-test: %s\n' "$*"; }
die() { printf 'vm-test: FAILED: %s\n' "$*" >&2; exit 1; }
start=$(date +%s)

target=${CARGO_TARGET_DIR:-target}
work=$target/vm
mkdir -p "$work"
work=$(cd "$work" && pwd)

for tool in qemu-system-x86_64 busybox cpio depmod ip bridge tcpdump; do
	command -v "$tool" >/dev/null || die "$tool is missing (apt-get install qemu-system-x86 busybox-static cpio kmod iproute2 tcpdump)"
done
busybox=$(command -v busybox)
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || ldd "$busybox" 2>&1 | grep -q 'not a dynamic' ||
	die "$busybox is not static (apt-get install busybox-static)"

# Debian's kernel: linux-image-amd64 names the versioned package, which holds the
# kernel and its modules; unpacked once into $work/kernel.
kroot=$work/kernel
if [ ! -f "$kroot/.done" ]; then
	say "fetching Debian's kernel package"
	rm -rf "$kroot" "$work/debs"
	mkdir -p "$work/debs"
	(cd "$work/debs" && apt-get download -q linux-image-amd64 >/dev/null 2>&1) || die "apt-get download linux-image-amd64 failed"
	real=$(dpkg-deb -f "$work"/debs/linux-image-amd64_*.deb Depends | grep -o 'linux-image-[0-9][^ ,]*' | head -1)
	[ -n "$real" ] || die "linux-image-amd64 names no kernel package"
	(cd "$work/debs" && apt-get download -q "$real" >/dev/null 2>&1) || die "apt-get download $real failed"
	dpkg-deb -x "$work"/debs/"$real"_*.deb "$kroot"
	kver=$(ls "$kroot/lib/modules")
	depmod -b "$kroot" "$kver"
	touch "$kroot/.done"
fi
kver=$(ls "$kroot/lib/modules")
vmlinuz=$kroot/boot/vmlinuz-$kver

# The static pipework (as the --wait test's container uses).
say "static release build"
RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --locked --release --target x86_64-unknown-linux-gnu
pipework=$target/x86_64-unknown-linux-gnu/release/pipework

# The initramfs.
root=$work/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,usr/sbin,proc,sys,dev,tmp,run,etc,tests,lib/modules/"$kver"}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
# Real iproute2 and tcpdump (busybox's ip knows no VLAN filtering, `-d`, bridge vlan),
# in /usr/sbin: this busybox runs its own applet for a bare `ip` even where PATH has
# another (its shell and nsenter prefer applets), so lib.sh names them by path.
copy_with_libs() {
	local bin=$1 lib
	rm -f "$root/bin/$(basename "$bin")"
	cp -L "$bin" "$root/usr/sbin/$(basename "$bin")"
	for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
for b in ip bridge tcpdump; do copy_with_libs "$(command -v $b)"; done
cp "$pipework" "$root/bin/pipework"
# tcpdump drops to a user by name (-Z root in the tests): it must exist.
echo 'root:x:0:0:root:/tmp:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

# The modules, each after those it needs (modules.dep lists a module's needs after it).
mods="veth bridge 8021q dummy macvlan ipvlan bonding virtio_net virtio_pci af_packet"
: >"$root/modules.order"
for m in $mods; do
	line=$(grep -E "(^|/)$m\.ko:" "$kroot/lib/modules/$kver/modules.dep" || true)
	if [ -z "$line" ]; then
		# Built into the kernel: nothing to load.
		grep -qE "(^|/)$m\.ko$" "$kroot/lib/modules/$kver/modules.builtin" || die "no module $m in $kver"
		continue
	fi
	for ko in $(echo "$line" | tr -d ':' | awk '{for (i = NF; i > 0; i--) print $i}'); do
		grep -qx "$ko" "$root/modules.order" && continue
		mkdir -p "$root/lib/modules/$kver/$(dirname "$ko")"
		cp "$kroot/lib/modules/$kver/$ko" "$root/lib/modules/$kver/$ko"
		echo "$ko" >>"$root/modules.order"
	done
done
cp tests/vm/*.sh "$root/tests/"
echo "${VM_TEST_ONLY:-}" >"$root/tests/only"
cat >"$root/init" <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
export PATH=/usr/sbin:/bin HOME=/tmp
while read ko; do insmod /lib/modules/$kver/\$ko || echo "vm-test: insmod \$ko failed"; done </modules.order
/usr/sbin/ip link set lo up
echo "vm-test: booted"
sh /tests/runner
echo "vm-test: done"
poweroff -f
INIT
chmod +x "$root/init"
mv "$root/tests/runner.sh" "$root/tests/runner"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.gz"

log=$work/console.log
# Two virtio NICs on one qemu hub with nothing else: a wire between them, and no
# way out of the VM. -no-reboot: the VM's poweroff ends qemu.
boot() {
	timeout 900 qemu-system-x86_64 "$@" -m 1024 -smp 2 -nodefaults -display none -no-reboot \
		-serial stdio -kernel "$vmlinuz" -initrd "$work/initramfs.gz" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1" \
		-netdev hubport,id=n0,hubid=0 -device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:10 \
		-netdev hubport,id=n1,hubid=0 -device virtio-net-pci,netdev=n1,mac=52:54:00:00:00:11 \
		</dev/null >"$log" 2>"$work/qemu.err" &
	qpid=$!
}
booted() { grep -q '^vm-test: booted' "$log"; }
say "booting $kver ($(du -h "$work/initramfs.gz" | cut -f1) initramfs)"
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	# Not `-cpu host`: nested under another hypervisor, KVM refuses some of its MSRs.
	boot -accel kvm
	# Under KVM the VM's /init runs within seconds. Where /dev/kvm opens but runs no
	# guest (nested KVM on some hosts hangs before the kernel prints), emulate instead.
	for _ in $(seq 60); do
		booted || ! kill -0 "$qpid" 2>/dev/null && break
		sleep 0.5
	done
	if ! booted; then
		kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null || true
		say "KVM ran no guest within 30 s (/dev/kvm opens, but the VM never started): running under TCG (emulated, slower)"
		boot -accel tcg
	fi
else
	say "/dev/kvm is missing: running under TCG (emulated, slower)"
	boot -accel tcg
fi
# Follow the console until qemu ends (at most 15 minutes, its timeout). Not `tail --pid`: qemu,
# our child, stays a zombie (alive to kill -0) until waited for.
tail -n +1 -f "$log" > >(sed -u -n 's/\r$//; /^vm-test: \|^  /p') &
follower=$!
set +e
wait "$qpid"
qemu=$?
set -e
sleep 0.5
kill "$follower" 2>/dev/null || true
passed=$(grep -c '^vm-test: PASS ' "$log" || true)
failed=$(grep -c '^vm-test: FAIL ' "$log" || true)
if ! grep -q '^vm-test: done' "$log"; then
	say "the VM did not finish (qemu status $qemu); its console: $log, qemu's errors: $work/qemu.err"
	failed=$((failed + 1))
fi
say "$passed passed, $failed failed ($(($(date +%s) - start)) s)"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
