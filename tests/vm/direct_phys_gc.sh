# --direct-phys of the VM's real virtio NIC eth0 into a guest; the guest's
# namespace dies (its process killed): the kernel puts the NIC back into the VM's
# namespace under a name of its own choosing, without its addresses; `pipework
# gc` gives it its name and addresses back. eth1, the other NIC on the same qemu
# hub, is the far end of the wire.
mac=$(cat /sys/class/net/eth0/address)
ip link set eth0 up; ip link set eth1 up
ip addr add 10.9.0.1/24 dev eth0
ip addr add 10.9.0.2/24 dev eth1
guest g
ok pw - --direct-phys eth0 "pid:$g" 10.9.0.5/24
lacks_link $$ eth0
at "$g" ip link show eth1 | grep -q "$mac" || fail "eth0 is not eth1 in the guest"
at "$g" ping -c 1 -W 2 10.9.0.2 >/dev/null || fail "the guest cannot reach the far NIC"
kill "$g"; wait "$g" 2>/dev/null || true
# The namespace is torn down by a kernel worker: wait for the NIC to come home.
n=0
until back=$(ip -o link | grep -i "$mac" | awk -F': ' '{print $2}') && [ -n "$back" ]; do
	n=$((n + 1)); [ $n -lt 100 ] || fail "the NIC did not come back"; usleep 50000
done
report "the kernel gave the NIC back as $back"
ok pw - gc
same "name" "eth0" "$(ip -o link | grep -i "$mac" | awk -F': ' '{print $2}')"
same "address" "10.9.0.1/24" "$(ip -o -4 addr show eth0 | awk '{print $4}')"
ip link show eth0 | grep -q 'state UP\|,UP' || fail "eth0 is down"
ping -c 1 -W 2 -I eth0 10.9.0.2 >/dev/null 2>&1 || true
[ -z "$(ls "$PIPEWORK_RUN_DIR/attachments")" ] || fail "records left: $(ls "$PIPEWORK_RUN_DIR/attachments")"
ip addr del 10.9.0.1/24 dev eth0; ip addr del 10.9.0.2/24 dev eth1
