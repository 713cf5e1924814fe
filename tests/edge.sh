#!/usr/bin/env bash
# Edge-traffic suite: traffic beyond TCP uploads and wire properties, every case through the
# module AND the kernel's C IPVS GUE path in the same boot, side by side (tests/guest/edge.sh):
#   udp      UDP service (no -o) request/response, IPv4 and IPv6, 64 / 1400 / 8000 B (fragmented)
#   sctp     SCTP service (--sctp-service), 1 KiB and 64 KiB requests, IPv4 and IPv6 (SKIP
#            without kernel/IPVS SCTP)
#   options  IPv4 record-route and timestamp options, IPv6 hop-by-hop + destination options:
#            exact bytes on the director's egress link and at the real server's socket
#   wire     outer UDP source port spread over 32 flows (and equal to C's per flow), one port
#            per flow for its life (UDP and TCP), DSCP x ECN -> outer DSCP/ECN (RFC 6040)
#   mtu      director egress MTU 68/576/1280/1312/1332 x inner x outer family: a 1 KiB request
#            and a 64 KiB upload, delivered or refused as docs/design.md "Path MTU" says
# Checked per case: delivery, director transmit drops (as qemu/guest/drops.sh counts them), the
# module's counters, rs1 receive errors (/proc/net/snmp{,6}), ICMP the client received.
# KTAP, ending with "N passed, M failed"; exit 1 if anything failed, 2 on usage errors.
#   tests/edge.sh [--cells LIST] [--one-boot] [--mtu-cases SPECS] [--label TEXT] [--kernel BZIMAGE]
#                 [--out DIR] [--timeout SECS] [MODULE.ko]
#   MODULE.ko default: $IPVS_GUE_KO, else ./ipvs_gue.ko.  LIST: comma/space separated cell names.
#   Boots: the mtu cell runs in two boots of its own (outer IPv4 / outer IPv6 cases; each boot
#   stays under ~8 minutes of TCG), the other cells share one; --one-boot puts everything in one.
#   --mtu-cases "M:CF:OF[:CSUM] ..." replaces the mtu cell's cases (one boot).
#   env GUE_TRAFFIC=PATH: use this gue-traffic binary in the guest instead of the initramfs one;
#   EDGE_TRACE=1: timestamped step diagnostics from the guest.
#   Console logs and results.txt (one JSON line per case and path) stay in DIR (default
#   target/edge/<boot>).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

main() {
  local ko=${IPVS_GUE_KO:-} cells="udp sctp options wire mtu" one_boot=0 mtu_cases= label=
  local out="$TOP/target/edge" tmo=540 kernel_args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --cells) need_value "$1" $#; cells=${2//,/ }; shift 2 ;;
      --one-boot) one_boot=1; shift ;;
      --mtu-cases) need_value "$1" $#; mtu_cases=$2; shift 2 ;;
      --label) need_value "$1" $#; label=$2; shift 2 ;;
      --kernel) need_value "$1" $#; kernel_args=(--kernel "$2"); shift 2 ;;
      --out) need_value "$1" $#; out=$2; shift 2 ;;
      --timeout) need_value "$1" $#; tmo=$2; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      -*) usage_error "unknown option $1" ;;
      *) ko=$1; shift ;;
    esac
  done
  local c
  for c in $cells; do
    case "$c" in udp|sctp|options|wire|mtu) ;;
      *) usage_error "unknown cell '$c'" ;; esac
  done
  need_number --timeout "$tmo"
  [ -n "$ko" ] || ko="$TOP/ipvs_gue.ko"
  [ -f "$ko" ] || usage_error "no such module $ko (build it: scripts/build-module)"
  require_tools qemu-system-x86_64
  local files=(--file "$ko")
  if [ -n "${GUE_TRAFFIC:-}" ]; then
    [ -x "$GUE_TRAFFIC" ] || usage_error "GUE_TRAFFIC=$GUE_TRAFFIC is not executable"
    files+=(--file "$GUE_TRAFFIC:/bin/gue-traffic")
  fi

  # Boots (NAME|CELLS|MTU_CASES): the mtu cell's cases split by outer family into two boots of
  # their own, everything else in one (each boot stays under ~8 minutes of TCG); --one-boot: one.
  local boots=() rest= m f of4= of6=
  for c in $cells; do [ "$c" = mtu ] || rest="$rest $c"; done
  for m in 68 576 1280 1312 1332; do
    for f in 4 6; do of4="$of4 $m:$f:4"; of6="$of6 $m:$f:6"; done
  done
  # Remote checksum offload at 1332 over IPv6: 1280 left, 1272 for packets carrying the option.
  of6="$of6 1332:4:6:remcsum 1332:6:6:remcsum"
  if [ "$one_boot" = 1 ]; then boots=("all|$cells|$mtu_cases")
  else
    [ -z "$rest" ] || boots+=("main|$rest|")
    if [[ " $cells " == *" mtu "* ]]; then
      if [ -n "$mtu_cases" ]; then boots+=("mtu|mtu|$mtu_cases")
      else boots+=("mtu-o4|mtu|${of4# }" "mtu-o6|mtu|${of6# }"); fi
    fi
  fi

  mkdir -p "$out"; out=$(cd "$out" && pwd)
  local b name list cases dir rc t0 env t_all=$SECONDS
  for b in "${boots[@]}"; do
    IFS='|' read -r name list cases <<< "$b"
    dir="$out/$name"; rm -rf "$dir"; mkdir -p "$dir"
    env=("KO=/extra/$(basename "$ko")" "CELLS=$(echo $list)")
    [ -z "$label" ] || env+=("LABEL=$label")
    [ -z "$cases" ] || env+=("MTU_CASES=$cases")
    [ -z "${EDGE_TRACE:-}" ] || env+=("EDGE_TRACE=$EDGE_TRACE")
    log "[$name] boot: cells $list"
    t0=$SECONDS rc=0
    "$TOP/qemu/run-vm" "${kernel_args[@]}" --out "$dir" --timeout "$tmo" "${files[@]}" \
      "$TOP/tests/guest/edge.sh" "${env[@]}" || rc=$?
    ktap_relay "$dir/console.log"
    ktap_vm_run "$rc" "[$name] VM run, $((SECONDS - t0)) s" "$dir/console.log"
    ktap_diag "[$name] results: $dir/results.txt ($(grep -c '"suite":"edge"' "$dir/results.txt" 2>/dev/null || true) case records)"
  done
  ktap_diag "total $((SECONDS - t_all)) s"
  ktap_finish
}

main "$@"
