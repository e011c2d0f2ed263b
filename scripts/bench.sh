#!/usr/bin/env bash
# bench.sh: how fast pipework attaches, side by side with the CNI reference `bridge`
# plugin and an `ip` script doing the same steps, in one run. Run as root on Debian:
#
#     scripts/bench.sh
#
# Every scenario runs in a throw-away "host" network namespace of its own (this
# script re-runs itself under `unshare -n`), with guests that are processes in their
# own namespaces (`unshare -n sleep`) or Docker containers (`--network none`); no
# traffic leaves them and the machine's own interfaces are never touched. Everything
# it starts is stopped by PID (containers by name) at the end, even on failure.
#
# Packages it installs when missing (Debian): containernetworking-plugins (the CNI
# `bridge` and `static` plugins, /usr/lib/cni), time (/usr/bin/time -v for peak RSS),
# iproute2, util-linux, protobuf-compiler (protoc, for the dev-dependencies the
# bench_floor example builds with); Docker through scripts/docker-up.sh (docker.io, busybox image).
#
# Sizes (environment): BENCH_RUNS (100) attaches per contender in (1), BENCH_DOCKER
# (20) containers in (2), BENCH_GUESTS (1000) guests in (3) and (4).
#
# BENCH_BASELINE=PATH (another pipework binary, an earlier build) adds it to (1) as a
# fourth contender, interleaved with the others: before and after from one run.
# BENCH_ONLY=1 runs (1) alone.
set -euo pipefail
cd "$(dirname "$0")/.."
# $EPOCHREALTIME's decimal point is the locale's.
export LC_ALL=C

CNI_DIR=/usr/lib/cni

say() { printf 'bench: %s\n' "$*" >&2; }

# --- measuring ---------------------------------------------------------------------

# Microseconds between two $EPOCHREALTIME values (no process is spawned to time one).
elapsed_us() { echo $((${2/./} - ${1/./})); }

# "median p10 p90" in ms of the microsecond figures in file $1 (lines $2..$3 if given).
stats() {
	local lines
	if [ $# -ge 3 ]; then lines=$(sed -n "$2,$3p" "$1"); else lines=$(cat "$1"); fi
	sort -n <<<"$lines" | awk '{ v[NR] = $1 } END {
		n = NR
		printf "%.2f %.2f %.2f\n", v[int((n + 1) / 2)] / 1000, v[int(n * 0.1) + 1] / 1000, v[int(n * 0.9)] / 1000 }'
}

# CPU busy percentage over half a second, all CPUs.
cpu_busy() {
	local u1 n1 s1 i1 w1 q1 sq1 st1 u2 n2 s2 i2 w2 q2 sq2 st2
	read -r _ u1 n1 s1 i1 w1 q1 sq1 st1 _ </proc/stat
	sleep 0.5
	read -r _ u2 n2 s2 i2 w2 q2 sq2 st2 _ </proc/stat
	local busy=$(((u2 + n2 + s2 + q2 + sq2 + st2) - (u1 + n1 + s1 + q1 + sq1 + st1)))
	local idle=$(((i2 + w2) - (i1 + w1)))
	echo $((100 * busy / (busy + idle + 1)))
}

# Wait (up to 10 s) until the machine is quiet: a namespace torn down by the previous
# scenario keeps the kernel busy for a while, and that must not count against the next.
wait_quiet() {
	local i b=100
	for ((i = 0; i < 20; i++)); do
		b=$(cpu_busy)
		[ "$b" -lt 15 ] && return 0
	done
	say "note: the machine stayed busy ($b% CPU): figures below may be inflated"
}

# --- inside a scenario's own network namespace -------------------------------------

GUESTS=()
stop_guests() {
	if [ ${#GUESTS[@]} -gt 0 ]; then
		kill "${GUESTS[@]}" 2>/dev/null || true
		wait "${GUESTS[@]}" 2>/dev/null || true
	fi
}

# Start $1 guests (appended to GUESTS); $2 = "noipv6" gives them IPv6 off, so that their
# links stay silent (no DAD, MLD or router solicitations flooded to every bridge port).
spawn_guests() {
	local n=$1 mode=${2:-} i first=${#GUESTS[@]}
	for ((i = 0; i < n; i++)); do
		if [ "$mode" = noipv6 ]; then
			unshare -n sh -c 'echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6; exec sleep 3600' \
				</dev/null >/dev/null 2>&1 &
		else
			unshare -n sleep 3600 </dev/null >/dev/null 2>&1 &
		fi
		GUESTS+=($!)
	done
	# Until unshare(2) has run, /proc/PID/ns/net is still ours.
	for ((i = first; i < ${#GUESTS[@]}; i++)); do
		while [[ /proc/${GUESTS[i]}/ns/net -ef /proc/$BASHPID/ns/net ]]; do sleep 0.005; done
	done
}

new_bridge() { ip link add "$1" type bridge && ip link set "$1" up; }

# ADDR/16 number $2 (1-based) in 10.$1.0.0/16; its gateway is 10.$1.0.1.
addr_of() { echo "10.$1.$(($2 / 250)).$(($2 % 250 + 2))/16"; }

# The `ip` script: the same steps as pipework, one command each (as a script would).
ip_attach() { # BRIDGE PID HOST_IF ADDR GATEWAY
	ip link add "$3" mtu 1500 master "$1" up type veth peer name eth1 netns "$2" mtu 1500
	nsenter -t "$2" -n ip addr add "$4" brd + dev eth1
	nsenter -t "$2" -n ip link set eth1 up
	nsenter -t "$2" -n ip route replace default via "$5" dev eth1
}

# The same work from as few `ip` processes as it takes: the veth from the host (its
# host end on the bridge, its guest end born in the guest), then one `ip -batch` in
# the guest for the address, the link up and the route. (One process cannot do both:
# `ip -n` needs a name under /var/run/netns, which this script never makes.)
ip_batch_attach() { # BRIDGE PID HOST_IF ADDR GATEWAY
	ip link add "$3" mtu 1500 master "$1" up type veth peer name eth1 netns "$2" mtu 1500
	printf 'addr add %s brd + dev eth1\nlink set eth1 up\nroute replace default via %s dev eth1\n' "$4" "$5" |
		nsenter -t "$2" -n ip -batch -
}

cni_conf() { # BRIDGE ADDR GATEWAY
	printf '{"cniVersion":"1.0.0","name":"pwbench","type":"bridge","bridge":"%s","isGateway":false,' "$1"
	printf '"ipMasq":false,"ipam":{"type":"static","addresses":[{"address":"%s","gateway":"%s"}],' "$2" "$3"
	printf '"routes":[{"dst":"0.0.0.0/0","gw":"%s"}]}}\n' "$3"
}

# (1) One attach to an existing bridge, static IPv4 + gateway, guest by pid:; the three
# contenders interleaved, each on its own bridge and guests.
scenario_single() {
	local n=$BENCH_RUNS i t0 t1
	new_bridge brpw && new_bridge brcni && new_bridge brip && new_bridge brbase && new_bridge brib
	spawn_guests $((5 * n))
	mkdir -p "$WORK/cni"
	for ((i = 1; i <= n; i++)); do cni_conf brcni "$(addr_of 12 "$i")" 10.12.0.1 >"$WORK/cni/$i.json"; done
	: >"$WORK/s1.pw"; : >"$WORK/s1.cni"; : >"$WORK/s1.ip"; : >"$WORK/s1.base"; : >"$WORK/s1.ipb"
	wait_quiet
	for ((i = 1; i <= n; i++)); do
		local g1=${GUESTS[i - 1]} g2=${GUESTS[n + i - 1]} g3=${GUESTS[2 * n + i - 1]} g4=${GUESTS[3 * n + i - 1]}
		local g5=${GUESTS[4 * n + i - 1]}
		if [ -n "${BASE:-}" ]; then
			t0=$EPOCHREALTIME
			"$BASE" brbase "pid:$g4" "$(addr_of 14 "$i")@10.14.0.1"
			t1=$EPOCHREALTIME; elapsed_us "$t0" "$t1" >>"$WORK/s1.base"
		fi
		t0=$EPOCHREALTIME
		"$PW" brpw "pid:$g1" "$(addr_of 11 "$i")@10.11.0.1"
		t1=$EPOCHREALTIME; elapsed_us "$t0" "$t1" >>"$WORK/s1.pw"
		t0=$EPOCHREALTIME
		CNI_COMMAND=ADD CNI_CONTAINERID="pwbench$i" CNI_NETNS="/proc/$g2/ns/net" CNI_IFNAME=eth1 \
			CNI_PATH=$CNI_DIR "$CNI_DIR/bridge" <"$WORK/cni/$i.json" >/dev/null
		t1=$EPOCHREALTIME; elapsed_us "$t0" "$t1" >>"$WORK/s1.cni"
		t0=$EPOCHREALTIME
		ip_attach brip "$g3" "vip$i" "$(addr_of 13 "$i")" 10.13.0.1
		t1=$EPOCHREALTIME; elapsed_us "$t0" "$t1" >>"$WORK/s1.ip"
		t0=$EPOCHREALTIME
		ip_batch_attach brib "$g5" "vib$i" "$(addr_of 15 "$i")" 10.15.0.1
		t1=$EPOCHREALTIME; elapsed_us "$t0" "$t1" >>"$WORK/s1.ipb"
	done
	# Each did its job: the last guest of each has its address and default route.
	for g in "${GUESTS[n - 1]}" "${GUESTS[2 * n - 1]}" "${GUESTS[3 * n - 1]}" "${GUESTS[5 * n - 1]}"; do
		nsenter -t "$g" -n ip -4 route show default | grep -q 'dev eth1' || { say "an attach did not land"; exit 1; }
	done
}

# (2) The same with real Docker containers resolved through the socket (by name), and on
# the same containers by pid: (a second interface, eth2), interleaved.
scenario_docker() {
	local i t0 t1 name pid
	new_bridge brdk
	: >"$WORK/s2.name"; : >"$WORK/s2.pid"
	wait_quiet
	i=0
	while read -r name pid; do
		i=$((i + 1))
		t0=$EPOCHREALTIME
		"$PW" brdk "$name" "$(addr_of 14 "$i")@10.14.0.1"
		t1=$EPOCHREALTIME; elapsed_us "$t0" "$t1" >>"$WORK/s2.name"
		t0=$EPOCHREALTIME
		"$PW" brdk -i eth2 "pid:$pid" "$(addr_of 14 $((i + 500)))@10.14.0.1"
		t1=$EPOCHREALTIME; elapsed_us "$t0" "$t1" >>"$WORK/s2.pid"
	done <"$WORK/containers"
}

# (3) BENCH_GUESTS guests attached one after another to one bridge: $1 = by what
# (pw: pipework; cni: the CNI bridge plugin, static IPAM; floor: bench_floor
# --announce, one process per attach, the bare requests of the same work; quiet: the
# same floor without the announcement, which the CNI plugin does not make), $2 =
# guest mode. After pipework's: `ls`, `check` of the last guest and `gc --dry-run`
# with all of them attached, timed (ls three times).
scenario_sequential() {
	local n=$BENCH_GUESTS i t0 t1 g a out=$WORK/s3.$1.$2
	new_bridge br3
	spawn_guests "$n" "$2"
	: >"$out"
	if [ "$1" = cni ]; then
		mkdir -p "$WORK/cni3"
		for ((i = 1; i <= n; i++)); do cni_conf br3 "$(addr_of 16 "$i")" 10.16.0.1 >"$WORK/cni3/$i.json"; done
	fi
	wait_quiet
	for ((i = 1; i <= n; i++)); do
		g=${GUESTS[i - 1]} a=$(addr_of 16 "$i")
		t0=$EPOCHREALTIME
		case $1 in
		pw) "$PW" br3 "pid:$g" "$a@10.16.0.1" ;;
		cni)
			CNI_COMMAND=ADD CNI_CONTAINERID="pwbench3-$i" CNI_NETNS="/proc/$g/ns/net" CNI_IFNAME=eth1 \
				CNI_PATH=$CNI_DIR "$CNI_DIR/bridge" <"$WORK/cni3/$i.json" >/dev/null
			;;
		floor) "$FLOOR" br3 --announce <<<"$g $a 10.16.0.1" ;;
		*) "$FLOOR" br3 <<<"$g $a 10.16.0.1" ;;
		esac
		t1=$EPOCHREALTIME; elapsed_us "$t0" "$t1" >>"$out"
	done
	if [ "$1" = pw ] && [ "$2" = default ]; then
		# Once the kernel is done with the last guests' links (their DAD, MLD and router
		# solicitations, flooded to every port), which is not the reading's cost.
		wait_quiet
		: >"$WORK/s3.ls"
		for i in 1 2 3; do
			t0=$EPOCHREALTIME
			"$PW" ls >"$WORK/s3.ls.out"
			t1=$EPOCHREALTIME; elapsed_us "$t0" "$t1" >>"$WORK/s3.ls"
		done
		local listed
		listed=$(grep -c ' ok$' "$WORK/s3.ls.out" || true)
		[ "$listed" = "$n" ] || { say "ls: $listed attachments ok, expected $n"; exit 1; }
		t0=$EPOCHREALTIME
		"$PW" check "pid:${GUESTS[n - 1]}"
		t1=$EPOCHREALTIME; elapsed_us "$t0" "$t1" >"$WORK/s3.check"
		t0=$EPOCHREALTIME
		"$PW" gc --dry-run >/dev/null
		t1=$EPOCHREALTIME; elapsed_us "$t0" "$t1" >"$WORK/s3.gc"
	fi
}

# (4) BENCH_GUESTS attachments at once to a fresh bridge: $1 = how (batch: pipework
# --batch; floor: bench_floor, the bare netlink requests; floor-announce: the same plus
# the announcement; ip-batch: `ip -batch`, links only), $2 = guest mode.
scenario_many() {
	local n=$BENCH_GUESTS i t0 t1 out=$WORK/s4.$1.$2 lines=$WORK/lines.$1.$2
	new_bridge br4
	spawn_guests "$n" "$2"
	: >"$lines"
	for ((i = 1; i <= n; i++)); do
		local g=${GUESTS[i - 1]} a
		a=$(addr_of 17 "$i")
		case $1 in
		batch) echo "br4 pid:$g $a@10.17.0.1" ;;
		floor*) echo "$g $a 10.17.0.1" ;;
		ip-batch) echo "link add vb$i mtu 1500 master br4 up type veth peer name eth1 netns $g mtu 1500" ;;
		esac >>"$lines"
	done
	wait_quiet
	t0=$EPOCHREALTIME
	case $1 in
	batch) /usr/bin/time -f '%M' -o "$WORK/s4.rss.$2" "$PW" --batch "$lines" >"$WORK/s4.out" ;;
	floor) "$FLOOR" br4 <"$lines" ;;
	floor-announce) "$FLOOR" br4 --announce <"$lines" ;;
	ip-batch) ip -batch "$lines" ;;
	esac
	t1=$EPOCHREALTIME
	elapsed_us "$t0" "$t1" >"$out"
	local ports
	ports=$(ip -o link show master br4 | wc -l)
	[ "$ports" = "$n" ] || { say "$1: $ports ports on the bridge, expected $n"; exit 1; }
}

# (5) Peak RSS of one attach, the largest of five.
scenario_rss() {
	local i
	new_bridge br5
	spawn_guests 5
	for ((i = 1; i <= 5; i++)); do
		/usr/bin/time -f '%M' -a -o "$WORK/s5.rss" "$PW" br5 "pid:${GUESTS[i - 1]}" "$(addr_of 18 "$i")@10.18.0.1"
	done
}

if [ "${1:-}" = --inner ]; then
	trap stop_guests EXIT
	shift
	"scenario_$1" "${@:2}"
	exit 0
fi

# --- outside: build, install, run each scenario in its own namespace, report -------

[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root (it creates namespaces)" >&2; exit 1; }
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
export BENCH_RUNS=${BENCH_RUNS:-100} BENCH_DOCKER=${BENCH_DOCKER:-20} BENCH_GUESTS=${BENCH_GUESTS:-1000}

need=()
[ -x "$CNI_DIR/bridge" ] && [ -x "$CNI_DIR/static" ] || need+=(containernetworking-plugins)
[ -x /usr/bin/time ] || need+=(time)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null && command -v nsenter >/dev/null || need+=(util-linux)
# The bench_floor example builds with the dev-dependencies, k8s-cri among them, whose
# build script compiles CRI's .proto files with protoc.
command -v protoc >/dev/null || need+=(protobuf-compiler)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=300 -qq update
	apt-get -o DPkg::Lock::Timeout=300 -y -qq install --no-install-recommends "${need[@]}" >/dev/null
fi

say "building (cargo build --release)"
cargo build --release --quiet
cargo build --release --quiet --example bench_floor
WORK=$(mktemp -d /tmp/pipework-bench.XXXXXX)
# Private copies: another build in this tree must not swap the binary mid-run.
cp target/release/pipework "$WORK/pipework"
cp target/release/examples/bench_floor "$WORK/bench_floor"
export WORK PW=$WORK/pipework FLOOR=$WORK/bench_floor BASE=
if [ -n "${BENCH_BASELINE:-}" ]; then
	cp "$BENCH_BASELINE" "$WORK/baseline"
	BASE=$WORK/baseline
fi

containers=()
cleanup() {
	if [ ${#containers[@]} -gt 0 ]; then docker rm -f "${containers[@]}" >/dev/null 2>&1 || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# Each scenario in a namespace of its own, with a run directory of its own (records,
# intents, locks): a fresh host each time, and nothing left in /run/pipework.
inner() { PIPEWORK_RUN_DIR=$(mktemp -d "$WORK/run.XXXXXX") unshare -n bash "$0" --inner "$@"; }

say "(1) one attach: pipework, CNI bridge plugin, ip script${BASE:+, baseline} ($BENCH_RUNS each)"
inner single
if [ -n "${BENCH_ONLY:-}" ]; then
	read -r pw_m pw_10 pw_90 < <(stats "$WORK/s1.pw")
	printf '(1) %-28s %8s %8s %8s\n' "" median p10 p90
	printf '(1) %-28s %8s %8s %8s\n' "pipework" "$pw_m" "$pw_10" "$pw_90"
	for f in cni ip ipb base; do
		[ -s "$WORK/s1.$f" ] || continue
		read -r m p10 p90 < <(stats "$WORK/s1.$f")
		printf '(1) %-28s %8s %8s %8s\n' "$f" "$m" "$p10" "$p90"
	done
	exit 0
fi

docker_ok=1
if scripts/docker-up.sh >/dev/null 2>&1; then
	say "(2) Docker: starting $BENCH_DOCKER busybox containers"
	for ((i = 1; i <= BENCH_DOCKER; i++)); do
		name=pwbench-$$-$i
		docker run -d --init --network none --name "$name" busybox sleep 3600 >/dev/null
		containers+=("$name")
		echo "$name $(docker inspect -f '{{.State.Pid}}' "$name")" >>"$WORK/containers"
	done
	inner docker
else
	docker_ok=0
	say "(2) skipped: no Docker daemon (scripts/docker-up.sh failed)"
fi

for run in "pw default" "cni default" "floor default" "quiet default" \
	"pw noipv6" "cni noipv6" "floor noipv6" "quiet noipv6"; do
	say "(3) $BENCH_GUESTS guests one after another: $run"
	# shellcheck disable=SC2086 # "WHO MODE": two words on purpose
	inner sequential $run
done
for run in "batch default" "floor-announce default" "floor default" "ip-batch default" \
	"batch noipv6" "floor-announce noipv6" "floor noipv6"; do
	say "(4) $BENCH_GUESTS at once: $run"
	# shellcheck disable=SC2086 # "HOW MODE": two words on purpose
	inner many $run
done
say "(5) peak RSS"
inner rss

# --- the report ---------------------------------------------------------------------

ms() { awk '{ printf "%.2f", $1 / 1000 }' "$1"; }
s() { awk '{ printf "%.2f", $1 / 1000000 }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
read -r pw_m pw_10 pw_90 < <(stats "$WORK/s1.pw")
read -r cni_m cni_10 cni_90 < <(stats "$WORK/s1.cni")
read -r ip_m ip_10 ip_90 < <(stats "$WORK/s1.ip")
read -r ipb_m ipb_10 ipb_90 < <(stats "$WORK/s1.ipb")
last=$((BENCH_GUESTS - 99))
echo
echo "pipework benchmark: $(nproc) CPUs, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "load average before the run: $load_at_start (other work on the machine inflates the figures)"
echo "wall time per command, including its fork and exec; ms unless said"
echo
echo "(1) one attach, existing bridge, static IPv4 + gateway, guest by pid: ($BENCH_RUNS runs each)"
printf '    %-28s %8s %8s %8s\n' "" median p10 p90
printf '    %-28s %8s %8s %8s\n' "pipework" "$pw_m" "$pw_10" "$pw_90"
printf '    %-28s %8s %8s %8s\n' "CNI bridge plugin (static)" "$cni_m" "$cni_10" "$cni_90"
printf '    %-28s %8s %8s %8s\n' "ip script (4 commands)" "$ip_m" "$ip_10" "$ip_90"
printf '    %-28s %8s %8s %8s\n' "ip + ip -batch in the guest" "$ipb_m" "$ipb_10" "$ipb_90"
if [ -s "$WORK/s1.base" ]; then
	read -r b_m b_10 b_90 < <(stats "$WORK/s1.base")
	printf '    %-28s %8s %8s %8s\n' "baseline ($BENCH_BASELINE)" "$b_m" "$b_10" "$b_90"
fi
echo "    CNI / pipework = $(ratio "$cni_m" "$pw_m"), ip -batch / pipework = $(ratio "$ipb_m" "$pw_m")," \
	"ip script / pipework = $(ratio "$ip_m" "$pw_m") (targets: <= 2.5 ms, CNI / pipework >= 3.5)"
if [ -s "$WORK/s1.base" ]; then echo "    baseline / pipework = $(ratio "$b_m" "$pw_m")"; fi
if [ "$docker_ok" = 1 ]; then
	read -r dn_m dn_10 dn_90 < <(stats "$WORK/s2.name")
	read -r dp_m dp_10 dp_90 < <(stats "$WORK/s2.pid")
	echo
	echo "(2) Docker containers ($BENCH_DOCKER), resolved through the Engine API socket"
	printf '    %-28s %8s %8s %8s\n' "by name" "$dn_m" "$dn_10" "$dn_90"
	printf '    %-28s %8s %8s %8s\n' "same containers, by pid:" "$dp_m" "$dp_10" "$dp_90"
	echo "    by name - (1) pipework = $(awk -v a="$dn_m" -v b="$pw_m" 'BEGIN { printf "%.2f", a - b }') ms (target: <= 3 ms)"
fi
echo
echo "(3) $BENCH_GUESTS guests attached one after another to one bridge (median of 100)"
for mode in default noipv6; do
	label="guests as created"
	[ "$mode" = noipv6 ] && label="guests with IPv6 off"
	echo "    $label:"
	for who in pw cni floor quiet; do
		read -r f _ < <(stats "$WORK/s3.$who.$mode" 1 100)
		read -r l _ < <(stats "$WORK/s3.$who.$mode" "$last" "$BENCH_GUESTS")
		eval "first_$who=$f last_$who=$l"
		name="pipework"
		[ "$who" = cni ] && name="CNI bridge plugin (static)"
		[ "$who" = floor ] && name="floor (same requests)"
		[ "$who" = quiet ] && name="floor, no announcement"
		printf '      %-26s first 100 %6s, last 100 %6s, last/first %s\n' "$name" "$f" "$l" "$(ratio "$l" "$f")"
	done
	# shellcheck disable=SC2154 # set by the eval above
	echo "      CNI / pipework: first 100 $(ratio "$first_cni" "$first_pw"), last 100 $(ratio "$last_cni" "$last_pw")"
done
echo "    (targets: CNI / pipework >= 2.5 at the last 100, pipework's last/first <= CNI's;"
echo "     the floors are bench_floor with and without --announce, one process per attach)"
echo "    with $BENCH_GUESTS attached: ls $(stats "$WORK/s3.ls" | cut -d' ' -f1) ms (median of 3; target < 100 ms)," \
	"check of one guest $(ms "$WORK/s3.check") ms, gc --dry-run $(ms "$WORK/s3.gc") ms"
echo
echo "(4) $BENCH_GUESTS attachments at once to a fresh bridge (seconds, total)"
printf '    %-44s %12s %16s\n' "" "guests as created" "with IPv6 off"
row() { printf '    %-44s %12s %16s\n' "$1" "$(s "$WORK/s4.$2.default")" "$([ -f "$WORK/s4.$2.noipv6" ] && s "$WORK/s4.$2.noipv6" || echo -)"; }
row "pipework --batch" batch
row "floor: same requests + announcement" floor-announce
row "floor: same requests, no announcement" floor
row "ip -batch, links only (guest ends down)" ip-batch
echo "    (target: <= 2.5 s; the floors are one bare netlink loop, examples/bench_floor.rs)"
echo
echo "(5) peak RSS of one attach: $(sort -n "$WORK/s5.rss" | tail -1) KiB;" \
	"of --batch with $BENCH_GUESTS lines: $(cat "$WORK/s4.rss.default") KiB (target: <= 10 MiB)"
