#!/usr/bin/env bash
# fault-sweep.sh: issue 11's fault-injection sweep. For each scenario, every
# occurrence K (in a clean run) of each syscall, under each errno: a fresh world,
# `strace -f -e inject=SYSCALL:error=ERRNO:when=K pipework ...`, and a verdict
# (full attachment + exit 0, or exit 1 + ip -j snapshots as before; else partial,
# debris, panic, other status, /var/run/netns leftovers). Prints a table per
# scenario and verdict, examples of each bad verdict, and every bad case.
#
#   scripts/fault-sweep.sh [--scenarios a,b] [--syscalls x,y] [--errnos E,F]
#                          [--cap N] [--jobs N] [--timeout S] [--only-k K]
#
# scenarios: new-bridge existing-bridge ipv6 macvlan direct-phys batch (default all);
# syscalls: default sendto,sendmsg,recvfrom,recvmsg,setns,socket,epoll_ctl;
# errnos: default ENOBUFS,EIO,EPERM; --cap: at most N occurrences per syscall;
# --jobs: runs at once (default 2); --only-k: just occurrence K (to reproduce one case).
# Root, strace. Everything happens in throw-away namespaces. The whole sweep (~1500
# runs) takes about 6 minutes on 2 CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "fault-sweep.sh: needs root" >&2; exit 1; }
command -v strace >/dev/null || { echo "fault-sweep.sh: needs strace (apt-get install strace)" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
	--scenarios) export FAULT_SCENARIOS="$2" ;;
	--syscalls) export FAULT_SYSCALLS="$2" ;;
	--errnos) export FAULT_ERRNOS="$2" ;;
	--cap) export FAULT_CAP="$2" ;;
	--jobs) export FAULT_JOBS="$2" ;;
	--timeout) export FAULT_TIMEOUT="$2" ;;
	--only-k) export FAULT_ONLY_K="$2" ;;
	*) echo "fault-sweep.sh: unknown option $1" >&2; exit 1 ;;
	esac
	shift 2
done
exec cargo test --locked --test it faults::sweep::fault_sweep -- --ignored --exact --nocapture
