# shellcheck shell=bash
# deps.sh: sourced by the scripts that build (demo.sh, package.sh, test.sh) to make
# sure that what they call is there, installing Debian's package for what is not.
#
# Each check is of the thing used, not of a stand-in: `cc` on PATH is not a linker
# that works (Debian's gcc only recommends libc6-dev, which holds Scrt1.o and libc),
# so `need_linker` links a C program the way cargo's rust-lld/cc link pipework, and
# `need_linker static` the way the +crt-static build does (libc.a, also libc6-dev).
# The caller defines say() and die(); deps_install runs apt-get update once first.

deps_updated=
deps_install() {
	[ "$#" -gt 0 ] || return 0
	export DEBIAN_FRONTEND=noninteractive
	if [ -z "$deps_updated" ]; then
		apt-get -o DPkg::Lock::Timeout=300 -qq update
		deps_updated=1
	fi
	apt-get -o DPkg::Lock::Timeout=300 -y -qq install --no-install-recommends "$@" >/dev/null
}

# need_commands WHAT:PACKAGE...: installs the packages of what is missing; WHAT is a
# command on PATH, or a file when it starts with / (the CA bundle that cargo's
# downloads and git's https clone read: /etc/ssl/certs/ca-certificates.crt).
need_commands() {
	local pair what missing=()
	for pair in "$@"; do
		what=${pair%%:*}
		case $what in
		/*) [ -e "$what" ] ;;
		*) command -v "$what" >/dev/null 2>&1 ;;
		esac || missing+=("${pair#*:}")
	done
	[ "${#missing[@]}" -gt 0 ] || return 0
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	say "installing ${missing[*]} (apt-get update; apt-get install)"
	deps_install "${missing[@]}"
}

# Links an empty C program with cc (`static`: with -static), as cargo's link step
# does; prints the linker's complaint on failure.
deps_can_link() {
	local dir out status=0
	command -v cc >/dev/null 2>&1 || { echo "no cc on PATH"; return 1; }
	dir=$(mktemp -d /tmp/pipework-link.XXXXXX)
	printf 'int main(void) { return 0; }\n' >"$dir/t.c"
	out=$(cc ${1:+-static} -o "$dir/t" "$dir/t.c" 2>&1) || status=$?
	[ "$status" = 0 ] && "$dir/t" || { status=1; printf '%s\n' "$out"; }
	rm -rf "$dir"
	return "$status"
}

# need_linker [static]: a C toolchain that links (gcc, binutils, libc6-dev).
need_linker() {
	local why
	if ! why=$(deps_can_link "${1:-}"); then
		say "cc cannot link a ${1:-dynamic} program (${why:-no cc}): installing gcc libc6-dev"
		deps_install gcc libc6-dev
		why=$(deps_can_link "${1:-}") || die "cc still cannot link a ${1:-dynamic} program after installing gcc libc6-dev: $why"
	fi
}
