#!/usr/bin/env bash
# Relayed-traffic and edge-case suite: one VM boot with the module loaded; cells (tests/guest/relay.sh)
# for traffic IPVS forwards for a direct-routing connection that the module must encapsulate too:
#   onepacket   UDP service with one-packet scheduling (-o) to the on-link rs1, IPv4 + IPv6
#   ipsec       ESP/AH after the IKE UDP/500 datagram of a persistent service (IPv4 ESP+AH, IPv6 ESP)
#   icmp        ICMP frag-needed / ICMPv6 packet-too-big about a connection, to rs1 and rs2 (router)
#   frag6       ~3000-byte UDP datagrams fragmented by the client, reassembled by the director
#   localouter  outer tunnel address local to the director / a broadcast address: no GUE sent
#   localclient upload from a socket on the director itself (egress MTU 1500), socket ownership
#   hotpath     IPVS connection and route lookups per encapsulated packet (kprobe counts), rs1, rs2
#   reroute     the cached route follows a route added and deleted, and an edited tunnel endpoint
# KTAP, ending with "N passed, M failed"; exit 1 if anything failed, 2 on usage errors.
#   tests/relay.sh [--cells LIST] [--kernel BZIMAGE] [--out DIR] [--timeout SECS] [MODULE.ko]
#   MODULE.ko default: $IPVS_GUE_KO, else ./ipvs_gue.ko.  LIST: comma/space separated cell names.
#   Console log and results.txt (one JSON line per cell) stay in DIR (default target/relay).
#   env LOCAL_DEADLINES (localclient per-request deadlines, default 64K=2000,1M=5000) is passed on.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
ko=${IPVS_GUE_KO:-}
cells=; out="$TOP/target/relay"; tmo=360; kernel_args=()
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
  case "$c" in onepacket|ipsec|icmp|frag6|localouter|localclient|hotpath|reroute) ;;
    *) usage_error "unknown cell '$c'" ;; esac
done
[ -n "$ko" ] || ko="$TOP/ipvs_gue.ko"
[ -f "$ko" ] || usage_error "no such module $ko (build it: scripts/build-module)"
require_tools qemu-system-x86_64

mkdir -p "$out"; out=$(cd "$out" && pwd)
rm -f "$out/console.log" "$out/results.txt"
env=("KO=/extra/$(basename "$ko")")
[ -z "$cells" ] || env+=("CELLS=$(echo $cells)")
[ -z "${LOCAL_DEADLINES:-}" ] || env+=("LOCAL_DEADLINES=$LOCAL_DEADLINES")
t0=$SECONDS rc=0
"$TOP/qemu/run-vm" "${kernel_args[@]}" --out "$out" --timeout "$tmo" --file "$ko" \
  "$TOP/tests/guest/relay.sh" "${env[@]}" || rc=$?
ktap_relay "$out/console.log"
ktap_vm_run "$rc" "VM run, $((SECONDS - t0)) s" "$out/console.log"
ktap_diag "results: $out/results.txt ($(grep -c '"suite":"relay"' "$out/results.txt" 2>/dev/null || true) cell records)"
ktap_finish
