# VLANs on a Linux bridge: `pipework br1 GUEST ADDR @VID` turns the bridge's VLAN
# filtering on and makes the host end an untagged member of VLAN VID only. A port
# the bridge had before keeps its PVID (1). Two guests on VLAN 10 reach each other,
# one on VLAN 20 neither; the mark (and so `ls`) carries the VLAN; `del` takes the
# port and its VLAN entries; an id no bridge carries is refused before any change, and
# so is a VLAN on a bridge whose filtering was turned off under our VLAN ports.
ns host
at "$host" ip link add br1 type bridge
at "$host" ip link set br1 up
at "$host" ip link add old0 type veth peer name old1
at "$host" ip link set old0 master br1
guest g1; guest g2; guest g3
ok pw "$host" br1 "pid:$g1" 10.0.0.2/24 @10
ok pw "$host" br1 "pid:$g2" 10.0.0.3/24 @10
ok pw "$host" br1 "pid:$g3" 10.0.0.4/24 @20
at "$host" ip -d link show br1 | grep -q 'vlan_filtering 1' || fail "br1 filters no VLANs"
vlans() { at "$host" bridge vlan show dev "$1" | awk 'NR > 1 || $1 == "'"$1"'" {print}' | sed "s/^$1//" | tr -s ' \t' ' ' | sed 's/^ //; s/ $//' | grep .; }
same "old0's VLANs" "1 PVID Egress Untagged" "$(vlans old0)"
same "g1's port" "10 PVID Egress Untagged" "$(vlans "veth1pl$g1")"
same "g3's port" "20 PVID Egress Untagged" "$(vlans "veth1pl$g3")"
ping_matrix "g1 10.0.0.3 1" "g2 10.0.0.2 1" "g3 10.0.0.2 0" "g3 10.0.0.3 0" "g1 10.0.0.4 0"
report "bridge VLAN ping matrix (g1 10.0.0.2 @10, g2 .3 @10, g3 .4 @20 on br1):$matrix"
pw "$host" ls | grep "pid:$g1" | grep -qw 10 || fail "ls shows no VLAN: $(pw "$host" ls)"
ok pw "$host" del "pid:$g1"
lacks_link "$host" "veth1pl$g1"
at "$host" bridge vlan show | grep -q "veth1pl$g1" && fail "g1's VLAN entries are left"
# A new bridge: made with filtering on.
guest g4
ok pw "$host" br2 "pid:$g4" 10.1.0.2/24 @5
at "$host" ip -d link show br2 | grep -q 'vlan_filtering 1' || fail "br2 filters no VLANs"
same "g4's port" "5 PVID Egress Untagged" "$(vlans "veth1pl$g4")"
# Ids no bridge carries: one line, nothing changed.
before=$(links "$host")
for vid in 0 4095; do
	out=$(pw "$host" br1 "pid:$g1" 10.0.0.2/24 @$vid 2>&1) && fail "@$vid accepted: $out"
	same "@$vid" "pipework: invalid VLAN id \"$vid\" (expected a number from 1 to 4094 for a Linux bridge)" "$out"
done
same "host links" "$before" "$(links "$host")"
# Filtering turned off by another tool under ports of ours that use VLANs: a VLAN
# attach is refused (turning it on again is that tool's operator's call), nothing
# changed; one without a VLAN goes on as on any bridge.
at "$host" ip link set br1 type bridge vlan_filtering 0
guest g5
before=$(links "$host")
out=$(pw "$host" br1 "pid:$g5" 10.0.0.5/24 @10 2>&1) && fail "@10 accepted on br1 with filtering off: $out"
same "filtering off" "pipework: VLAN filtering of bridge br1 was turned off while pipework's ports use VLANs (veth1pl$g2 @10, veth1pl$g3 @20); turn it on again (ip link set br1 type bridge vlan_filtering 1) or del those attachments" "$out"
same "host links" "$before" "$(links "$host")"
at "$host" ip -d link show br1 | grep -q 'vlan_filtering 0' || fail "br1's filtering was turned on again"
ok pw "$host" br1 "pid:$g5" 10.0.0.5/24
