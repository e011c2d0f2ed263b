# The CNI bridge keys for VLANs on a Linux bridge (`vlan`, `vlanTrunk`,
# `preserveDefaultVlan`), pipework run as the plugin itself (CNI_* in its
# environment, the config on stdin, the built-in pool as IPAM, no other plugin):
# two guests with vlan 10 reach each other and one with vlan 20 neither; the port
# is an untagged member of its VLAN (PVID), and of VLAN 1 too unless
# preserveDefaultVlan is false; a trunk port carries its ids tagged, and a guest's
# own 802.1Q device reaches a vlan 30 guest over it; `ls` shows the VLANs; bad ids
# are refused with one CNI error before any change; DEL leaves no port.
ns host
ipam='"ipam":{"type":"pipework-pool","subnet":"10.9.0.0/24","dataDir":"/tmp/cni-vlan-ipam"}'
# conf KEYS [IPAM]: the network's config with KEYS after the bridge.
conf() { printf '{"cniVersion":"1.0.0","name":"vnet","type":"pipework","bridge":"br1"%s%s}' "$1" "${2-,$ipam}"; }
# cni COMMAND GUEST_PID CONTAINER_ID CONFIG: the plugin's answer on stdout.
cni() {
	echo "$4" | at "$host" env CNI_COMMAND="$1" CNI_NETNS="/proc/$2/ns/net" CNI_IFNAME=eth0 \
		CNI_CONTAINERID="$3" CNI_PATH=/nonexistent pipework
}
# end CONTAINER_ID: the host end the plugin names (veth and 8 hex digits of md5).
end() { echo "veth$(printf '%s\neth0' "$1" | md5sum | cut -c1-8)"; }
# v4 GUEST_PID: its eth0's IPv4 address.
v4() { at "$1" ip -o -4 addr show dev eth0 | awk '{print $4}' | cut -d/ -f1; }
vlans() { at "$host" bridge vlan show dev "$1" | awk 'NR > 1 || $1 == "'"$1"'" {print}' | sed "s/^$1//" | tr -s ' \t' ' ' | sed 's/^ //; s/ $//' | grep . | tr '\n' ';'; }

guest g1; guest g2; guest g3; guest g4; guest g5
conf1=$(conf ',"vlan":10'); conf2=$(conf ',"vlan":10,"preserveDefaultVlan":false'); conf3=$(conf ',"vlan":20')
conf4=$(conf ',"vlanTrunk":[{"id":30},{"minID":40,"maxID":42}],"preserveDefaultVlan":false' ''); conf5=$(conf ',"vlan":30')
ok cni ADD "$g1" c1 "$conf1" >/dev/null
ok cni ADD "$g2" c2 "$conf2" >/dev/null
ok cni ADD "$g3" c3 "$conf3" >/dev/null
at "$host" ip -d link show br1 | grep -q 'vlan_filtering 1' || fail "br1 filters no VLANs"
same "c1's port (VLAN 1 kept)" "1 Egress Untagged;10 PVID Egress Untagged;" "$(vlans "$(end c1)")"
same "c2's port (preserveDefaultVlan false)" "10 PVID Egress Untagged;" "$(vlans "$(end c2)")"
same "c3's port" "1 Egress Untagged;20 PVID Egress Untagged;" "$(vlans "$(end c3)")"
a1=$(v4 "$g1"); a2=$(v4 "$g2"); a3=$(v4 "$g3")
[ -n "$a1" ] && [ -n "$a2" ] && [ -n "$a3" ] || fail "no addresses from the pool: '$a1' '$a2' '$a3'"
ping_matrix "g1 $a2 1" "g2 $a1 1" "g3 $a1 0" "g3 $a2 0" "g1 $a3 0"
report "CNI vlan ping matrix (g1 $a1 vlan 10, g2 $a2 vlan 10, g3 $a3 vlan 20 on br1):$matrix"

# A trunk port (no address of its own: no IPAM), VLAN 1 dropped; its guest's eth0.30
# reaches an access port of VLAN 30.
ok cni ADD "$g4" c4 "$conf4" >/dev/null
ok cni ADD "$g5" c5 "$conf5" >/dev/null
same "c4's port (trunk)" "30;40;41;42;" "$(vlans "$(end c4)")"
at "$g4" ip link add link eth0 name eth0.30 type vlan id 30
at "$g4" ip addr add 10.9.0.200/24 dev eth0.30
at "$g4" ip link set eth0.30 up
a5=$(v4 "$g5")
ping_matrix "g4 $a5 1" "g4 $a1 0"
report "CNI vlanTrunk (c4 tagged 30,40-42, its eth0.30 10.9.0.200; g5 $a5 vlan 30):$matrix"
listed=$(pw "$host" ls)
echo "$listed" | grep -w "$(end c1)" | grep -q ' 10 ' || fail "ls shows no VLAN 10 for c1: $listed"
echo "$listed" | grep -w "$(end c4)" | grep -q 't:30,40-42' || fail "ls shows no trunk for c4: $listed"

# Refused before any change, with one CNI error each (code 7, invalid config).
before=$(links "$host")
for keys in ',"vlan":4095' ',"vlan":-1' ',"vlanTrunk":[{"id":0}]' ',"vlanTrunk":[{"minID":20,"maxID":10}]' \
	',"vlanTrunk":[{"minID":20}]' ',"vlan":10,"vlanTrunk":[{"id":11}]'; do
	guest gx
	out=$(cni ADD "$gx" cx "$(conf "$keys")") && fail "$keys accepted: $out"
	echo "$out" | grep -q '"code": *7' || fail "$keys: not one invalid-config error: $out"
	report "refused $keys: $(echo "$out" | tr -d '\n' | tr -s ' ')"
done
# A gateway on the bridge is in VLAN 1, not in the port's: refused (code 2).
out=$(cni ADD "$gx" cx "$(conf ',"vlan":10,"isGateway":true')") && fail "isGateway with vlan accepted: $out"
echo "$out" | grep -q '"code": *2' || fail "isGateway with vlan: not one unsupported-field error: $out"
report "refused isGateway with vlan: $(echo "$out" | tr -d '\n' | tr -s ' ')"
same "host links after the refusals" "$before" "$(links "$host")"

# DEL: the port goes, and its VLAN entries with it.
for i in 1 2 3 4 5; do
	eval "p=\$g$i c=c$i cf=\$conf$i"
	ok cni DEL "$p" "$c" "$cf" >/dev/null
	lacks_link "$host" "$(end "$c")"
done
at "$host" bridge vlan show | grep -q '^veth' && fail "VLAN entries left: $(at "$host" bridge vlan show)"
has_link "$host" br1
