# An existing eth2.10 that is not VLAN 10 of eth2 (here VLAN 30, or a veth) is
# refused before any change, with one line.
ns host
at "$host" ip link add eth2 type veth peer name wire
at "$host" ip link add link eth2 name eth2.10 type vlan id 30
guest g
before_h=$(links "$host"); before_g=$(links "$g")
out=$(pw "$host" eth2 "pid:$g" 10.0.0.2/24 @10 2>&1) && fail "accepted: $out"
same "refusal" "pipework: eth2.10 already exists but is not a VLAN device for tag 10" "$out"
same "host links" "$before_h" "$(links "$host")"
same "guest links" "$before_g" "$(links "$g")"
# VLAN 10 of another parent is not eth2's either.
at "$host" ip link del eth2.10
at "$host" ip link add eth3 type veth peer name wire3
at "$host" ip link add link eth3 name eth2.10 type vlan id 10
before_h=$(links "$host")
out=$(pw "$host" eth2 "pid:$g" 10.0.0.2/24 @10 2>&1) && fail "accepted: $out"
same "refusal" "pipework: eth2.10 already exists but is not a VLAN device for tag 10" "$out"
same "host links" "$before_h" "$(links "$host")"
