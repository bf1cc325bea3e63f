#!/bin/sh
# vksuite: run mdgpu's Vulkan compute suite (programs written against the Vulkan API only) on
# whatever Vulkan device the loader gives, and summarise.
#
#   vksuite [--validation] [--no-hostile] [--only PROGRAM] [--list] [-- PROGRAM-OPTIONS...]
#
#   --validation   enable the Khronos validation layer (VK_INSTANCE_LAYERS), with its
#                  synchronization checks, and count its errors; the hostile program,
#                  invalid on purpose, is left out
#   --no-hostile   leave out vks-hostile
#   --only P       run only program P (e.g. saxpy or vks-saxpy); the benchmark programs
#                  (vks-cost) run only this way
#   --list         print the programs and exit
#   -- ...         options passed to every program (e.g. --device 1)
#
# Each program prints "VKSUITE name=... ok=..." lines (see vks.h); this script passes them
# through, adds "VKSUITE name=<program> ok=0 error=exit-N" for a program that failed without
# saying so, and ends with one line:
#
#   VKSUITE-SUMMARY programs=N checks=N passed=N failed=N skipped=N validation=0|1
#                   validation_errors=N validation_warnings=N validation_layer_runs=N
#                   vuid_lines=N hostile=0|1
#
# (validation_layer_runs: program runs in which the Khronos layer announced itself.)
#
# Exit status 0 when nothing failed and the validation layer reported no error.
#
# Environment: VKSUITE_LIBEXEC, the programs' directory (default: where the package installs
# them); VKSUITE_EXEC, a command prefix for each program (the native runs on a host start the
# kit-built binaries with the kit's dynamic loader this way); VKSUITE_TIMEOUT, seconds per
# program (default 600); TMPDIR.
set -u

VKSUITE_LIBEXEC_DEFAULT=$(dirname "$0")
LIBEXEC=${VKSUITE_LIBEXEC:-$VKSUITE_LIBEXEC_DEFAULT}
EXEC=${VKSUITE_EXEC:-}
LIMIT=${VKSUITE_TIMEOUT:-600}

# The order is fixed so that runs compare line by line. vks-pipecache runs twice: the first
# run saves the cache file, the second loads it.
PROGRAMS="saxpy gemm reduce scan histogram push spec descriptors transfer dispatch events sync
queries types subgroup pipecache pipecache threads secondary sync2 memory hostile"
# Programs that measure rather than prove (npm run bench:vulkan): run only with --only.
BENCH_PROGRAMS="cost"

validation=0
hostile=1
only=
while [ $# -gt 0 ]; do
	case "$1" in
	--validation) validation=1 ;;
	--no-hostile) hostile=0 ;;
	--only)
		shift
		only=${1#vks-}
		;;
	--list)
		for p in $PROGRAMS $BENCH_PROGRAMS; do echo "vks-$p"; done | uniq
		exit 0
		;;
	--)
		shift
		break
		;;
	-h | --help)
		sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "vksuite: unknown option $1" >&2
		exit 2
		;;
	esac
	shift
done

# Options for every program (simple words: they are split on blanks).
extra="$*"

if [ "$validation" = 1 ]; then
	VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation${VK_INSTANCE_LAYERS:+:$VK_INSTANCE_LAYERS}
	# Synchronization validation too (hazards between commands), unless the caller chose.
	VK_KHRONOS_VALIDATION_VALIDATE_SYNC=${VK_KHRONOS_VALIDATION_VALIDATE_SYNC:-true}
	export VK_INSTANCE_LAYERS VK_KHRONOS_VALIDATION_VALIDATE_SYNC
	hostile=0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vksuite.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
cache="$tmp/pipeline-cache.bin"
runner=
if command -v timeout >/dev/null 2>&1; then
	runner="timeout -s KILL $LIMIT"
fi

programs=0
extra_failures=0
run_list=$PROGRAMS
for p in $BENCH_PROGRAMS; do
	[ "$p" = "$only" ] && run_list=$p
done
for p in $run_list; do
	[ -n "$only" ] && [ "$p" != "$only" ] && continue
	[ "$p" = hostile ] && [ "$hostile" = 0 ] && continue
	bin="$LIBEXEC/vks-$p"
	programs=$((programs + 1))
	set --
	[ "$p" = pipecache ] && set -- --cache "$cache"
	[ "$programs" -gt 1 ] && set -- "$@" --quiet
	# shellcheck disable=SC2086 # prefixes and extra options are split on purpose
	$runner $EXEC "$bin" "$@" $extra >"$tmp/out" 2>"$tmp/err"
	rc=$?
	cat "$tmp/out"
	cat "$tmp/out" >>"$tmp/all"
	cat "$tmp/err" >&2
	cat "$tmp/err" >>"$tmp/all-err"
	if [ "$rc" != 0 ] && ! grep -q '^VKSUITE name=.* ok=0' "$tmp/out"; then
		echo "VKSUITE name=vks-$p ok=0 digest=- ms=0 error=exit-$rc"
		extra_failures=$((extra_failures + 1))
	fi
done

touch "$tmp/all" "$tmp/all-err"
checks=$(grep -c '^VKSUITE name=' "$tmp/all")
failed=$(grep -c '^VKSUITE name=.* ok=0' "$tmp/all")
skipped=$(grep -c '^VKSUITE name=.* skipped=' "$tmp/all")
passed=$((checks - failed - skipped))
failed=$((failed + extra_failures))
sum() {
	sed -n "s/^VKSUITE-VALIDATION .* $1=\([0-9]*\).*/\1/p" "$tmp/all" | awk '{s += $1} END {print s + 0}'
}
verrors=$(sum errors)
vwarnings=$(sum warnings)
vuid=$(cat "$tmp/all" "$tmp/all-err" | grep -c 'VUID-')
layer=$(grep -c '^VKSUITE-VALIDATION .* layer=1' "$tmp/all")
echo "VKSUITE-SUMMARY programs=$programs checks=$checks passed=$passed failed=$failed" \
	"skipped=$skipped validation=$validation validation_errors=$verrors" \
	"validation_warnings=$vwarnings validation_layer_runs=$layer vuid_lines=$vuid hostile=$hostile"
[ "$failed" = 0 ] && [ "$verrors" = 0 ]
