# lib.sh: helpers for the tests under tests/vm, sourced before each one.
# A namespace is held by a sleeping process (its PID names it); nothing goes
# under /var/run/netns. `pw HOST ARGS` runs pipework with HOST's namespace as its
# host. A failed check exits the test with a line saying what differed.
set -eu
HELD=""
# The test's own status stays its exit status (a kill of one gone already fails).
trap 'rc=$?; for p in $HELD; do kill "$p" 2>/dev/null || true; done; exit $rc' EXIT

# The real iproute2 (busybox runs its own applet for a bare name, see vm-test.sh).
ip() { /usr/sbin/ip "$@"; }
bridge() { /usr/sbin/bridge "$@"; }

fail() { echo "FAILED: $*"; exit 1; }
report() { echo "report: $*"; }

# ns VAR: a new network namespace (lo up); its holder's PID in $VAR.
ns() {
	unshare -n sleep 100000 &
	_p=$!
	HELD="$HELD $_p"
	while [ "$(readlink /proc/$_p/ns/net 2>/dev/null)" = "$(readlink /proc/self/ns/net)" ]; do usleep 10000; done
	at "$_p" ip link set lo up
	eval "$1=$_p"
}

# at PID CMD...: CMD in PID's network namespace.
at() {
	_p=$1; shift
	case $1 in ip | bridge) _c=/usr/sbin/$1; shift; set -- "$_c" "$@" ;; esac
	nsenter -t "$_p" -n "$@"
}

# pw HOST ARGS...: pipework run in HOST's namespace (`-` for the VM's own).
pw() {
	_h=$1; shift
	if [ "$_h" = - ]; then pipework "$@"; else at "$_h" pipework "$@"; fi
}

# ok CMD...: CMD must succeed; no CMD...: must fail.
ok() { "$@" || fail "$* failed ($?)"; }
no() { if "$@" >/dev/null 2>&1; then fail "$* succeeded"; fi; }

# pings PID ADDR: one ping from PID's namespace to ADDR answers (within 2 s).
pings() { at "$1" ping -c 1 -W 2 "$2" >/dev/null 2>&1; }

# ping_matrix "NAME ADDR WANT"...: from the namespace of each guest NAME (the
# variable holding its PID), one ping to ADDR must get WANT (1 answered, 0 not);
# " NAME->ADDR:GOT" for each pair in $matrix, for the report.
ping_matrix() {
	matrix=""
	for _pair in "$@"; do
		set -- $_pair
		eval "_pid=\$$1"
		if pings "$_pid" "$2"; then _got=1; else _got=0; fi
		matrix="$matrix $1->$2:$_got"
		[ "$_got" = "$3" ] || fail "$1 -> $2: expected $3, got $_got"
	done
}

# vlan_wire HOST NIC FAR VID ADDR OTHER OTHER_VID OTHER_ADDR: NIC (up, in HOST) is
# one end of a veth whose other end, wire, is in FAR with the VLAN device wire.VID
# (ADDR) on it; wire.OTHER_VID (OTHER_ADDR) is moved into namespace OTHER, for
# routes of its own in the same subnet. All up.
vlan_wire() {
	at "$1" ip link add "$2" type veth peer name wire netns "/proc/$3/ns/net"
	at "$1" ip link set "$2" up
	at "$3" ip link set wire up
	at "$3" ip link add link wire name "wire.$4" type vlan id "$4"
	at "$3" ip link add link wire name "wire.$7" type vlan id "$7"
	at "$3" ip addr add "$5" dev "wire.$4"
	at "$3" ip link set "wire.$7" netns "/proc/$6/ns/net"
	at "$6" ip addr add "$8" dev "wire.$7"
	at "$3" ip link set "wire.$4" up
	at "$6" ip link set "wire.$7" up
}

# same WHAT EXPECTED ACTUAL
same() { [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"; }

# links PID: the namespace's links (name, kind, master), one a line, sorted.
links() { at "$1" ip -o -d link show | awk -F': ' '{print $2}' | sort; }

# has_link PID NAME / lacks_link PID NAME
has_link() { at "$1" ip link show "$2" >/dev/null 2>&1 || fail "no $2 in $1"; }
lacks_link() { if at "$1" ip link show "$2" >/dev/null 2>&1; then fail "$2 still in $1"; fi; }

# guest VAR: a guest namespace held by a process, for `pid:N`.
guest() { ns "$1"; }
