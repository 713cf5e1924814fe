#!/usr/bin/env bash
# Scale-out suite: one VM boot (qemu/run-vm --topology scaleout) with two directors behind an
# ECMP edge router, the same IPVS mh service and GUE table on both, sloppy TCP; 64 concurrent
# uploads, one director lost mid-run and brought back (tests/guest/scaleout.sh).  Cells: ours
# (DR + the module) and the kernel's C IPVS GUE, IPv4 and IPv6; two negative controls (no
# sloppy TCP on the surviving director; a server drained on one director only: the moved flows
# must break, KTAP # XFAIL); flows spread over the fabric's second ECMP hop (entropy) and its
# control (an address-only hash there puts every flow on one link, XFAIL).
# KTAP, ending with "N passed, M failed"; exit 1 if anything failed, 2 on usage errors.
#   tests/scaleout.sh [--cells LIST] [--kernel BZIMAGE] [--out DIR] [--timeout SECS] [MODULE.ko]
#   MODULE.ko default: $IPVS_GUE_KO, else ./ipvs_gue.ko.  LIST: comma/space separated, of
#   rust4 rust6 c-gue4 c-gue6 nosloppy4 drain4 entropy4 entropy6 entropy4l3 entropy6l3.  Console
#   log and results.txt (one JSON line per cell) stay in DIR (default target/scaleout).
#   env SIZES, FLOWS_PER_SIZE, FAIL_AT, DETECT_MS, RESTORE_AFTER are passed on (see the guest
#   script); the guest gets 2 GiB (64 sockets' buffers).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
ko=${IPVS_GUE_KO:-}
cells=; out="$TOP/target/scaleout"; tmo=900; kernel_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cells) need_value "$1" $#; cells=${2//,/ }; shift 2 ;;
    --kernel) need_value "$1" $#; kernel_args=(--kernel "$2"); shift 2 ;;
    --out) need_value "$1" $#; out=$2; shift 2 ;;
    --timeout) need_value "$1" $#; need_number "$1" "$2"; tmo=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) usage_error "unknown option $1" ;;
    *) ko=$1; shift ;;
  esac
done
for c in $cells; do
  case "$c" in rust4|rust6|c-gue4|c-gue6|nosloppy4|drain4|entropy4|entropy6|entropy4l3|entropy6l3) ;; *) usage_error "unknown cell '$c'" ;; esac
done
[ -n "$ko" ] || ko="$TOP/ipvs_gue.ko"
[ -f "$ko" ] || usage_error "no such module $ko (build it: scripts/build-module)"
require_tools qemu-system-x86_64

mkdir -p "$out"; out=$(cd "$out" && pwd)
rm -f "$out/console.log" "$out/results.txt"
env=("KO=/extra/$(basename "$ko")")
[ -z "$cells" ] || env+=("CELLS=$(echo $cells)")
for v in SIZES FLOWS_PER_SIZE FAIL_AT DETECT_MS RESTORE_AFTER; do
  [ -z "${!v:-}" ] || env+=("$v=${!v}")
done
t0=$SECONDS rc=0
IPVS_GUE_MEM=${IPVS_GUE_MEM:-2G} "$TOP/qemu/run-vm" "${kernel_args[@]}" --topology scaleout --out "$out" \
  --timeout "$tmo" --file "$ko" "$TOP/tests/guest/scaleout.sh" "${env[@]}" || rc=$?
ktap_relay "$out/console.log"
ktap_vm_run "$rc" "VM run, $((SECONDS - t0)) s" "$out/console.log"
ktap_diag "results: $out/results.txt ($(grep -c '"suite":"scaleout"' "$out/results.txt" 2>/dev/null || true) cell records)"
ktap_finish
