# A bridge per VLAN over an uplink (the original's PR #227 shape):
# `pipework br63@eth1 GUEST ADDR @63` makes eth1.63 and br63, and enslaves the one
# to the other; without `@VLAN` the uplink itself is the port. eth1 is one end of a
# veth whose other end, `wire`, sits in a hub namespace with wire.63 (10.0.63.1);
# its wire.64 (10.0.63.11, same subnet) is in a namespace of its own. Two guests on
# br63 reach each other and the VLAN-63 peer, tagged 63 on the wire, not the VLAN-64
# peer. Refused before any change: a missing uplink, one on another bridge. A real
# bond as the uplink; `del` and `gc` take the VLAN device with its last user.
ns host; ns hub; ns far64
vlan_wire "$host" eth1 "$hub" 63 10.0.63.1/24 "$far64" 64 10.0.63.11/24
guest g1; guest g2

# --dry-run names the VLAN device and the port it becomes; nothing is made.
dry=$(pw "$host" --dry-run br63@eth1 "pid:$g1" 10.0.63.2/24 @63)
echo "$dry" | grep -q "ip link add link eth1 name eth1.63 mtu 1500 type vlan id 63" || fail "dry-run: $dry"
echo "$dry" | grep -q "ip link set eth1.63 master br63" || fail "dry-run: $dry"
lacks_link "$host" br63
lacks_link "$host" eth1.63
report "dry-run: $(echo "$dry" | grep master)"

ok pw "$host" br63@eth1 "pid:$g1" 10.0.63.2/24 @63
json=$(pw "$host" --json br63@eth1 "pid:$g2" 10.0.63.3/24 @63)
echo "$json" | grep -q '"uplink":"eth1"' || fail "--json names no uplink: $json"
same "eth1.63" "vlan protocol 802.1Q id 63" "$(at "$host" ip -d link show eth1.63 | grep -o 'vlan protocol 802.1Q id [0-9]*')"
at "$host" ip link show eth1.63 | grep -q "master br63" || fail "eth1.63 is no port of br63: $(at "$host" ip link show eth1.63)"
if at "$host" ip link show eth1 | grep -q master; then fail "eth1 itself was enslaved"; fi

at "$hub" tcpdump -Z root -l -n -e -i wire -c 1 'vlan 63' >/tmp/vlan_uplink.dump 2>/tmp/vlan_uplink.err &
dump=$!
n=0
until grep -q listening /tmp/vlan_uplink.err; do
	n=$((n + 1)); [ $n -lt 200 ] || fail "tcpdump: $(cat /tmp/vlan_uplink.err)"; usleep 50000
done
ping_matrix "g1 10.0.63.3 1" "g2 10.0.63.2 1" "g1 10.0.63.1 1" "g2 10.0.63.1 1" "g1 10.0.63.11 0" "g2 10.0.63.11 0"
report "uplink ping matrix (g1 10.0.63.2, g2 .3 on br63@eth1 @63; hub wire.63 .1, wire.64 .11):$matrix"
wait "$dump" || fail "tcpdump saw no VLAN 63 frame"
grep -q 'vlan 63' /tmp/vlan_uplink.dump || fail "no tag 63 on the wire: $(cat /tmp/vlan_uplink.dump)"
report "on the wire: $(head -1 /tmp/vlan_uplink.dump | cut -c1-160)"
pw "$host" ls | grep "pid:$g1" | grep -q br63 || fail "ls: $(pw "$host" ls)"

# Refused before any change, one line each.
guest g3
out=$(pw "$host" br65@nosuch "pid:$g3" 10.0.65.2/24 @65 2>&1) && fail "a missing uplink was taken"
same "missing uplink" 1 "$(echo "$out" | wc -l)"
echo "$out" | grep -q "uplink nosuch .* does not exist" || fail "missing uplink: $out"
lacks_link "$host" br65
report "missing uplink: $out"
at "$host" ip link add eth3 type veth peer name eth3p
at "$host" ip link add brx type bridge
at "$host" ip link set eth3 master brx
out=$(pw "$host" br66@eth3 "pid:$g3" 10.0.66.2/24 2>&1) && fail "an uplink on another bridge was taken"
echo "$out" | grep -q "eth3 is already enslaved" || fail "enslaved uplink: $out"
lacks_link "$host" br66
lacks_link "$g3" eth1
report "enslaved uplink: $out"

# Without @VLAN the uplink itself is the port.
ok pw "$host" br67@eth3p "pid:$g3" 10.0.67.2/24
at "$host" ip link show eth3p | grep -q "master br67" || fail "eth3p is no port of br67"

# A real bond as the uplink.
at "$host" ip link add bond0 type bond
at "$host" ip link add eth5 type veth peer name eth5p
at "$host" ip link set eth5 master bond0
guest g4
ok pw "$host" br71@bond0 "pid:$g4" 10.0.71.2/24 @71
at "$host" ip link show bond0.71 | grep -q "master br71" || fail "bond0.71 is no port of br71"
report "bond: $(at "$host" ip -o -d link show bond0.71 | grep -o 'bond0.71@bond0.*master br71' | cut -c1-60)"

# del: eth1.63 stays while g2 uses it, goes with the last; eth1 as before.
ok pw "$host" del "pid:$g1"
has_link "$host" eth1.63
ok pw "$host" del "pid:$g2"
lacks_link "$host" eth1.63
has_link "$host" eth1
if at "$host" ip link show eth1 | grep -q master; then fail "eth1 left enslaved"; fi
# gc: g4 gone, its veth and bond0.71 go; bond0 stays.
kill "$g4"
n=0; while [ -e "/proc/$g4" ] && [ $n -lt 100 ]; do n=$((n + 1)); usleep 20000; done
ok pw "$host" gc
lacks_link "$host" bond0.71
has_link "$host" bond0
ok pw "$host" del "pid:$g3"
