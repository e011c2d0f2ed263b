# runner.sh: run inside the VM by its /init: every tests/vm/*.sh but this one and
# lib.sh, each in its own shell with lib.sh's helpers, each with its own run
# directory; one `vm-test: PASS NAME` or `vm-test: FAIL NAME` line each, and a
# failure's output indented below it.
only=$(cat /tests/only)
for t in /tests/*.sh; do
	name=$(basename "$t" .sh)
	case $name in lib | runner) continue ;; esac
	[ -n "$only" ] && [ "$only" != "$name" ] && continue
	out=/tmp/$name.out
	export PIPEWORK_RUN_DIR=/tmp/run-$name
	begin=$(date +%s)
	if timeout 120 sh -c ". /tests/lib.sh; . $t" >"$out" 2>&1; then
		echo "vm-test: PASS $name ($(($(date +%s) - begin)) s)"
	else
		echo "vm-test: FAIL $name"
		sed 's/^/  /' "$out"
	fi
	# What a test prints with `report` goes to the console even when it passed.
	grep '^report: ' "$out" | sed 's/^report: /  /'
done
