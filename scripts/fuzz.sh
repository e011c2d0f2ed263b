#!/usr/bin/env bash
# fuzz.sh: a bounded cargo-fuzz run of the command-line grammar (`cli`), the
# --batch line parser (`batch`), `watch`'s declarations (`watch`) and a DHCPv4 lease's
# options as the built-in client checks them (`lease`), seeded from
# the README's examples and bad leases (fuzz/seeds/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 600 s in all, shared by cli, batch, watch and lease
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). One
# libFuzzer process at a time (the machines are shared). Prints, per target, the
# executions and the crashes (their inputs are kept in fuzz/artifacts/TARGET/);
# exits 1 if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

total=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cli batch watch lease)
per=$((total / ${#targets[@]}))

cargo +nightly fuzz build -O
status=0
for t in "${targets[@]}"; do
	mkdir -p "corpus/$t" "artifacts/$t"
	before=$(find "artifacts/$t" -type f | wc -l)
	log=$(mktemp)
	# corpus/$t gathers what libFuzzer finds; seeds/$t is read only.
	rc=0
	cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
		-max_total_time="$per" -print_final_stats=1 >"$log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	[ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
	crashes=$(($(find "artifacts/$t" -type f | wc -l) - before))
	echo "fuzz.sh: $t: ${runs:-?} executions in ${per} s, $crashes crash(es), libFuzzer exit $rc"
	if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
		grep -E 'panicked|ERROR: libFuzzer|Test unit written' "$log" | head -5 | sed 's/^/    /'
		status=1
	fi
	rm -f "$log"
done
exit "$status"
