#!/usr/bin/env bash
# End-to-end upload test through the director: one VM boot per group, many cells per boot.
#   tests/e2e.sh [--variants dr,c-gue,rust,rust-bug] [--cells SPECS] [--iperf SPECS] [--quick]
#                [--expect-bug] [--expect-loss] [--timeout SECS] [--kernel BZIMAGE] [--out DIR]
#   env: IPVS_GUE_KO (rust), IPVS_GUE_BUG_KO (rust-bug), IPVS_GUE_BZIMAGE, and SIZES REQUESTS
#        DEADLINES CONNECTIONS TIMEOUT_MS EGRESS_MTU IPERF_SECS PCAP_COUNT passed through to the guest
#        (defaults and their reasoning: tests/guest/e2e.sh).
# A cell spec is VARIANT:CLIENT_FAMILY:OUTER_FAMILY:CSUM[:RS[:EGRESS_MTU]]; default matrix: dr 4/4
# and 6/6, c-gue {4,6}x{4,6}x{nocsum,csum,remcsum} plus rs2 (behind the router) and MTU-1500
# cells, rust the same as c-gue plus an IPv6-in-IPv4 cell at egress MTU 1300, rust-bug 4/4 and
# 6/6 nocsum.
# A cell fails on any transmit-path drop, GSO error, integrity mismatch, request over deadline,
# (GUE variants, payload >= 64K) gso_calls == 0, any receive-side drop (real servers, router), or
# a conservation gap (segments in at the director = segments out = segments the real server
# decapsulated, up to counted drops; docs/harness.md).  rust-bug and --expect-bug groups must
# show the bug: each large-payload record failing on drops or GSO errors is an expected failure
# (KTAP "# XFAIL"), one that does not is a failure; --expect-loss (a module that loses packets
# silently, scripts/build-module --lossy) expects every large record to fail conservation.
# Writes OUT/summary.json (all records; default OUT=target/e2e), prints KTAP + a table.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
variants=dr,c-gue,rust
cells=; iperf=; quick=0; expect_bug=0; expect_loss=0; tmo=1200; kernel_args=(); out="$TOP/target/e2e"
while [ $# -gt 0 ]; do
  case "$1" in
    --variants) need_value "$1" $#; variants=$2; shift 2 ;;
    --cells) need_value "$1" $#; cells=$2; shift 2 ;;
    --iperf) need_value "$1" $#; iperf=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --expect-bug) expect_bug=1; shift ;;
    --expect-loss) expect_loss=1; shift ;;
    --timeout) need_value "$1" $#; need_number "$1" "$2"; tmo=$2; shift 2 ;;
    --kernel) need_value "$1" $#; kernel_args=(--kernel "$2"); shift 2 ;;
    --out) need_value "$1" $#; out=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
  esac
done
require_tools qemu-system-x86_64 jq
mkdir -p "$out"; out=$(cd "$out" && pwd)

matrix() { # VARIANT -> cell specs
  case "$1" in
    dr) echo "dr:4:4:none dr:6:6:none" ;;
    rust-bug) echo "rust-bug:4:4:nocsum rust-bug:6:6:nocsum" ;;
    *) if [ "$quick" = 1 ]; then echo "$1:4:4:nocsum $1:6:6:csum"; else
         for cf in 4 6; do for of in 4 6; do for cs in nocsum csum remcsum; do
           printf '%s:%s:%s:%s ' "$1" "$cf" "$of" "$cs"; done; done; done
         # rs2 sits behind a router; EGRESS_MTU 1500 makes full-size segments too big once
         # encapsulated, so the PMTU path must answer (Rust: ICMP; C: outer fragmentation).
         echo "$1:4:6:csum:rs2 $1:6:4:remcsum:rs2 $1:4:4:nocsum:rs1:1500 $1:6:6:csum:rs1:1500 $1:6:4:nocsum:rs1:1500"
         # IPv6 in IPv4 with 1268 bytes left: under IPv6's 1280 but a usable IPv4 tunnel (the
         # floor is the outer family's); packets up to 1280 go out in outer fragments.
         [ "$1" != rust ] || echo "$1:6:4:nocsum:rs1:1300"
       fi ;;
  esac
}
iperf_spec() { case "$1" in dr) echo "dr:4:4:none" ;; *) echo "$1:4:4:nocsum" ;; esac; }

# Groups: one boot each.  stock = dr + c-gue (no module); rust; rust-bug.
groups=()
for v in ${variants//,/ }; do
  case "$v" in
    dr|c-gue) [[ " ${groups[*]-} " == *" stock "* ]] || groups+=(stock) ;;
    rust|rust-bug) groups+=("$v") ;;
    *) usage_error "unknown variant $v" ;;
  esac
done

# A group run to show a failure (bug or silent-loss build): every large-payload record (GSO
# territory) must fail for WHY, an expected failure (XFAIL); one that does not fails the suite.
# The group's own TAP lines become diagnostics; small records are reported, not judged.
detected() { # GROUP WHAT WHY JQ_PREDICATE (on one record)
  local verdict desc nlarge=0
  ktap_diag_from cat "$gdir/tap.txt"
  while IFS=$'\t' read -r verdict desc; do
    nlarge=$((nlarge + 1))
    if [ "$verdict" = seen ]; then ktap_xfail "[$1] $desc" "$2 detected: $3"
    else ktap_fail "[$1] $desc: $2 NOT detected (no $3)"; fi
  done < <(grep '^{"name"' "$gdir/results.txt" | jq -r '
    select((.payload_bytes // 0) >= 65536 or .kind == "iperf3")
    | [if .passed == false and ('"$4"') then "seen" else "missed" end,
       "\(.name) \(if .kind == "iperf3" then "iperf3" else "\(.payload_bytes)B" end)"] | @tsv')
  [ "$nlarge" -gt 0 ] || ktap_fail "[$1] $2: no large-payload record to show it (rc $rc, ${dt}s; console $gdir/console.log)"
  # The guest exits 1 when its cells fail, as they must here; a timeout, panic or splat fails.
  case "$rc" in 0|1) ;; *) ktap_vm_run "$rc" "[$1] VM run" "$gdir/console.log" ;; esac
}
initrd=$("$TOP/qemu/build-initramfs" | tail -n1)
passthru=()
for k in SIZES REQUESTS DEADLINES CONNECTIONS TIMEOUT_MS EGRESS_MTU IPERF_SECS PCAP_COUNT; do
  [ -z "${!k:-}" ] || passthru+=("$k=${!k}")
done
: > "$out/records.jsonl"
t_all=$(date +%s)
for g in "${groups[@]}"; do
  files=(); env=(); gcells=; giperf=; bug=$expect_bug
  case "$g" in
    stock) for v in ${variants//,/ }; do
             case "$v" in dr|c-gue) gcells+="$(matrix "$v") "; giperf+="$(iperf_spec "$v") " ;; esac; done ;;
    rust|rust-bug)
      ko=${IPVS_GUE_KO:-}; [ "$g" = rust ] || { ko=${IPVS_GUE_BUG_KO:-}; bug=1; }
      if [ -z "$ko" ] || [ ! -f "$ko" ]; then
        ktap_fail "$g cells: module missing (set IPVS_GUE_$( [ "$g" = rust ] && echo KO || echo BUG_KO ))"
        continue
      fi
      files=(--file "$ko"); env=("KO=/extra/$(basename "$ko")")
      # With the bug a 16 MiB upload crawls at ~5 Mbit/s (minutes per cell); 1 MiB already stalls.
      [ "$g" = rust ] || [ -n "${SIZES:-}" ] || env+=("SIZES=1K 64K 1M")
      gcells=$(matrix "$g"); giperf=$(iperf_spec "$g")
      # Header layout vs the C path: both transmitters are available in this boot.
      # (default with the full matrix; LAYOUTS=... selects them, LAYOUTS= none).
      if [ "$g" = rust ]; then
        env+=("UNDER_LOAD=${UNDER_LOAD:-1}")
        # The 100 000-server replacement under load drives the family with the kernel's YNL.
        files+=(--file "$TOP/tests/guest/ynl-scale.py:/guest/ynl-scale.py")
        ynl=$(ynl_guest_files)
        mapfile -t -O "${#files[@]}" files <<< "$ynl"
        if [ -n "${LAYOUTS+set}" ]; then env+=("LAYOUTS=$LAYOUTS")
        elif [ "$quick" = 0 ] && [ -z "$cells" ]; then env+=("LAYOUTS=4:4:nocsum 4:6:csum 6:4:remcsum 6:6:csum"); fi
      fi ;;
  esac
  [ -z "$cells" ] || gcells=$(for c in $cells; do case "$g:${c%%:*}" in stock:dr|stock:c-gue|rust:rust|rust-bug:rust-bug) echo "$c" ;; esac; done)
  [ -z "$iperf" ] || giperf=$(for c in $iperf; do case "$g:${c%%:*}" in stock:dr|stock:c-gue|rust:rust|rust-bug:rust-bug) echo "$c" ;; esac; done)
  gdir="$out/$g"; rm -rf "$gdir"
  # KTAP comes after the last boot (plan first): say on stderr what is running meanwhile.
  log "[$g] boot: $(wc -w <<< "$gcells") cells, $(wc -w <<< "$giperf") iperf3 runs"
  t0=$(date +%s) rc=0
  "$TOP/qemu/run-vm" "${kernel_args[@]}" --initrd "$initrd" --out "$gdir" --timeout "$tmo" "${files[@]}" \
    "$TOP/tests/guest/e2e.sh" "CELLS=$(echo $gcells)" "IPERF=$(echo $giperf)" "${env[@]}" "${passthru[@]}" || rc=$?
  dt=$(( $(date +%s) - t0 ))
  grep -E '^(not )?ok [0-9]+ - |^# ' "$gdir/console.log" | sed "s/^\(not \)\?ok [0-9]* - /&[$g] /" > "$gdir/tap.txt" || true
  # Records of a bug group say so: their passed=false is the expected outcome.
  loss=0; [ "$g" != rust ] || loss=$expect_loss
  grep '^{"name"' "$gdir/results.txt" | jq -c --argjson bug "$bug" --argjson loss "$loss" \
    '. + {expect_bug: ($bug == 1)} + (if $loss == 1 then {expect_loss: true} else {} end)' \
    >> "$out/records.jsonl" || true
  nrec=$(grep -c '^{"name"' "$gdir/results.txt" || true)
  log "[$g] done in ${dt}s: guest exit $rc, $nrec records, $(grep -c '^not ok' "$gdir/tap.txt" || true) guest results failed"
  if [ "$g" = rust ] && [ "$expect_loss" = 1 ]; then
    # Silent loss must be caught by the conservation balance in every large-payload record.
    detected "$g" "silent loss" "conservation" '.conserved == false'
  elif [ "$bug" = 0 ]; then
    ktap_relay "$gdir/tap.txt"
    ktap_vm_run "$rc" "[$g] VM run: $nrec records, ${dt}s" "$gdir/console.log"
  else
    # Every large-payload record (GSO territory) must show the bug: drops or GSO errors.
    detected "$g" "bug" "drops/GSO errors" '(.director_drops // 0) > 0 or (.gso_errors // 0) > 0'
  fi
  ktap_diag "[$g] boot+run ${dt}s; console $gdir/console.log"
done
jq -s . "$out/records.jsonl" > "$out/summary.json"
ktap_diag "summary: $out/summary.json ($(jq length "$out/summary.json") records, total $(( $(date +%s) - t_all ))s)"
# segs in/out/rs: director eth-a in, GUE segments out at eth-b, delivered by the real server;
# rx_drop: receive-side counters + reasoned kfree_skb; cons: conservation balance (docs/harness.md).
records_table() {
  jq -r '(["name","payload","ok/req","Mbit/s","p99_ms","drops","gso","gso_err","rtx","segs in/out/rs","rx_drop","cons","pass"] | @tsv),
    (.[] | select(.kind != "layout") | [.name, (.payload_bytes // "-"), "\(.ok // .requests)/\(.requests)", (.throughput_mbps // "-"),
            (.p99_ms // "-"), .director_drops, .gso_calls, .gso_errors, .retransmits,
            (if .in_segs == null then "-" else "\(.in_segs)/\(.out_segs)/\(.rs_segs)" end),
            (if .rx_drops == null then "-" else .rx_drops + .rx_kfree end),
            (if .conserved == null then "-" elif .conserved then "ok" else "FAIL" end), .passed] | @tsv)' \
    "$out/summary.json" | column -t -s $'\t'
}
ktap_diag_from records_table
ktap_finish
