#!/usr/bin/env bash
# crash-sweep.sh: issue 23's kill sweep. For each scenario (those of the fault
# sweep), every occurrence K (in a clean run) of each syscall: pipework killed by
# `strace -f -e inject=SYSCALL:signal=KILL:when=K`, then in fresh worlds:
# (a) the same command again must attach whole, and `del` give the state from
# before; (b) `del` at once must give the state from before; (c) `gc` exit 0.
# Prints each bad kill point and a summary line.
#
#   scripts/crash-sweep.sh [--scenarios a,b] [--syscalls x,y] [--cap N]
#
# scenarios: new-bridge existing-bridge ipv6 macvlan direct-phys batch ovs-tag dhcp4-f
# host-shim cni-add (default all; cni-add is judged by (d): the runtime's DEL leaves
# the host as before and host-local's store empty, then ADD succeeds);
# syscalls: default sendto,sendmsg,openat,rename,unlink; --cap: at most N
# occurrences per syscall. Root, strace; everything in throw-away namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "crash-sweep.sh: needs root" >&2; exit 1; }
command -v strace >/dev/null || { echo "crash-sweep.sh: needs strace (apt-get install strace)" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
	--scenarios) export CRASH_SCENARIOS="$2" ;;
	--syscalls) export CRASH_SYSCALLS="$2" ;;
	--cap) export CRASH_CAP="$2" ;;
	*) echo "crash-sweep.sh: unknown option $1" >&2; exit 1 ;;
	esac
	shift 2
done
exec cargo test --locked --test it faults::crash::crash_sweep -- --ignored --exact --nocapture
