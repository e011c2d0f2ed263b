# The host shim on a VLAN device: `pipework eth2 GUEST ADDR @10 --host-shim` puts
# the guest's macvlan on eth2.10 and the shim beside it, on the same eth2.10. The
# host's address in the guest's subnet (10.0.0.100, on eth2.10) and its default
# route move to the shim; the host then reaches its guests, which still reach each
# other and the far end of the wire (wire.10, 10.0.0.1, tagged 10). After both
# `del`s the host is as before: its address and route back on eth2.10, no shim,
# and eth2.10 (made before pipework) still there.
ns host; ns far; ns far20
vlan_wire "$host" eth2 "$far" 10 10.0.0.1/24 "$far20" 20 10.0.0.11/24
at "$host" ip link add link eth2 name eth2.10 type vlan id 10
at "$host" ip addr add 10.0.0.100/24 dev eth2.10
at "$host" ip link set eth2.10 up
at "$host" ip route add default via 10.0.0.1 dev eth2.10
# A snapshot of the host's addresses and routes (the shim's moves are in them).
state() { at "$host" ip -4 -o addr show | awk '{print $2, $4}'; at "$host" ip -4 route show | sort; }
before=$(state)
guest g1; guest g2

# Without the shim: the kernel passes nothing between eth2.10 and its macvlan.
ok pw "$host" eth2 "pid:$g1" 10.0.0.2/24 @10
ping_matrix "host 10.0.0.2 0" "g1 10.0.0.1 1"
report "eth2.10 macvlan without --host-shim (host 10.0.0.100 on eth2.10, g1 .2):$matrix"
ok pw "$host" del "pid:$g1"

ok pw "$host" eth2 "pid:$g1" 10.0.0.2/24 @10 --host-shim
ok pw "$host" eth2 "pid:$g2" 10.0.0.3/24 @10 --host-shim
shim=$(at "$host" ip -d -o link show pwshim-eth2.10)
case $shim in *"pwshim-eth2.10@eth2.10:"*"macvlan mode bridge"*) ;; *) fail "no bridge-mode shim on eth2.10: $shim" ;; esac
at "$host" ip -4 -o addr show dev pwshim-eth2.10 | grep -q '10.0.0.100/24' || fail "10.0.0.100 is not on the shim: $(state)"
at "$host" ip -4 route show default | grep -q 'dev pwshim-eth2.10' || fail "the default route is not through the shim: $(state)"
ping_matrix "host 10.0.0.2 1" "host 10.0.0.3 1" "g1 10.0.0.3 1" "g2 10.0.0.2 1" "g1 10.0.0.1 1" "host 10.0.0.1 1" \
	"g1 10.0.0.100 1"
report "eth2.10 macvlan with --host-shim (pwshim-eth2.10 10.0.0.100, g1 .2, g2 .3, far wire.10 .1):$matrix"
pw "$host" ls | grep "pid:$g1" | grep -q pwshim-eth2.10 || fail "ls shows no shim: $(pw "$host" ls)"

ok pw "$host" del "pid:$g1"
has_link "$host" pwshim-eth2.10
ok pw "$host" del "pid:$g2"
lacks_link "$host" pwshim-eth2.10
has_link "$host" eth2.10
same "host after both dels" "$before" "$(state)"
ping_matrix "host 10.0.0.1 1"
