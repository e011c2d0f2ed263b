# Dummy mode end to end: a dummy eth1 in the guest with its address and default
# route; del removes it; gc removes the record of a gone guest's.
ns host
guest g
ok pw "$host" dummy "pid:$g" 192.168.21.101/24@192.168.21.1
same "kind" "dummy" "$(at "$g" ip -d -o link show eth1 | grep -o 'dummy' | head -1)"
same "address" "192.168.21.101/24" "$(at "$g" ip -o -4 addr show eth1 | awk '{print $4}')"
same "route" "default via 192.168.21.1 dev eth1" "$(at "$g" ip route show default | sed 's/ *$//')"
ok pw "$host" check "pid:$g"
ok pw "$host" del "pid:$g"
lacks_link "$g" eth1
guest g2
ok pw "$host" dummy "pid:$g2" 192.168.22.2/24
[ -n "$(ls "$PIPEWORK_RUN_DIR/attachments")" ] || fail "no record"
kill "$g2"; wait "$g2" 2>/dev/null || true
ok pw "$host" gc
[ -z "$(ls "$PIPEWORK_RUN_DIR/attachments")" ] || fail "records left: $(ls "$PIPEWORK_RUN_DIR/attachments")"
