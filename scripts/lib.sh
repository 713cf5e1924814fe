# shellcheck shell=bash
# The host scripts' shared parts, sourced by scripts/* and tests/*.sh as the kernel's selftests
# source net/lib.sh and kselftest/ktap_helpers.sh (not executed):
#   usage, log, die, usage_error, need_value, need_number, no_arguments  the header is --help
#   build_kernel, kernel_dir, build_module, build_guest_tools, kernel_build_running  the build chain
#   ticker_start, ticker_stop                                   progress during a long step
#   ktap_* (below)                                              KTAP results and totals
# Sets TOP (the repository) and PROG (the script's name, for messages); sources env.sh.
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=$(basename "$0" .sh)
# shellcheck source=scripts/env.sh
source "$TOP/scripts/env.sh"

# --- usage, messages, arguments ------------------------------------------------------------------
# The script's header comment (line 2 up to the first line that is not a comment) is its --help.
usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; }
log() { printf '[%s] %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# Bad command lines exit 2, as the selftests' and every getopt tool's do.
usage_error() { printf '%s: %s (see --help)\n' "$PROG" "$*" >&2; exit 2; }
need_value() { [ "$2" -ge 2 ] || usage_error "$1 needs a value"; }   # OPTION "$#"
# For a script that takes no arguments but --help.
no_arguments() {
  case "${1-}" in
    '') ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
}
need_number() {                                                       # OPTION VALUE
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || usage_error "$1 needs a positive number, not '$2'"
}

# --- the build chain (every step is a no-op when its cache is warm) --------------------------------
# The guest kernel VARIANT (stock|debug|c-fix-reverted); prints its build directory. Runs
# scripts/setup first; a cold build reports its own progress.
build_kernel() {
  local kdir
  kdir=$("$TOP/scripts/build-kernel" "$1" | tail -n1) || die "the $1 guest kernel did not build"
  [ -f "$kdir/arch/x86/boot/bzImage" ] || die "no bzImage in $kdir"
  echo "$kdir"
}
# ipvs_gue.ko against KDIR, built with scripts/build-module's FLAGS (--bug, --lossy, --kernel
# debug); prints the .ko. Its output goes to target/build-module.log.
build_module() { # KDIR [FLAGS...]
  local kdir=$1 logf="$TOP/target/build-module.log" ko; shift
  mkdir -p "$TOP/target"
  ko=$(KDIR=$kdir "$TOP/scripts/build-module" "$@" 2>>"$logf" | tail -n1) \
    || { tail -n 20 "$logf" >&2; die "module build ${*:-(fixed)} failed (log: $logf)"; }
  echo "$ko"
}
# The static guest tools and the initramfs that carries them; prints the initramfs.
build_guest_tools() {
  "$TOP/scripts/build-tools" >/dev/null || die "the guest tools did not build"
  "$TOP/qemu/build-initramfs" | tail -n1 || die "the initramfs did not build"
}
# A kernel build running on this host (2 cores): timings are then upper bounds, and scripts that
# would start a second one take the newest finished build instead.
kernel_build_running() { pgrep -f 'scripts/build-kernel' >/dev/null 2>&1; }
# The guest kernel VARIANT's build directory for a test run. Never starts a second kernel build
# while one runs (2 cores): then the newest finished VARIANT build, or an error if none is.
kernel_dir() { # VARIANT
  local done_file
  kernel_build_running || { build_kernel "$1"; return; }
  done_file=$(ls -t "$IPVS_GUE_CACHE"/kernel/"$1"-*/.ipvs-gue-done 2>/dev/null | head -n1 || true)
  [ -n "$done_file" ] || die "a kernel build is running and no $1 kernel is built yet: wait for it to finish"
  log "a kernel build is running; using the finished $(dirname "$done_file")"
  dirname "$done_file"
}

# ynl_guest_files: run-vm --file arguments (one per line) that put the kernel's YNL client
# (tools/net/ynl), its schema and nlctrl spec, and the repo's spec/ipvs_gue.yaml under /ynl.
ynl_guest_files() {
  local src f
  src="$KERNEL_SRC_ROOT/stock"
  [ -f "$src/tools/net/ynl/cli.py" ] || die "no YNL client in $src (scripts/build-kernel stock unpacks it)"
  for f in cli.py lib/__init__.py lib/nlspec.py lib/ynl.py; do
    printf -- '--file\n%s\n' "$src/tools/net/ynl/$f:/ynl/$f"
  done
  printf -- '--file\n%s\n' "$src/Documentation/netlink/genetlink-legacy.yaml:/ynl/genetlink-legacy.yaml" \
    "$src/Documentation/netlink/specs/nlctrl.yaml:/ynl/specs/nlctrl.yaml" "$TOP/spec/ipvs_gue.yaml:/ynl/specs/ipvs_gue.yaml"
}

# --- progress ---------------------------------------------------------------------------------------
# ticker_start CMD...: every 15 s, logs the seconds since the start and CMD's output (say, the
# newest guest result), until ticker_stop. One ticker at a time.
TICKER_PID=
ticker_start() {
  local t0=$SECONDS
  ( while sleep 15; do log "  ... $((SECONDS - t0)) s; $("$@" 2>/dev/null | cut -c1-110)"; done ) &
  TICKER_PID=$!
  trap ticker_stop EXIT
}
ticker_stop() {
  [ -z "$TICKER_PID" ] || { kill "$TICKER_PID" 2>/dev/null || true; wait "$TICKER_PID" 2>/dev/null || true; }
  TICKER_PID=
}
# The newest TAP line of the newest console log in DIR or its subdirectories: what a ticker
# shows while a VM runs.
last_result() { # DIR
  local f
  f=$(ls -t "$1"/console.log "$1"/*/console.log 2>/dev/null | head -n1 || true)
  [ -z "$f" ] || grep -E '^(not )?ok [0-9]+ - ' "$f" | tail -n1 || true
}

# --- KTAP (Documentation/dev-tools/ktap.rst; selftests' ktap_helpers.sh) ---------------------------
# Results are collected and printed by ktap_finish behind the version header and the plan, so the
# plan comes first although a suite learns its tests' number only from the guest's results:
#   TAP version 13 / 1..N / ok 1 - desc / ok 2 - desc # SKIP why / ok 3 - desc # XFAIL why /
#   not ok 4 - desc / # Totals: pass:.. fail:.. xfail:.. xpass:0 skip:.. error:0 /
#   "P passed, F failed[, S skipped]" (P counts expected failures seen; CI reads this line).
# Exit status (ktap_finish): 0 all passed, 1 any failure, 4 (KSFT_SKIP) when everything skipped.
KTAP_LINES=() KTAP_N=0 KTAP_PASS=0 KTAP_FAIL=0 KTAP_XFAIL=0 KTAP_SKIP=0
KSFT_SKIP=4
__ktap_result() { # RESULT DESCRIPTION [DIRECTIVE]
  KTAP_N=$((KTAP_N + 1))
  KTAP_LINES+=("$1 $KTAP_N - $2${3:+ # $3}")
}
ktap_pass() { KTAP_PASS=$((KTAP_PASS + 1)); __ktap_result ok "$1"; }
ktap_fail() { KTAP_FAIL=$((KTAP_FAIL + 1)); __ktap_result "not ok" "$1"; }
ktap_skip() { KTAP_SKIP=$((KTAP_SKIP + 1)); __ktap_result ok "$1" "SKIP $2"; }   # DESC WHY
# An expected failure that was seen (the bug builds): passes; not seeing it is ktap_fail's job.
ktap_xfail() { KTAP_XFAIL=$((KTAP_XFAIL + 1)); __ktap_result ok "$1" "XFAIL $2"; } # DESC WHY
ktap_result() { # DESC CMD...: pass if CMD succeeds
  local desc=$1; shift
  if "$@"; then ktap_pass "$desc"; else ktap_fail "$desc"; fi
}
ktap_diag() { KTAP_LINES+=("# $*"); }
# Each line CMD prints becomes a diagnostic (CMD runs here, not in a pipeline's subshell).
ktap_diag_from() { # CMD...
  local l
  while IFS= read -r l; do KTAP_LINES+=("# $l"); done < <("$@")
}
# Relays TAP lines from FILE (a guest's console or results channel) into this suite, renumbered,
# with their directives (# SKIP, # XFAIL) and "# " diagnostics; PREFIX goes before each
# description.
ktap_relay() { # FILE [PREFIX]
  local l desc
  while IFS= read -r l; do
    case "$l" in
      "# "*) KTAP_LINES+=("$l"); continue ;;
      "not ok "*) ktap_fail "${2:-}${l#not ok * - }"; continue ;;
    esac
    desc=${l#ok * - }
    # the directive starts at its keyword; its reason may contain " # " itself
    case "$desc" in
      *" # SKIP"*) ktap_skip "${2:-}${desc%%" # SKIP"*}" "$(directive_reason "${desc#*" # SKIP"}")" ;;
      *" # XFAIL"*) ktap_xfail "${2:-}${desc%%" # XFAIL"*}" "$(directive_reason "${desc#*" # XFAIL"}")" ;;
      *) ktap_pass "${2:-}$desc" ;;
    esac
  done < <(grep -E '^(not )?ok [0-9]+ - |^# ' "$1" 2>/dev/null || true)
}
# The reason after a directive's keyword (" why" -> "why"; none -> "no reason given").
directive_reason() { local r=${1# }; echo "${r:-no reason given}"; }
# The result of one qemu/run-vm call from its exit status.
ktap_vm_run() { # RC DESC LOG
  local why="guest exit $1"
  case "$1" in
    0) ktap_pass "$2 (guest exit 0)"; return ;;
    3) why="guest died without an exit marker (panic?)" ;;
    5) why="kernel splat on the console (run-vm's splat scan)" ;;
    6) why="the guest could not mount or use the host's /usr over virtio-9p ([init] FATAL on the console)" ;;
    124) why="VM timeout" ;;
  esac
  ktap_fail "$2 ($why; console $3)"
}
# Everything skipped: the plan says why, and the exit status is KSFT_SKIP.
ktap_skip_all() { # WHY
  echo "TAP version 13"
  echo "1..0 # SKIP $*"
  closing_line 0 0 1
  exit "$KSFT_SKIP"
}
ktap_finish() {
  echo "TAP version 13"
  echo "1..$KTAP_N"
  [ ${#KTAP_LINES[@]} -eq 0 ] || printf '%s\n' "${KTAP_LINES[@]}"
  echo "# Totals: pass:$KTAP_PASS fail:$KTAP_FAIL xfail:$KTAP_XFAIL xpass:0 skip:$KTAP_SKIP error:0"
  closing_line "$((KTAP_PASS + KTAP_XFAIL))" "$KTAP_FAIL" "$KTAP_SKIP"
  if [ "$KTAP_FAIL" -gt 0 ] || [ "$KTAP_N" -eq 0 ]; then return 1; fi
  if [ "$KTAP_SKIP" -eq "$KTAP_N" ]; then return "$KSFT_SKIP"; fi
  return 0
}
# "P passed, F failed", with ", S skipped" when S > 0: the line CI reads.
closing_line() { echo "$1 passed, $2 failed$([ "$3" -eq 0 ] || echo ", $3 skipped")"; }
# A host tool a suite cannot run without: missing, the whole suite is skipped (exit 4).
require_tools() { # TOOL...
  local t missing=()
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] || ktap_skip_all "missing host tools: ${missing[*]} (scripts/setup installs them)"
}

# --- single-boot VM suites (tests/relay.sh, tests/scaleout.sh) --------------------------------------
# Their shared command line: [--cells LIST] [--kernel BZIMAGE] [--out DIR] [--timeout SECS]
# [MODULE.ko] (default $IPVS_GUE_KO, else ./ipvs_gue.ko). Sets SUITE_CELLS, SUITE_KO,
# SUITE_KERNEL_ARGS, SUITE_TMO and SUITE_OUT (default target/NAME; made absolute, the last run's
# console log and results removed); an unknown option or cell exits 2.
vm_suite_args() { # NAME DEFAULT_TIMEOUT "CELL..." ARGS...
  local name=$1 known=" $(echo $3) " c
  SUITE_TMO=$2; shift 3
  SUITE_KO=${IPVS_GUE_KO:-} SUITE_CELLS= SUITE_OUT="$TOP/target/$name" SUITE_KERNEL_ARGS=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --cells) need_value "$1" $#; SUITE_CELLS=$(echo ${2//,/ }); shift 2 ;;
      --kernel) need_value "$1" $#; SUITE_KERNEL_ARGS=(--kernel "$2"); shift 2 ;;
      --out) need_value "$1" $#; SUITE_OUT=$2; shift 2 ;;
      --timeout) need_value "$1" $#; need_number "$1" "$2"; SUITE_TMO=$2; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      -*) usage_error "unknown option $1" ;;
      *) SUITE_KO=$1; shift ;;
    esac
  done
  for c in $SUITE_CELLS; do [[ "$known" == *" $c "* ]] || usage_error "unknown cell '$c'"; done
  [ -n "$SUITE_KO" ] || SUITE_KO="$TOP/ipvs_gue.ko"
  [ -f "$SUITE_KO" ] || usage_error "no such module $SUITE_KO (build it: scripts/build-module)"
  require_tools qemu-system-x86_64
  mkdir -p "$SUITE_OUT"; SUITE_OUT=$(cd "$SUITE_OUT" && pwd)
  rm -f "$SUITE_OUT/console.log" "$SUITE_OUT/results.txt"
}
# The guest's KTAP relayed, the VM's exit judged, the closing line: RC of qemu/run-vm, T0 the
# $SECONDS before it.
vm_suite_finish() { # NAME RC T0
  ktap_relay "$SUITE_OUT/console.log"
  ktap_vm_run "$2" "VM run, $((SECONDS - $3)) s" "$SUITE_OUT/console.log"
  ktap_diag "results: $SUITE_OUT/results.txt ($(grep -c "\"suite\":\"$1\"" "$SUITE_OUT/results.txt" \
    2>/dev/null || true) cell records)"
  ktap_finish
}
