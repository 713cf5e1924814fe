# Guest side of tests/relay.sh: traffic IPVS relays for a direct-routing connection that the
# module must encapsulate too, and edge cases of the transmit path.  busybox sh; run by /init.
#   KO      module to insmod before the topology is built
#   CELLS   which cells (default all): onepacket ipsec icmp frag6 localouter localclient hotpath
#           reroute
# Every cell: a DR service (-g) to the real server's address plus the module's GUE config for it
# (ipvs-gue-ctl, as ipvs_service_rust does); assertions on the module's per-server counters
# (columns by name from the listing's header line) and on what arrives at the real server.
# TAP on the console, one JSON line per cell on /dev/ttyS1.
. /guest/lib.sh
CELLS=${CELLS:-onepacket ipsec icmp frag6 localouter localclient hotpath reroute}
PROC=/proc/net/ipvs_gue
any_addr() { [ "$1" = 6 ] && echo "[::]:$2" || echo "0.0.0.0:$2"; }

# ---- helpers -------------------------------------------------------------------------------

# Counter COLUMN (a name from the listing header, e.g. packets, drop_pmtu) of real server ADDR;
# "-" when the server is not listed.
mod_stat() { # ADDR COLUMN
  nsx director awk -v a="$1" -v c="$2" '
    /^# addr / { for (i = 2; i <= NF; i++) col[$i] = i - 1; next }
    /^#/ { next }
    $1 == a && (c in col) { v = $(col[c]); f = 1 }
    END { print (f ? v : "-") }' "$PROC"
}
# All counters of ADDR as "packets=.. gso_packets=.. ..." (for diagnostics).
mod_row() { # ADDR
  nsx director awk -v a="$1" '
    /^# addr / { for (i = 2; i <= NF; i++) name[i - 1] = $i; n = NF - 1; next }
    /^#/ { next }
    $1 == a { s = ""; for (i = 5; i <= n; i++) s = s name[i] "=" $i " "; print s }' "$PROC"
}
# Delta of a counter value pair, "-" if either side is unknown.
delta() { case "$1$2" in *-*) echo "-" ;; *) echo $(($2 - $1)) ;; esac; }
ge() { case "$1" in ''|*[!0-9]*) return 1 ;; esac; [ "$1" -ge "$2" ]; }
eq() { [ "$1" = "$2" ]; }

# /proc/net/snmp counter (PROTO e.g. Ip, Icmp) or /proc/net/snmp6 counter (KEY e.g. Icmp6InPktTooBigs).
snmp() { # NS PROTO KEY
  nsx "$1" awk -v p="$2:" -v k="$3" '$1 == p && !h {for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next}
    $1 == p && h {print (k in c) ? $(c[k]) : "-"; exit}' /proc/net/snmp
}
snmp6() { # NS KEY
  nsx "$1" awk -v k="$2" '$1 == k {print $2; f = 1} END {if (!f) print "-"}' /proc/net/snmp6
}

relay_clear() {
  nsx director ipvsadm -C
  nsx director ipvs-gue-ctl -C 2>/dev/null || true
}

# Module config for one real server, GUE to port 5501 [of OUTER]; error text on stdout.
gue_add() { # ADDR [OUTER]
  nsx director ipvs-gue-ctl -a -r "$1" --gue-port "$GUE_PORT" ${2:+--outer "$2"} 2>&1
}

udp_service() { # VIP PORT RS_ADDR [ipvsadm -A options...]
  local svc dst
  svc=$(hostport "$1" "$2"); dst=$(hostport "$3" "$2"); shift 3
  nsx director ipvsadm -A -u "$svc" -s rr "$@" && nsx director ipvsadm -a -u "$svc" -r "$dst" -g
}

# Cell setup: clear, UDP DR service, module config for the real server.  On failure: TAP fail.
setup_udp() { # NAME VIP PORT RS_ADDR OUTER(""=default) [ipvsadm -A options...]
  local name vip port rsa outer err
  name=$1 vip=$2 port=$3 rsa=$4 outer=$5; shift 5
  relay_clear
  if ! udp_service "$vip" "$port" "$rsa" "$@"; then tap_fail "$name: IPVS service setup"; return 1; fi
  if ! err=$(gue_add "$rsa" "$outer"); then tap_fail "$name: module config ($err)"; return 1; fi
}

# UDP sink in NS until COUNT datagrams or TIMEOUT_MS; JSON into OUT.  Waits until bound.
sink_start() { # NS LISTEN COUNT TIMEOUT_MS OUT
  local i
  rm -f "$5" "$5.err"
  nsx "$1" gue-traffic udp-sink --listen "$2" --count "$3" --timeout-ms "$4" --json "$5" 2> "$5.err" &
  SINK_PID=$!
  i=0
  until grep -q "listening on" "$5.err" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 50 ] || { echo "# sink in $1 did not start: $(cat "$5.err")"; return 1; }
    sleep 0.1
  done
}
# Waits for the sink (not in a subshell: only this shell can wait for it), then sets
# SINK_GOT SINK_MIN SINK_MAX from its JSON.
sink_wait() { # OUT
  wait "$SINK_PID"
  set -- $(jq -r '"\(.datagrams) \(.min_bytes) \(.max_bytes)"' "$1" 2>/dev/null || echo "0 null null")
  SINK_GOT=${1:-0} SINK_MIN=${2:-null} SINK_MAX=${3:-null}
}

# Let encapsulated packets and counters settle (TCG).
settle() { sleep "${1:-0.5}"; }

# Cells compute ok=1 and clear it with "cond && cond && ok=0"; PASSED 0 = pass.
report() { # NAME PASSED(0|1) TEXT JSON-OBJECT
  result "$(echo "$4" | jq -c --arg name "$1" --argjson passed "$([ "$2" = 0 ] && echo true || echo false)" \
    '{name: $name, suite: "relay"} + . + {passed: $passed}')"
  if [ "$2" = 0 ]; then tap_ok "$1: $3"; else tap_fail "$1: $3"; fi
}

# ---- 1. one-packet scheduling --------------------------------------------------------------
# ipvsadm -o: IPVS schedules every datagram on its own and never hashes the connection, so a
# connection-table lookup misses; the module must still encapsulate for the on-link rs1.
cell_onepacket() { # FAMILY
  local fam n port name vip rsa p0 got p1 tx ok
  fam=$1 n=20 port=7001 name="onepacket-c$1-rs1"
  vip=$(vip_of "$fam") rsa=$(rs_addr rs1 "$fam")
  setup_udp "$name" "$vip" "$port" "$rsa" "" -o || return
  sink_start rs1 "$(any_addr "$fam" $port)" $n 8000 /tmp/op.json || { tap_fail "$name: sink"; return; }
  p0=$(mod_stat "$rsa" packets)
  nsx client gue-traffic send --to "$(hostport "$vip" $port)" --count $n --size 200 --interval-ms 20 \
    --json /tmp/send.json 2>/tmp/send.err
  sink_wait /tmp/op.json; got=$SINK_GOT
  p1=$(mod_stat "$rsa" packets); tx=$(delta "$p0" "$p1")
  ok=1; ge "$tx" $n && ge "$got" $n && ok=0
  report "$name" "$ok" "$n datagrams (-o): module tx +$tx (want >= $n), rs1 received $got" \
    "{\"family\":$fam,\"sent\":$n,\"module_tx\":\"$tx\",\"received\":$got}"
  [ "$ok" = 0 ] || diag "  module row: $(mod_row "$rsa")"
}

# ---- 2. ESP / AH keyed on the IKE connection -------------------------------------------------
# IPVS looks AH/ESP up as the UDP 500<->500 connection of their client (persistent service):
# after the IKE datagram, ESP/AH to the VIP follow it to the same real server.
cell_ipsec() { # FAMILY PROTOS
  local fam protos n name vip rsa cl p0 ike_got p1 ike_tx ok proto u0 tx u1 arrived
  fam=$1 protos=$2 n=10 name="ipsec-c$1-rs1"
  vip=$(vip_of "$fam") rsa=$(rs_addr rs1 "$fam") cl=$(client_addr "$fam")
  setup_udp "$name" "$vip" 500 "$rsa" "" -p 60 || return
  sink_start rs1 "$(any_addr "$fam" 500)" 1 5000 /tmp/ike.json || { tap_fail "$name: sink"; return; }
  p0=$(mod_stat "$rsa" packets)
  nsx client gue-traffic send --to "$(hostport "$vip" 500)" --bind "$(hostport "$cl" 500)" --count 1 \
    --json /tmp/send.json 2>/tmp/send.err
  sink_wait /tmp/ike.json; ike_got=$SINK_GOT
  settle 0.2
  p1=$(mod_stat "$rsa" packets); ike_tx=$(delta "$p0" "$p1")
  ok=1; ge "$ike_tx" 1 && ge "$ike_got" 1 && ok=0
  report "$name-ike" "$ok" "IKE datagrams $cl:500 -> $vip:500: module tx +$ike_tx, rs1 received $ike_got" \
    "{\"family\":$fam,\"module_tx\":\"$ike_tx\",\"received\":$ike_got}"
  for proto in $protos; do
    if [ "$fam" = 6 ]; then u0=$(snmp6 rs1 Ip6InUnknownProtos); else u0=$(snmp rs1 Ip InUnknownProtos); fi
    p0=$(mod_stat "$rsa" packets)
    nsx client gue-traffic send --to "$vip" --proto "$proto" --count $n --interval-ms 20 \
      --json /tmp/send.json 2>/tmp/send.err || diag "  send: $(cat /tmp/send.err)"
    settle
    p1=$(mod_stat "$rsa" packets); tx=$(delta "$p0" "$p1")
    if [ "$fam" = 6 ]; then u1=$(snmp6 rs1 Ip6InUnknownProtos); else u1=$(snmp rs1 Ip InUnknownProtos); fi
    arrived=$(delta "$u0" "$u1")
    ok=1; ge "$tx" $n && ge "$arrived" $n && ok=0
    report "$name-$proto" "$ok" "$n $proto packets to $vip after IKE: module tx +$tx (want >= $n), rs1 unknown-protocol deliveries +$arrived" \
      "{\"family\":$fam,\"proto\":\"$proto\",\"sent\":$n,\"module_tx\":\"$tx\",\"arrived\":\"$arrived\"}"
    [ "$ok" = 0 ] || diag "  module row: $(mod_row "$rsa")"
  done
}

# ---- 3. ICMP errors IPVS relays ---------------------------------------------------------------
# A router's "too big" about the real server's direct reply VIP:VPORT -> client:CPORT, sent by
# the client to the VIP: ip_vs_in_icmp finds the connection and relays it with packet_xmit.
ICMP_CPORT=40010
cell_icmp() { # RS FAMILY
  local rs fam n port name vip rsa cl cport flow_got key i0 p0 p1 tx i1 arrived kind ok
  rs=$1 fam=$2 n=3 port=7002 name="icmp-c$2-$1"
  vip=$(vip_of "$fam") rsa=$(rs_addr "$rs" "$fam") cl=$(client_addr "$fam")
  ICMP_CPORT=$((ICMP_CPORT + 1)); cport=$ICMP_CPORT
  setup_udp "$name" "$vip" $port "$rsa" "" || return
  sink_start "$rs" "$(any_addr "$fam" $port)" 1 5000 /tmp/icmp-flow.json || { tap_fail "$name: sink"; return; }
  nsx client gue-traffic send --to "$(hostport "$vip" $port)" --bind "$(hostport "$cl" $cport)" --count 1 \
    --json /tmp/send.json 2>/tmp/send.err
  sink_wait /tmp/icmp-flow.json; flow_got=$SINK_GOT
  if [ "$fam" = 6 ]; then key=Icmp6InPktTooBigs; i0=$(snmp6 "$rs" $key)
  else key=InDestUnreachs; i0=$(snmp "$rs" Icmp $key); fi
  p0=$(mod_stat "$rsa" packets)
  nsx client gue-traffic icmp-error --to "$vip" --quote-src "$(hostport "$vip" $port)" \
    --quote-dst "$(hostport "$cl" $cport)" --mtu 1400 --count $n --interval-ms 20 \
    --json /tmp/icmp.json 2>/tmp/icmp.err || diag "  icmp-error: $(cat /tmp/icmp.err)"
  settle
  p1=$(mod_stat "$rsa" packets); tx=$(delta "$p0" "$p1")
  if [ "$fam" = 6 ]; then i1=$(snmp6 "$rs" $key); else i1=$(snmp "$rs" Icmp $key); fi
  arrived=$(delta "$i0" "$i1")
  kind=$([ "$fam" = 6 ] && echo "ICMPv6 packet-too-big" || echo "ICMP frag-needed")
  ok=1; ge "$flow_got" 1 && ge "$tx" $n && ge "$arrived" $n && ok=0
  report "$name" "$ok" "$n $kind quoting $vip:$port -> $cl:$cport: module tx +$tx (want >= $n), $rs $key +$arrived (flow datagram received: $flow_got)" \
    "{\"family\":$fam,\"real_server\":\"$rs\",\"sent\":$n,\"module_tx\":\"$tx\",\"arrived\":\"$arrived\",\"flow_received\":$flow_got}"
  [ "$ok" = 0 ] || diag "  module row: $(mod_row "$rsa")"
}

# ---- 4. IPv6 fragments reassembled by the director --------------------------------------------
# nf_defrag_ipv6 hands IPVS the whole ~3 KB datagram; the module must judge the path MTU by the
# original fragments (as the IPv6 output path and the C path do), not the reassembled length.
cell_frag6() { # OUTER_FAMILY
  local of n size port name rsa outer p0 m0 c0 got minb maxb p1 m1 c1 tx pmtu ptb ok
  of=$1 n=5 size=3000 port=7003 name="frag6-c6-o$1-rs1"
  rsa=$(rs_addr rs1 6) outer=$(rs_addr rs1 "$of")
  setup_udp "$name" "$VIP6" $port "$rsa" "$outer" || return
  sink_start rs1 "[::]:$port" $n 8000 /tmp/frag.json || { tap_fail "$name: sink"; return; }
  p0=$(mod_stat "$rsa" packets) m0=$(mod_stat "$rsa" drop_pmtu) c0=$(snmp6 client Icmp6InPktTooBigs)
  nsx client gue-traffic send --to "[$VIP6]:$port" --count $n --size $size --interval-ms 50 \
    --json /tmp/send.json 2>/tmp/send.err
  sink_wait /tmp/frag.json; got=$SINK_GOT minb=$SINK_MIN maxb=$SINK_MAX
  settle 0.2
  p1=$(mod_stat "$rsa" packets) m1=$(mod_stat "$rsa" drop_pmtu) c1=$(snmp6 client Icmp6InPktTooBigs)
  tx=$(delta "$p0" "$p1") pmtu=$(delta "$m0" "$m1") ptb=$(delta "$c0" "$c1")
  ok=1
  ge "$got" $n && eq "$minb" $size && eq "$maxb" $size && eq "$pmtu" 0 && eq "$ptb" 0 && ge "$tx" $n && ok=0
  report "$name" "$ok" "$n x $size-byte datagrams (fragmented at 1500): rs1 received $got (sizes $minb..$maxb), module tx +$tx drop_pmtu +$pmtu, client packet-too-big +$ptb" \
    "{\"outer_family\":$of,\"sent\":$n,\"size\":$size,\"received\":$got,\"min_bytes\":$minb,\"max_bytes\":$maxb,\"module_tx\":\"$tx\",\"module_drop_pmtu\":\"$pmtu\",\"client_pkt_too_big\":\"$ptb\"}"
  [ "$ok" = 0 ] || diag "  module row: $(mod_row "$rsa")"
}

# ---- 5. outer address local to the director / broadcast ---------------------------------------
# The module must not send GUE to the director itself or to a broadcast address: no tx, the
# packets count as drop_no_route.  A configuration that refuses such an outer address also
# keeps the module from sending (reported as such).
cell_localouter() { # FAMILY OUTER LABEL
  local fam outer n port name vip rsa err p0 r0 p1 r1 tx noroute ok
  fam=$1 outer=$2 n=5 port=7004 name="outer-$3-c$1"
  vip=$(vip_of "$fam") rsa=$(rs_addr rs1 "$fam")
  relay_clear
  if ! udp_service "$vip" $port "$rsa"; then tap_fail "$name: IPVS service setup"; return; fi
  if ! err=$(gue_add "$rsa" "$outer"); then
    report "$name" 0 "outer $outer refused by the configuration ($err): nothing can be sent to it" \
      "{\"family\":$fam,\"outer\":\"$outer\",\"config_rejected\":true}"
    return
  fi
  p0=$(mod_stat "$rsa" packets) r0=$(mod_stat "$rsa" drop_no_route)
  nsx client gue-traffic send --to "$(hostport "$vip" $port)" --count $n --interval-ms 20 \
    --json /tmp/send.json 2>/tmp/send.err
  settle
  p1=$(mod_stat "$rsa" packets) r1=$(mod_stat "$rsa" drop_no_route)
  tx=$(delta "$p0" "$p1") noroute=$(delta "$r0" "$r1")
  ok=1; eq "$tx" 0 && ge "$noroute" $n && ok=0
  report "$name" "$ok" "$n datagrams, real server $rsa with outer $outer: module tx +$tx (want 0), drop_no_route +$noroute (want >= $n)" \
    "{\"family\":$fam,\"outer\":\"$outer\",\"sent\":$n,\"module_tx\":\"$tx\",\"module_drop_no_route\":\"$noroute\"}"
  [ "$ok" = 0 ] || diag "  module row: $(mod_row "$rsa")"
}

# ---- 6. a client on the director itself ----------------------------------------------------------
# Upload from a director socket bound to its link-A address (replies come back there by DSR),
# director egress MTU 1500 so full-size segments need a PMTU answer to the local socket.
# Two kernel effects are kept out of the measurement (both measured with the kernel's C GUE path
# too, so they are not the module's): (1) an IPv4 socket connected to the VIP (a local route)
# never picks up a PMTU learned after it connected (tcp_v4_mtu_reduced keeps its old MSS): it
# stalls on the too-big segment until it times out.  A short warm-up upload (not asserted) lets
# the module's answer create the route exception that later connections start with; without an
# answer (IPv6 before the fix) there is none and the measured upload still fails.  (2) With the
# local route's 64 KiB MTU the first segments exceed even the DR route's 1500, so IPVS's own DR
# check answers with 1500 and overwrites the module's 1468 in that exception: the director's
# lo MTU is 1500 during the cell, so only the module has to answer.  Socket
# ownership: with the sender's socket kept on the outer packets (skb_set_owner_w, as the C path),
# each freed outer packet runs sock_wfree; without it, almost none do.  sock_wfree also runs for
# other sockets' packets (UDP, ICMP, neighbour discovery, any namespace), so the count is taken
# over the hits whose skb->sk is one of the TCP sockets the upload connected (kprobe on
# tcp_connect records them; skb->sk is at offset 24 of struct sk_buff, after the list union).
# Deadlines per request: clean runs reach 64K ~50 ms / 1M ~270 ms (IPv4 and IPv6 alike), a run
# beside other TCG guests and a kernel build 600 ms / 2.1 s; without a PMTU answer nothing
# completes within the 6 s timeout, so generous limits still separate the outcomes.
LOCAL_DEADLINES=${LOCAL_DEADLINES:-64K=2000,1M=5000}
RELAY_INST=$TRACEFS/instances/relay
wfree_start() {
  WFREE_ALL= WFREE_OWN= WFREE_SOCKS= WFREE_OVERRUN=   # no figures of an earlier cell in this one's report
  [ -d $TRACEFS/events ] || mount -t tracefs tracefs $TRACEFS 2>/dev/null
  if ! grep -q "relay/wfree " $TRACEFS/kprobe_events 2>/dev/null; then
    echo 'p:relay/wfree sock_wfree sk=+24(%di):x64' >> $TRACEFS/kprobe_events || return 1
    echo 'p:relay/connect tcp_connect sk=%di:x64' >> $TRACEFS/kprobe_events || return 1
  fi
  [ -d $RELAY_INST ] || mkdir $RELAY_INST || return 1
  echo 0 > $RELAY_INST/tracing_on
  echo 4096 > $RELAY_INST/buffer_size_kb
  : > $RELAY_INST/trace
  echo 1 > $RELAY_INST/events/relay/wfree/enable
  echo 1 > $RELAY_INST/events/relay/connect/enable
  echo 1 > $RELAY_INST/tracing_on
  WFREE_HITS0=$(wfree_hits)
}
wfree_hits() { awk '($1 == "wfree" || $1 == "relay/wfree") {print $2; f = 1} END {if (!f) print 0}' $TRACEFS/kprobe_profile; }
# Sets WFREE_OWN (hits on the upload's sockets), WFREE_ALL (all hits), WFREE_SOCKS, WFREE_OVERRUN.
wfree_stop() {
  echo 0 > $RELAY_INST/tracing_on
  WFREE_ALL=$(( $(wfree_hits) - WFREE_HITS0 ))
  set -- $(awk '/ connect: / { for (i = 1; i <= NF; i++) if ($i ~ /^sk=/) own[substr($i, 4)] = 1 }
    / wfree: / { for (i = 1; i <= NF; i++) if ($i ~ /^sk=/) hit[substr($i, 4)]++ }
    END { n = 0; s = 0; for (k in own) { n++; s += hit[k] } print s + 0, n + 0 }' $RELAY_INST/trace)
  WFREE_OWN=$1 WFREE_SOCKS=$2
  WFREE_OVERRUN=$(cat $RELAY_INST/per_cpu/cpu*/stats 2>/dev/null | awk '$1 == "overrun:" {s += $2} END {print s + 0}')
  echo 0 > $RELAY_INST/events/relay/wfree/enable
  echo 0 > $RELAY_INST/events/relay/connect/enable
}

cell_localclient() { # FAMILY
  local fam name vip rsa bind err icmp_in icmp_out i0 o0 r0 wfree_ok p0 m0 trc p1 m1 tx pmtu wfree i1 o1 r1 summary ok half
  fam=$1 name="localclient-c$1-o$1-rs1"
  vip=$(vip_of "$fam") rsa=$(rs_addr rs1 "$fam")
  bind=$([ "$fam" = 6 ] && echo fd01::2 || echo 10.1.0.2)
  relay_clear
  nsx director $IP link set dev eth-b mtu 1500
  nsx director $IP link set dev lo mtu 1500
  if ! nsx director ipvsadm -A -t "$(hostport "$vip" 8080)" -s rr ||
     ! nsx director ipvsadm -a -t "$(hostport "$vip" 8080)" -r "$(hostport "$rsa" 8080)" -g; then
    tap_fail "$name: IPVS service setup"; localclient_restore; return
  fi
  if ! err=$(gue_add "$rsa"); then tap_fail "$name: module config ($err)"; localclient_restore; return; fi
  if [ "$fam" = 6 ]; then icmp_in=Icmp6InPktTooBigs icmp_out=Icmp6OutPktTooBigs
    i0=$(snmp6 director $icmp_in) o0=$(snmp6 director $icmp_out)
  else icmp_in=InDestUnreachs icmp_out=OutDestUnreachs
    i0=$(snmp director Icmp $icmp_in) o0=$(snmp director Icmp $icmp_out)
  fi
  r0=$(snmp director Tcp RetransSegs)
  wfree_ok=1; wfree_start || { wfree_ok=0; diag "  cannot trace sock_wfree / tcp_connect (kprobe events)"; }
  p0=$(mod_stat "$rsa" packets) m0=$(mod_stat "$rsa" drop_pmtu)
  nsx director gue-traffic run --connect "$(hostport "$vip" 8080)" --bind "$bind" --sizes 64K \
    --requests 1 --timeout-ms 2000 --json /tmp/warmup.json 2>/tmp/warmup.err
  diag "  warm-up: $(head -n 1 /tmp/warmup.err)"
  nsx director gue-traffic run --connect "$(hostport "$vip" 8080)" --bind "$bind" --sizes 64K,1M \
    --requests 4 --connections 2 --deadline-ms "$LOCAL_DEADLINES" --timeout-ms 6000 \
    --json /tmp/local.json 2>/tmp/local.err
  trc=$?
  settle 0.3
  p1=$(mod_stat "$rsa" packets) m1=$(mod_stat "$rsa" drop_pmtu)
  [ "$wfree_ok" = 0 ] || wfree_stop
  tx=$(delta "$p0" "$p1") pmtu=$(delta "$m0" "$m1") wfree=${WFREE_OWN:--}
  if [ "$fam" = 6 ]; then i1=$(snmp6 director $icmp_in) o1=$(snmp6 director $icmp_out)
  else i1=$(snmp director Icmp $icmp_in) o1=$(snmp director Icmp $icmp_out); fi
  r1=$(snmp director Tcp RetransSegs)
  diag "  director: $icmp_out +$(delta "$o0" "$o1"), $icmp_in +$(delta "$i0" "$i1"), Tcp RetransSegs +$(delta "$r0" "$r1")"
  [ -s /tmp/local.json ] || echo '{"sizes":[]}' > /tmp/local.json
  summary=$(jq -r '[.sizes[] | "\(.payload_bytes / 1024 | floor)K \(.ok)/\(.requests) ok p99 \(.p99_ms) ms" +
    (if .over_deadline > 0 then " \(.over_deadline) over deadline" else "" end) +
    (if .timeouts > 0 then " \(.timeouts) timeouts" else "" end)] | join(", ")' /tmp/local.json)
  ok=1; eq "$trc" 0 && ok=0
  report "$name upload" "$ok" "upload from $bind on the director (egress MTU 1500): $summary; module tx +$tx, drop_pmtu +$pmtu" \
    "{\"family\":$fam,\"traffic_rc\":$trc,\"module_tx\":\"$tx\",\"module_drop_pmtu\":\"$pmtu\",\"sizes\":$(jq -c '[.sizes[] | {payload_bytes, requests, ok, over_deadline, timeouts, p99_ms}]' /tmp/local.json)}"
  [ "$ok" = 0 ] || { tail -n 3 /tmp/local.err | sed 's/^/#   /'; diag "  module row: $(mod_row "$rsa")"; }
  half=$(case "$tx" in ''|*[!0-9]*) echo 1 ;; *) echo $(( (tx + 1) / 2 )) ;; esac)
  ok=1; eq "$wfree_ok" 1 && ge "$tx" 1 && ge "$wfree" "$half" && ok=0
  report "$name socket ownership" "$ok" "sock_wfree on the upload's ${WFREE_SOCKS:-?} sockets: $wfree hits for $tx module tx packets (want >= $half: outer packets keep the local sender's socket; all sock_wfree hits ${WFREE_ALL:-?})" \
    "{\"family\":$fam,\"sock_wfree\":\"$wfree\",\"sock_wfree_all\":\"${WFREE_ALL:-}\",\"sockets\":\"${WFREE_SOCKS:-}\",\"module_tx\":\"$tx\"}"
  [ "${WFREE_OVERRUN:-0}" = 0 ] || diag "  trace buffer overrun ($WFREE_OVERRUN events lost): sock_wfree count is a lower bound"
  localclient_restore
}
localclient_restore() {
  nsx director $IP link set dev eth-b mtu 1600
  nsx director $IP link set dev lo mtu 65536
  nsx director $IP route flush cache 2>/dev/null; nsx director $IP -6 route flush cache 2>/dev/null
}

# ---- 7. per-packet work ------------------------------------------------------------------------
# IPVS connection lookups the module makes per datagram of a UDP DR flow it encapsulates:
# kprobe hits on ip_vs_conn_in_get, which only the module calls here (IPVS's own lookups call
# __ip_vs_conn_in_get through its protocol handlers; checked in the 6.12 vmlinux). None for the
# on-link rs1 (the route IPVS attached names it), one for rs2 behind a router (the route names
# the router); none for its own outer packets passing LOCAL_OUT again (recognised by the per-CPU
# mark first). Before those changes: 2 per datagram to either server.
# Route lookups by the module: ip_route_output_flow minus the client's unconnected sendto (one
# per datagram), plus ip6_dst_lookup, which only the module calls here. The first packet fills
# the server's route cache, the others use it: at most 0.05 per datagram (1 before the cache).
HOT_INST=$TRACEFS/instances/hotpath
hot_probes() {
  [ -d $TRACEFS/events ] || mount -t tracefs tracefs $TRACEFS 2>/dev/null
  if ! grep -q "hotpath/conn_in_get " $TRACEFS/kprobe_events 2>/dev/null; then
    echo 'p:hotpath/conn_in_get ip_vs_conn_in_get' >> $TRACEFS/kprobe_events || return 1
    echo 'p:hotpath/route4 ip_route_output_flow' >> $TRACEFS/kprobe_events || return 1
    echo 'p:hotpath/route6 ip6_dst_lookup' >> $TRACEFS/kprobe_events || return 1
  fi
  # Armed while enabled in an instance; its buffer stays off: only the hit counts are read.
  [ -d $HOT_INST ] || mkdir $HOT_INST || return 1
  echo 0 > $HOT_INST/tracing_on
  echo 1 > $HOT_INST/events/hotpath/enable
}
hot_hits() { awk -v e="$1" '($1 == e || $1 == "hotpath/" e) {print $2; f = 1} END {if (!f) print 0}' $TRACEFS/kprobe_profile; }

cell_hotpath() { # RS FAMILY
  local rs fam n port name vip rsa want c0 r40 r60 p0 got c1 r41 r61 p1 tx conn client route ok
  rs=$1 fam=$2 n=200 port=7007 name="hotpath-c$2-$1"
  vip=$(vip_of "$fam") rsa=$(rs_addr "$rs" "$fam")
  want=$([ "$rs" = rs1 ] && echo 0 || echo 1)
  hot_probes || { tap_fail "$name: kprobes on ip_vs_conn_in_get/ip_route_output_flow/ip6_dst_lookup"; return; }
  setup_udp "$name" "$vip" $port "$rsa" "" || return
  sink_start "$rs" "$(any_addr "$fam" $port)" $n 15000 /tmp/hot.json || { tap_fail "$name: sink"; return; }
  c0=$(hot_hits conn_in_get) r40=$(hot_hits route4) r60=$(hot_hits route6) p0=$(mod_stat "$rsa" packets)
  nsx client gue-traffic send --to "$(hostport "$vip" $port)" --count $n --size 64 --interval-ms 5 \
    --json /tmp/send.json 2>/tmp/send.err
  sink_wait /tmp/hot.json; got=$SINK_GOT
  c1=$(hot_hits conn_in_get) r41=$(hot_hits route4) r61=$(hot_hits route6) p1=$(mod_stat "$rsa" packets)
  tx=$(delta "$p0" "$p1")
  # Per 100 datagrams, so that busybox's integer arithmetic keeps two decimals.
  conn=$(( (c1 - c0) * 100 / n ))
  # The subtraction holds only while the client looks a route up per datagram: an IPv4 count
  # below N means it no longer does, and fails the cell rather than flattering the module.
  client=0; [ "$fam" = 6 ] || client=$n
  route=$(( ((r41 - r40) - client + (r61 - r60)) * 100 / n ))
  ok=1; ge "$tx" $n && ge "$got" $n && [ "$conn" -le $((want * 100 + 3)) ] && [ "$route" -ge 0 ] \
    && [ "$route" -le 5 ] && ok=0
  report "$name" "$ok" "$n datagrams: module's IPVS connection lookups $(echo $conn | awk '{printf "%.2f", $1 / 100}') per packet (want <= $want), route lookups $(echo $route | awk '{printf "%.2f", $1 / 100}') (want <= 0.05); module tx +$tx, $rs received $got" \
    "{\"family\":$fam,\"real_server\":\"$rs\",\"sent\":$n,\"conn_lookups_x100\":$conn,\"module_route_lookups_x100\":$route,\"module_tx\":\"$tx\",\"received\":$got}"
  [ "$ok" = 0 ] || diag "  module row: $(mod_row "$rsa")"
}

# ---- 8. the cached route follows route and configuration changes ---------------------------------
# The module caches each server's route to its tunnel endpoint (as IPVS caches its
# destinations'). A policy rule on the director sends lookups for rs1's address to table 100,
# empty at first (they fall through to main). Three phases of N datagrams to rs1 after the
# cache is warm: (a) a /32 route to rs1 via the router is added to table 100: the outer packets
# must go through the router at once (its forwarded-packet counter rises by N); (b) the route is
# deleted: straight to rs1 again (the router forwards none); (c) the server's tunnel endpoint is
# edited to the director's own address: nothing may be sent (drop_no_route +N), as cell 5
# expects of a fresh server. A cache that missed route changes fails (a); one that ignored the
# endpoint fails (c). A route in another table than the cached one's is the case the IPv6
# route's own cookie misses (it covers its own table only). The director takes no ICMP
# redirects meanwhile (the router would send them: rs1 is on the link it came from), so the
# route in force is the one the phase set.
forwarded() { # NS FAMILY
  if [ "$2" = 6 ]; then snmp6 "$1" Ip6OutForwDatagrams; else snmp "$1" Ip ForwDatagrams; fi
}
# N datagrams to VIP:PORT, received by rs1; sets SINK_GOT.
reroute_send() { # FAMILY VIP PORT N
  sink_start rs1 "$(any_addr "$1" "$3")" "$4" 8000 /tmp/reroute.json || { SINK_GOT=0; return; }
  nsx client gue-traffic send --to "$(hostport "$2" "$3")" --count "$4" --size 100 --interval-ms 10 \
    --json /tmp/send.json 2>/tmp/send.err
  sink_wait /tmp/reroute.json
}
cell_reroute() { # FAMILY
  local fam n port name vip rsa router self plen redirects f0 f1 a_fwd a_got b_fwd b_got p0 r0 p1 r1 c_tx c_noroute ok
  fam=$1 n=50 port=7008 name="reroute-c$1-rs1"
  vip=$(vip_of "$fam") rsa=$(rs_addr rs1 "$fam")
  if [ "$fam" = 6 ]; then router=fd02::3 self=fd02::1 plen=128; else router=10.2.0.3 self=10.2.0.1 plen=32; fi
  redirects=$(for k in ipv4.conf.all ipv4.conf.eth-b ipv6.conf.all ipv6.conf.eth-b; do
    echo "net.$k.accept_redirects=$(nsx director sysctl -n "net.$k.accept_redirects")"; done)
  sysctl_ns director net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.eth-b.accept_redirects=0 \
    net.ipv6.conf.all.accept_redirects=0 net.ipv6.conf.eth-b.accept_redirects=0
  setup_udp "$name" "$vip" $port "$rsa" "" || { sysctl_ns director $redirects; return; }
  nsx director $IP -"$fam" rule add to "$rsa/$plen" table 100 pref 100
  reroute_send "$fam" "$vip" $port $n   # warms the cache
  f0=$(forwarded router "$fam")
  nsx director $IP -"$fam" route add "$rsa/$plen" via "$router" dev eth-b table 100
  reroute_send "$fam" "$vip" $port $n; a_got=$SINK_GOT; f1=$(forwarded router "$fam"); a_fwd=$(delta "$f0" "$f1")
  nsx director $IP -"$fam" route del "$rsa/$plen" via "$router" dev eth-b table 100
  f0=$f1
  reroute_send "$fam" "$vip" $port $n; b_got=$SINK_GOT; f1=$(forwarded router "$fam"); b_fwd=$(delta "$f0" "$f1")
  nsx director ipvs-gue-ctl -e -r "$rsa" --outer "$self" >/dev/null 2>&1 || diag "  edit of $rsa to outer $self failed"
  p0=$(mod_stat "$rsa" packets) r0=$(mod_stat "$rsa" drop_no_route)
  nsx client gue-traffic send --to "$(hostport "$vip" $port)" --count $n --size 100 --interval-ms 10 \
    --json /tmp/send.json 2>/tmp/send.err
  settle
  p1=$(mod_stat "$rsa" packets) r1=$(mod_stat "$rsa" drop_no_route)
  c_tx=$(delta "$p0" "$p1") c_noroute=$(delta "$r0" "$r1")
  nsx director $IP -"$fam" rule del to "$rsa/$plen" table 100 pref 100
  sysctl_ns director $redirects
  ok=1
  ge "$a_got" $n && ge "$a_fwd" $n && ge "$b_got" $n && [ "$b_fwd" -le 2 ] && eq "$c_tx" 0 && ge "$c_noroute" $n && ok=0
  report "$name" "$ok" "route via $router added to table 100: router forwarded +$a_fwd (want >= $n), rs1 got $a_got; deleted: forwarded +$b_fwd (want <= 2), rs1 got $b_got; outer edited to $self: module tx +$c_tx (want 0), drop_no_route +$c_noroute (want >= $n)" \
    "{\"family\":$fam,\"sent\":$n,\"via_router_forwarded\":\"$a_fwd\",\"via_router_received\":$a_got,\"direct_forwarded\":\"$b_fwd\",\"direct_received\":$b_got,\"local_outer_tx\":\"$c_tx\",\"local_outer_no_route\":\"$c_noroute\"}"
  [ "$ok" = 0 ] || diag "  module row: $(mod_row "$rsa")"
}

# ---- run ------------------------------------------------------------------------------------
if [ -n "${KO:-}" ] && [ -f "$KO" ]; then
  tap_check "insmod $(basename "$KO")" module_insert "$KO"
else
  tap_fail "insmod # module missing (KO=${KO:-})"; tap_done; exit 1
fi
topo_setup 1600 || { tap_fail "topology setup"; tap_done; exit 1; }
topo_wait_servers || true
if ! gue-traffic udp-sink --help >/dev/null 2>&1; then
  tap_fail "gue-traffic has udp-sink/send/icmp-error # rebuild: scripts/build-tools, qemu/build-initramfs"
  tap_done; exit 1
fi
tap_check "topology: client reaches rs1 and rs2 (ping 10.2.0.2, fd03::2)" \
  sh -c "$IP netns exec client ping -c1 -W2 10.2.0.2 >/dev/null && $IP netns exec client ping -6 -c1 -W2 fd03::2 >/dev/null"

t_start=$(cut -d' ' -f1 /proc/uptime)
for c in $CELLS; do
  t0=$(cut -d' ' -f1 /proc/uptime)
  case "$c" in
    onepacket) cell_onepacket 4; cell_onepacket 6 ;;
    ipsec) cell_ipsec 4 "esp ah"; cell_ipsec 6 "esp" ;;
    icmp) cell_icmp rs1 4; cell_icmp rs1 6; cell_icmp rs2 4; cell_icmp rs2 6 ;;
    frag6) cell_frag6 6; cell_frag6 4 ;;
    localouter) cell_localouter 4 10.2.0.1 local; cell_localouter 6 fd02::1 local
                cell_localouter 4 10.2.0.255 broadcast ;;
    localclient) cell_localclient 4; cell_localclient 6 ;;
    hotpath) cell_hotpath rs1 4; cell_hotpath rs1 6; cell_hotpath rs2 4; cell_hotpath rs2 6 ;;
    reroute) cell_reroute 4; cell_reroute 6 ;;
    *) tap_fail "unknown cell '$c'" ;;
  esac
  diag "cell $c took $(echo "$(cut -d' ' -f1 /proc/uptime) $t0" | awk '{printf "%.1f", $1 - $2}') s"
done
relay_clear
diag "cells took $(echo "$(cut -d' ' -f1 /proc/uptime) $t_start" | awk '{printf "%.1f", $1 - $2}') s"
if dmesg | grep -E 'WARNING|BUG|Oops|general protection' > /tmp/dmesg-bad.txt; then
  tap_fail "dmesg clean"; sed 's/^/#   /' /tmp/dmesg-bad.txt | head -n 20
else tap_ok "dmesg clean (no WARNING/BUG/Oops)"; fi
tap_done
