#!/usr/bin/env bash
# Configuration stress and permission suite: boots the VM with the module, runs
# tests/guest/config-stress.sh (`gue-traffic config-stress`: K concurrent writers, N adversarial
# writes checked against a model, plus its self-test; CAP_NET_ADMIN and namespace isolation
# checks; kernel log clean), prints its TAP, then "1..N" and "N passed, M failed".
#   tests/config-stress.sh [options] [MODULE.ko]
#     MODULE.ko         module under test (default: $IPVS_GUE_KO, else ./ipvs_gue.ko; with
#                       --debug: target/module-debug/ipvs_gue.ko)
#     --kernel BZIMAGE  guest kernel (default: $IPVS_GUE_BZIMAGE, else qemu/run-vm's stock kernel)
#     --debug           the newest finished debug kernel (~/.cache/ipvs-gue/kernel/debug-*); never
#                       builds one; its module comes from `scripts/build-module --kernel debug`
#     --writers K       concurrent writers (default 4)
#     --writes N        writes in all (default 10000; 3000 on a debug kernel, which takes ~4x
#                       longer per write under TCG)
#     --seed S          generator seed (default 1)
#     --timeout SECS    hard limit for the VM (default 420; the stress itself gets SECS - 170)
#     --out DIR         console.log, results.txt (default target/config-stress)
#     -h, --help
#   Env: IPVS_GUE_MEM (guest memory; default 1G, 2G on a debug kernel), IPVS_GUE_CMDLINE
#   (appended; log_buf_len=16M is added so the per-rejection kernel lines all fit, and
#   acpi=noirq on a debug kernel, whose ACPI IRQ routing takes minutes under TCG).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "config-stress.sh: $*" >&2; exit 2; }
log() { printf '[config-stress] %s\n' "$*" >&2; }

main() {
  local ko=${IPVS_GUE_KO:-} ko_arg= kernel=${IPVS_GUE_BZIMAGE:-} debug=0
  local writers=4 writes= seed=1 tmo=420 out="$top/target/config-stress"
  while [ $# -gt 0 ]; do
    case "$1" in
      --kernel) [ $# -ge 2 ] || die "--kernel needs a value"; kernel=$2; shift 2 ;;
      --debug) debug=1; shift ;;
      --writers) [ $# -ge 2 ] || die "--writers needs a value"; writers=$2; shift 2 ;;
      --writes) [ $# -ge 2 ] || die "--writes needs a value"; writes=$2; shift 2 ;;
      --seed) [ $# -ge 2 ] || die "--seed needs a value"; seed=$2; shift 2 ;;
      --timeout) [ $# -ge 2 ] || die "--timeout needs a value"; tmo=$2; shift 2 ;;
      --out) [ $# -ge 2 ] || die "--out needs a value"; out=$2; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      -*) die "unknown option $1 (see --help)" ;;
      *) [ -z "$ko_arg" ] || die "more than one module given"; ko_arg=$1; shift ;;
    esac
  done
  local v
  for v in "$writers" "${writes:-0}" "$seed" "$tmo"; do
    [[ "$v" =~ ^[0-9]+$ ]] || die "'$v' is not a number"
  done
  [ "$writers" -ge 1 ] && [ "$writers" -le 16 ] || die "--writers: 1-16"
  [ -z "$writes" ] || [ "$writes" -ge 100 ] || die "--writes: at least 100"
  [ "$tmo" -ge 240 ] || die "--timeout: at least 240"

  if [ "$debug" = 1 ]; then
    local cache done_file
    cache=${IPVS_GUE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipvs-gue}
    if [ -z "$kernel" ]; then
      done_file=$(ls -t "$cache"/kernel/debug-*/.ipvs-gue-done 2>/dev/null | head -n1 || true)
      [ -n "$done_file" ] || die "no finished debug kernel in $cache/kernel (scripts/build-kernel debug)"
      kernel="$(dirname "$done_file")/arch/x86/boot/bzImage"
    fi
    [ -n "$ko_arg" ] || ko_arg="$top/target/module-debug/ipvs_gue.ko"
  fi
  [ -z "$ko_arg" ] || ko=$ko_arg
  [ -n "$ko" ] || ko="$top/ipvs_gue.ko"
  [ -f "$ko" ] || die "no such module $ko (build it: scripts/build-module$([ "$debug" = 1 ] && echo " --kernel debug"))"
  local kargs=() extra_cmdline=
  if [ -n "$kernel" ]; then
    [ -f "$kernel" ] || die "no such kernel image $kernel"
    kargs=(--kernel "$kernel")
    case "$kernel" in
      */debug-*)
        export IPVS_GUE_MEM=${IPVS_GUE_MEM:-2G}
        # The debug kernel's AML interpreter is so slow under TCG that every PCI _PRT
        # evaluation hits the 30 s ACPI loop timeout (~7 min of boot); route IRQs without
        # ACPI (virtio uses MSI-X anyway): init is reached in under a minute.
        extra_cmdline="acpi=noirq"
        writes=${writes:-3000} ;;
    esac
  fi

  writes=${writes:-10000}
  # The guest runs the initramfs's gue-traffic: it must know config-stress.
  local bin="$top/target/x86_64-unknown-linux-gnu/release/gue-traffic"
  if ! { [ -x "$bin" ] && [ "$bin" -nt "$top/crates/gue-traffic/src/config_stress.rs" ] \
         && "$bin" config-stress --help 2>/dev/null | grep -q config-stress; }; then
    log "building the static tools (gue-traffic lacks a current config-stress)"
    "$top/scripts/build-tools" >/dev/null
  fi

  export IPVS_GUE_CMDLINE="${IPVS_GUE_CMDLINE:+$IPVS_GUE_CMDLINE }log_buf_len=16M${extra_cmdline:+ $extra_cmdline}"
  rm -rf "$out"; mkdir -p "$out"
  local rc=0
  set +e
  "$top/qemu/run-vm" --out "$out" --timeout "$tmo" "${kargs[@]}" --file "$ko" \
    "$here/guest/config-stress.sh" "KO=/extra/$(basename "$ko")" "WRITERS=$writers" \
    "WRITES=$writes" "SEED=$seed" "STRESS_TIMEOUT=$((tmo - 170))"
  rc=$?
  set -e

  # TAP from the results channel (only the guest script writes there), renumbered.
  local n=0 pass=0 fail=0 l src="$out/results.txt"
  [ -s "$src" ] || src="$out/console.log"
  while IFS= read -r l; do
    case "$l" in
      "ok "*) n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - ${l#ok * - }" ;;
      "not ok "*) n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - ${l#not ok * - }" ;;
      "# "*) echo "$l" ;;
    esac
  done < <(grep -E '^(not )?ok [0-9]+ - |^# ' "$src" || true)
  n=$((n + 1))
  if [ "$rc" = 0 ]; then pass=$((pass + 1)); echo "ok $n - VM run (guest exit 0)"
  else
    local why="rc $rc"
    case "$rc" in
      3) why="no exit marker" ;; 5) why="kernel splat on the console (run-vm splat scan)" ;;
      124) why="VM timeout after ${tmo}s" ;;
    esac
    fail=$((fail + 1)); echo "not ok $n - VM run ($why; log $out/console.log)"
  fi
  echo "1..$n"
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}

main "$@"
