# 802.1Q on a NIC, end to end: `pipework eth2 GUEST ADDR @VID` makes eth2.VID and a
# macvlan on it. eth2 is one end of a veth whose other end, `wire`, sits in a far
# namespace with VLAN device wire.10 (10.0.0.1); its wire.20 (10.0.0.11, same
# subnet) is moved to a namespace of its own, far20, for its own routes. Two
# guests on VLAN 10 reach each other and the far end, tagged 10 on the wire; a
# guest on VLAN 20 reaches its far end and none of them. `del` of the last user
# removes eth2.VID; one still used stays.
ns host; ns far; ns far20
vlan_wire "$host" eth2 "$far" 10 10.0.0.1/24 "$far20" 20 10.0.0.11/24
guest g1; guest g2; guest g3
ok pw "$host" eth2 "pid:$g1" 10.0.0.2/24 @10
ok pw "$host" eth2 "pid:$g2" 10.0.0.3/24 @10
ok pw "$host" eth2 "pid:$g3" 10.0.0.4/24 @20
same "eth2.10" "vlan protocol 802.1Q id 10" "$(at "$host" ip -d link show eth2.10 | grep -o 'vlan protocol 802.1Q id [0-9]*')"
same "eth2.20" "vlan protocol 802.1Q id 20" "$(at "$host" ip -d link show eth2.20 | grep -o 'vlan protocol 802.1Q id [0-9]*')"
same "g1's eth1" "macvlan" "$(at "$g1" ip -d -o link show eth1 | grep -o 'macvlan' | head -1)"

# The frames on the wire carry tag 10.
at "$far" tcpdump -Z root -l -n -e -i wire -c 1 'vlan 10' >/tmp/vlan_nic.dump 2>/tmp/vlan_nic.err &
dump=$!
n=0
until grep -q listening /tmp/vlan_nic.err; do
	n=$((n + 1)); [ $n -lt 200 ] || fail "tcpdump: $(cat /tmp/vlan_nic.err)"; usleep 50000
done
# The matrix: who reaches whom (1 answers, 0 not).
ping_matrix "g1 10.0.0.3 1" "g2 10.0.0.2 1" "g1 10.0.0.1 1" "g2 10.0.0.1 1" "g3 10.0.0.11 1" \
	"g3 10.0.0.2 0" "g3 10.0.0.3 0" "g3 10.0.0.1 0" "g1 10.0.0.4 0" "g1 10.0.0.11 0"
report "VLAN ping matrix (g1 10.0.0.2 @10, g2 .3 @10, g3 .4 @20; far wire.10 .1, wire.20 .11):$matrix"
wait "$dump" || fail "tcpdump saw no VLAN 10 frame"
grep -q 'vlan 10' /tmp/vlan_nic.dump || fail "no tag 10 on the wire: $(cat /tmp/vlan_nic.dump)"
report "on the wire: $(head -1 /tmp/vlan_nic.dump | cut -c1-160)"

# ls shows the VLAN.
pw "$host" ls | grep -q "eth2.10 .* 10 " || pw "$host" ls | grep "pid:$g1" | grep -qw 10 || fail "ls shows no VLAN: $(pw "$host" ls)"

# del: eth2.10 stays while g2 uses it, goes with the last.
ok pw "$host" del "pid:$g1"
lacks_link "$g1" eth1
has_link "$host" eth2.10
ok pw "$host" del "pid:$g2"
lacks_link "$host" eth2.10
ok pw "$host" del "pid:$g3"
lacks_link "$host" eth2.20
has_link "$host" eth2
