#!/usr/bin/env bash
# Scale-out suite: one VM boot (qemu/run-vm --topology scaleout) with two directors behind an
# ECMP edge router, the same IPVS mh service and GUE table on both, sloppy TCP; 64 concurrent
# uploads, one director lost mid-run and brought back (tests/guest/scaleout.sh).  Cells: ours
# (DR + the module) and the kernel's C IPVS GUE, IPv4 and IPv6; two negative controls (no
# sloppy TCP on the surviving director; a server drained on one director only: the moved flows
# must break, KTAP # XFAIL); flows spread over the fabric's second ECMP hop (entropy), its
# control (an address-only hash there puts every flow on one link, XFAIL), and that fabric
# spreading IPv6 flows again by the flow label our --flowlabel hash sets (entropy6fl).
# KTAP, ending with "N passed, M failed"; exit 1 if anything failed, 2 on usage errors.
#   tests/scaleout.sh [--cells LIST] [--kernel BZIMAGE] [--out DIR] [--timeout SECS] [MODULE.ko]
#   MODULE.ko default: $IPVS_GUE_KO, else ./ipvs_gue.ko.  LIST: comma/space separated, of
#   rust4 rust6 c-gue4 c-gue6 nosloppy4 drain4 entropy4 entropy6 entropy4l3 entropy6l3
#   entropy6fl.  Console
#   log and results.txt (one JSON line per cell) stay in DIR (default target/scaleout).
#   env SIZES, FLOWS_PER_SIZE, FAIL_AT, DETECT_MS, RESTORE_AFTER are passed on (see the guest
#   script); the guest gets 2 GiB (64 sockets' buffers).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
vm_suite_args scaleout 900 "rust4 rust6 c-gue4 c-gue6 nosloppy4 drain4 entropy4 entropy6 entropy4l3
  entropy6l3 entropy6fl" "$@"
env=("KO=/extra/$(basename "$SUITE_KO")")
[ -z "$SUITE_CELLS" ] || env+=("CELLS=$SUITE_CELLS")
for v in SIZES FLOWS_PER_SIZE FAIL_AT DETECT_MS RESTORE_AFTER; do
  [ -z "${!v:-}" ] || env+=("$v=${!v}")
done
t0=$SECONDS rc=0
IPVS_GUE_MEM=${IPVS_GUE_MEM:-2G} "$TOP/qemu/run-vm" "${SUITE_KERNEL_ARGS[@]}" --topology scaleout \
  --out "$SUITE_OUT" --timeout "$SUITE_TMO" --file "$SUITE_KO" "$TOP/tests/guest/scaleout.sh" "${env[@]}" || rc=$?
vm_suite_finish scaleout "$rc" "$t0"
