#!/usr/bin/env bash
# Relayed-traffic and edge-case suite: one VM boot with the module loaded; cells (tests/guest/relay.sh)
# for traffic IPVS forwards for a direct-routing connection that the module must encapsulate too:
#   onepacket   UDP service with one-packet scheduling (-o) to the on-link rs1, IPv4 + IPv6
#   ipsec       ESP/AH after the IKE UDP/500 datagram of a persistent service (IPv4 ESP+AH, IPv6 ESP)
#   icmp        ICMP frag-needed / ICMPv6 packet-too-big about a connection, to rs1 and rs2 (router)
#   frag6       ~3000-byte UDP datagrams fragmented by the client, reassembled by the director
#   localouter  outer tunnel address local to the director / a broadcast address: no GUE sent
#   localclient upload from a socket on the director itself (egress MTU 1500), socket ownership
# TAP + "N passed, M failed"; exit 1 if anything failed, 2 on usage errors.
#   tests/relay.sh [--cells LIST] [--kernel BZIMAGE] [--out DIR] [--timeout SECS] [MODULE.ko]
#   MODULE.ko default: $IPVS_GUE_KO, else ./ipvs_gue.ko.  LIST: comma/space separated cell names.
#   Console log and results.txt (one JSON line per cell) stay in DIR (default target/relay).
#   env LOCAL_DEADLINES (localclient per-request deadlines, default 64K=2000,1M=5000) is passed on.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
ko=${IPVS_GUE_KO:-}
cells=; out="$top/target/relay"; tmo=360; kernel_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cells) [ $# -ge 2 ] || { echo "relay: --cells needs a value" >&2; exit 2; }; cells=${2//,/ }; shift 2 ;;
    --kernel) [ $# -ge 2 ] || { echo "relay: --kernel needs a value" >&2; exit 2; }; kernel_args=(--kernel "$2"); shift 2 ;;
    --out) [ $# -ge 2 ] || { echo "relay: --out needs a value" >&2; exit 2; }; out=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || { echo "relay: --timeout needs a value" >&2; exit 2; }; tmo=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "relay: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) ko=$1; shift ;;
  esac
done
for c in $cells; do
  case "$c" in onepacket|ipsec|icmp|frag6|localouter|localclient) ;;
    *) echo "relay: unknown cell '$c' (see --help)" >&2; exit 2 ;; esac
done
case "$tmo" in ''|*[!0-9]*) echo "relay: --timeout needs seconds" >&2; exit 2 ;; esac
[ -n "$ko" ] || ko="$top/ipvs_gue.ko"
[ -f "$ko" ] || { echo "relay: no such module $ko (build it: scripts/build-module)" >&2; exit 2; }

mkdir -p "$out"; out=$(cd "$out" && pwd)
rm -f "$out/console.log" "$out/results.txt"
env=("KO=/extra/$(basename "$ko")")
[ -z "$cells" ] || env+=("CELLS=$(echo $cells)")
[ -z "${LOCAL_DEADLINES:-}" ] || env+=("LOCAL_DEADLINES=$LOCAL_DEADLINES")
t0=$(date +%s)
set +e
"$top/qemu/run-vm" "${kernel_args[@]}" --out "$out" --timeout "$tmo" --file "$ko" \
  "$here/guest/relay.sh" "${env[@]}"
rc=$?
set -e
dt=$(( $(date +%s) - t0 ))
n=0; pass=0; fail=0
while IFS= read -r l; do
  case "$l" in
    "ok "*) n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - ${l#ok * - }" ;;
    "not ok "*) n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - ${l#not ok * - }" ;;
    "# "*) echo "$l" ;;
  esac
done < <(grep -E '^(not )?ok [0-9]+ - |^# ' "$out/console.log" 2>/dev/null || true)
n=$((n + 1))
if [ "$rc" = 0 ]; then pass=$((pass + 1)); echo "ok $n - VM run (guest exit 0, ${dt}s)"
else fail=$((fail + 1)); echo "not ok $n - VM run (rc $rc, ${dt}s; log $out/console.log)"; fi
echo "# results: $out/results.txt ($(grep -c '"suite":"relay"' "$out/results.txt" 2>/dev/null || true) cell records)"
echo "1..$n"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
