# gc after the guests on a VLAN are gone: their records go, and the VLAN device
# pipework made goes with the last attachment that used it; one it did not make stays.
ns host
at "$host" ip link add eth2 type veth peer name wire
at "$host" ip link add eth3 type veth peer name wire3
at "$host" ip link add link eth3 name eth3.7 type vlan id 7
guest g1; guest g2; guest g3
ok pw "$host" eth2 "pid:$g1" 10.0.0.2/24 @10
ok pw "$host" eth2 "pid:$g2" 10.0.0.3/24 @10
ok pw "$host" eth3 "pid:$g3" 10.0.7.2/24 @7
kill "$g1"; wait "$g1" 2>/dev/null || true
ok pw "$host" gc
has_link "$host" eth2.10
kill "$g2" "$g3"; wait "$g2" "$g3" 2>/dev/null || true
out=$(pw "$host" gc 2>&1) || fail "gc: $out"
echo "$out"
lacks_link "$host" eth2.10
has_link "$host" eth3.7
[ -z "$(ls "$PIPEWORK_RUN_DIR/attachments" 2>/dev/null)" ] || fail "records left: $(ls "$PIPEWORK_RUN_DIR/attachments")"
