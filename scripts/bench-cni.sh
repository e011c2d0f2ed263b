#!/usr/bin/env bash
# bench-cni.sh: one CNI ADD by pipework against one ADD by the CNI reference `bridge`
# plugin, the same network configuration but for "type", the same harness, the two
# interleaved in one run. Run as root on Debian:
#
#     scripts/bench-cni.sh
#
# In a throw-away "host" network namespace (the script re-runs itself under
# `unshare -n`), to an existing bridge each: with static IPAM (Debian's `static`
# plugin, exec'd by both) and a default route, and without IPAM (the plugins
# alone); guests are `unshare -n sleep` processes, stopped by PID at the end.
# A third pair leases from a pool: pipework with its built-in `pipework-pool`
# against the bridge plugin with `host-local` (exec'd), the same range and keys.
# pipework is the build the Debian package ships (static, as scripts/package.sh makes
# it: what a CNI plugin directory gets); BENCH_BUILD=dynamic measures the plain
# `cargo build --release` instead (its loader's relocations add ~0.3 ms a start).
# BENCH_RUNS (100) ADDs per contender and configuration. BENCH_BASELINE=BINARY adds
# an earlier pipework build as a third contender (rows "pipework before"), to show
# a change's effect in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C
CNI_DIR=/usr/lib/cni
RUNS=${BENCH_RUNS:-100}
BASELINE=${BENCH_BASELINE:-}

elapsed_us() { echo $((${2/./} - ${1/./})); }

# "median p10 p90" in ms of the microsecond figures in file $1.
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		printf "%.2f %.2f %.2f\n", v[int((NR + 1) / 2)] / 1000, v[int(NR * 0.1) + 1] / 1000, v[int(NR * 0.9)] / 1000 }'
}

pool_conf() { # TYPE BRIDGE IPAM DATADIR
	printf '{"cniVersion":"1.0.0","name":"benchpool%s","type":"%s","bridge":"%s","isGateway":false,' "$1" "$1" "$2"
	printf '"ipMasq":false,"ipam":{"type":"%s","ranges":[[{"subnet":"10.128.0.0/16"}]],' "$3"
	printf '"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"%s"}}\n' "$4"
}

conf() { # TYPE BRIDGE [ADDR GATEWAY]
	printf '{"cniVersion":"1.0.0","name":"bench%s","type":"%s","bridge":"%s","isGateway":false,' "$1" "$1" "$2"
	if [ $# -lt 4 ]; then printf '"ipMasq":false}\n'; return; fi
	printf '"ipMasq":false,"ipam":{"type":"static","addresses":[{"address":"%s","gateway":"%s"}],' "$3" "$4"
	printf '"routes":[{"dst":"0.0.0.0/0","gw":"%s"}]}}\n' "$4"
}

# Time one ADD of plugin $1 with config $2 into guest $3 (container id $4), to file $5.
timed() {
	local t0 t1
	t0=$EPOCHREALTIME
	add "$1" "$2" "$3" "$4"
	t1=$EPOCHREALTIME
	elapsed_us "$t0" "$t1" >>"$5"
}

add() { # PLUGIN CONF GUEST_PID CONTAINER_ID
	CNI_COMMAND=ADD CNI_CONTAINERID="$4" CNI_NETNS="/proc/$3/ns/net" CNI_IFNAME=eth0 \
		CNI_PATH=$CNI_DIR "$1" <"$2" >/dev/null
}

inner() {
	local work=$1 pw=$2 base=${3:-} i n=6
	[ -z "$base" ] || n=8
	# Global, not local: the EXIT trap runs after this function has returned (a local
	# array is gone by then, and every guest was left running).
	guests=()
	trap 'for p in "${guests[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
	for br in brpw brref brpw0 brref0 brbase brbase0 brpwp brrefp; do ip link add "$br" type bridge && ip link set "$br" up; done
	for ((i = 0; i < n * RUNS; i++)); do
		unshare -n sleep 3600 </dev/null >/dev/null 2>&1 &
		guests+=($!)
	done
	sleep 1
	conf pipework brpw0 >"$work/pw0.json"
	conf bridge brref0 >"$work/ref0.json"
	conf pipework brbase0 >"$work/base0.json"
	pool_conf pipework brpwp pipework-pool "$work/ipam" >"$work/pwp.json"
	pool_conf bridge brrefp host-local "$work/ipam" >"$work/refp.json"
	for ((i = 1; i <= RUNS; i++)); do
		local addr="10.$((i / 250 + 20)).$((i % 250 + 2)).$((i % 200 + 2))/8"
		conf pipework brpw "$addr" 10.0.0.1 >"$work/pw.json"
		conf bridge brref "$addr" 10.0.0.1 >"$work/ref.json"
		conf pipework brbase "$addr" 10.0.0.1 >"$work/base.json"
		# With a baseline, the two builds swap places every other run: a run right
		# after one of the same binary is faster (warm caches), whichever build it is.
		local a=pw b=base
		if [ -n "$base" ] && ((i % 2 == 0)); then a=base b=pw; fi
		local -A bin=([pw]=$pw [base]=$base)
		timed "${bin[$a]}" "$work/$a.json" "${guests[i - 1]}" "$a$i" "$work/$a"
		timed "$CNI_DIR/bridge" "$work/ref.json" "${guests[RUNS + i - 1]}" "ref$i" "$work/ref"
		timed "${bin[$a]}" "$work/${a}0.json" "${guests[2 * RUNS + i - 1]}" "${a}0-$i" "$work/${a}0"
		timed "$CNI_DIR/bridge" "$work/ref0.json" "${guests[3 * RUNS + i - 1]}" "ref0-$i" "$work/ref0"
		timed "$pw" "$work/pwp.json" "${guests[4 * RUNS + i - 1]}" "pwp$i" "$work/pwp"
		timed "$CNI_DIR/bridge" "$work/refp.json" "${guests[5 * RUNS + i - 1]}" "refp$i" "$work/refp"
		[ -n "$base" ] || continue
		timed "${bin[$b]}" "$work/$b.json" "${guests[6 * RUNS + i - 1]}" "$b$i" "$work/$b"
		timed "${bin[$b]}" "$work/${b}0.json" "${guests[7 * RUNS + i - 1]}" "${b}0-$i" "$work/${b}0"
	done
	# Each did its job: the last guests have eth0 (and a default route through it).
	for g in "${guests[RUNS - 1]}" "${guests[2 * RUNS - 1]}" "${guests[5 * RUNS - 1]}" "${guests[6 * RUNS - 1]}"; do
		nsenter -t "$g" -n ip -4 route show default | grep -q 'dev eth0' || { echo "an ADD did not land" >&2; exit 1; }
	done
	for g in "${guests[3 * RUNS - 1]}" "${guests[4 * RUNS - 1]}"; do
		nsenter -t "$g" -n ip link show eth0 >/dev/null || { echo "an ADD did not land" >&2; exit 1; }
	done
}

if [ "${1:-}" = --inner ]; then
	shift
	inner "$@"
	exit 0
fi

[ -x "$CNI_DIR/bridge" ] || apt-get -o DPkg::Lock::Timeout=300 -y -qq install containernetworking-plugins >/dev/null
if [ "${BENCH_BUILD:-static}" = dynamic ]; then
	cargo build --release --quiet
	PW=$PWD/target/release/pipework
else
	target=$(uname -m)-unknown-linux-gnu
	RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --quiet --target "$target"
	PW=$PWD/target/$target/release/pipework
fi
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d /tmp/bench-cni.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# Records and CNI state of pipework's in the throw-away directory, not /run/pipework.
PIPEWORK_RUN_DIR=$WORK/run unshare -n bash "$0" --inner "$WORK" "$PW" "$BASELINE"
echo "CNI ADD to an existing bridge: $RUNS runs each, interleaved, pipework's ${BENCH_BUILD:-static} build; $(nproc) CPUs, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "load average before the run: $LOAD (other work on the machine inflates the figures)"
printf '    %-40s %8s %8s %8s\n' "" median p10 p90
rows=("pw:pipework, static IPAM + default route" "ref:bridge plugin, static IPAM + default route"
	"pw0:pipework, no IPAM" "ref0:bridge plugin, no IPAM"
	"pwp:pipework, pipework-pool + route" "refp:bridge plugin, host-local + route")
[ -z "$BASELINE" ] || rows+=("base:pipework before, static IPAM + route" "base0:pipework before, no IPAM")
for row in "${rows[@]}"; do
	read -r m p10 p90 < <(stats "$WORK/${row%%:*}")
	printf '    %-40s %8s %8s %8s\n' "${row#*:}" "$m" "$p10" "$p90"
	eval "m_${row%%:*}=$m"
done
# shellcheck disable=SC2154 # set by the eval above
awk -v a="$m_pw" -v b="$m_ref" -v c="$m_pw0" -v d="$m_ref0" \
	'BEGIN { printf "    pipework / bridge plugin: %.2f with static IPAM, %.2f without\n", a / b, c / d }'
# shellcheck disable=SC2154 # set by the eval above
awk -v a="$m_pwp" -v b="$m_refp" \
	'BEGIN { printf "    pipework + pipework-pool / bridge plugin + host-local: %.2f\n", a / b }'
# shellcheck disable=SC2154 # set by the eval above
[ -z "$BASELINE" ] || awk -v a="$m_pw" -v b="$m_base" -v c="$m_pw0" -v d="$m_base0" \
	'BEGIN { printf "    pipework / pipework before: %.2f with static IPAM, %.2f without\n", a / b, c / d }'
