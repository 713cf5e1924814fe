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
vm_suite_args relay 360 "onepacket ipsec icmp frag6 localouter localclient hotpath reroute" "$@"
env=("KO=/extra/$(basename "$SUITE_KO")")
[ -z "$SUITE_CELLS" ] || env+=("CELLS=$SUITE_CELLS")
[ -z "${LOCAL_DEADLINES:-}" ] || env+=("LOCAL_DEADLINES=$LOCAL_DEADLINES")
t0=$SECONDS rc=0
"$TOP/qemu/run-vm" "${SUITE_KERNEL_ARGS[@]}" --out "$SUITE_OUT" --timeout "$SUITE_TMO" --file "$SUITE_KO" \
  "$TOP/tests/guest/relay.sh" "${env[@]}" || rc=$?
vm_suite_finish relay "$rc" "$t0"
