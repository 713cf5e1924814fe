# Guest side of tests/edge.sh: traffic beyond TCP uploads and wire properties, each case through
# the module (ours: DR service + ipvs-gue-ctl) AND the kernel's C GUE path (c: ipvsadm -i
# --tun-type gue) in the same boot, printed side by side.  busybox sh; run by /init.
#   KO      module to insmod before the topology is built (required)
#   CELLS   which cells (default all): udp sctp options wire mtu
#   LABEL   text put in front of every TAP line (e.g. the module's name)
#   MTU_CASES  the mtu cell's cases: M:CF:OF[:CSUM] ... (default: 68 576 1280 1312 1332
#           x {4:4 6:4 4:6 6:6}, nocsum; tests/edge.sh adds 1332:{4,6}:6:remcsum)
# Every case counts: director transmit drops as qemu/guest/drops.sh counts them (kfree_skb at
# validate_xmit_skb/__dev_queue_xmit, eth-b tx_dropped, GSO errors), director IP fragmentation
# failures, the module's counters (/proc/net/ipvs_gue, summed), rs1's receive errors
# (/proc/net/snmp{,6}: IP header/address/discard/reassembly errors, UDP/TCP errors and checksum
# errors, SCTP checksum errors), the client's ICMP / ICMPv6 errors received, and packets the C
# path freed in ip_vs_tunnel_xmit{,_v6} (its refusals; it has no counter of its own).
# TAP on the console; one JSON line per case and path on /dev/ttyS1 ({"suite":"edge",...}).
. /guest/lib.sh
CELLS=${CELLS:-udp sctp options wire mtu}
PROC=/proc/net/ipvs_gue
LABEL=${LABEL:-}
lbl() { [ -n "$LABEL" ] && echo "[$LABEL] $*" || echo "$*"; }
t_ok() { tap_ok "$(lbl "$*")"; }
t_fail() { tap_fail "$(lbl "$*")"; }
# EDGE_TRACE=1: a timestamped diagnostic at each step (where does the time go under TCG?).
tmark() { [ "${EDGE_TRACE:-0}" = 1 ] && diag "t=$(now) $*"; return 0; }

# ---- services --------------------------------------------------------------------------------

edge_clear() {
  nsx director ipvsadm -C
  nsx director ipvs-gue-ctl -C 2>/dev/null || true
}

# svc PATH(ours|c) PROTO(tcp|udp|sctp) CF OF PORT [CSUM nocsum|csum|remcsum]: one service on
# VIP:PORT with rs1 as its only real server.  ours: DR (-g) to rs1's address of the client
# family, GUE to rs1's address of the outer family; c: tunnel (-i) to rs1's outer-family address.
SVC_ERR=
svc() {
  local _p _proto _cf _of _port _cs _pf _vs _outer _dst _mode
  _p=$1 _proto=$2 _cf=$3 _of=$4 _port=$5 _cs=${6:-nocsum}
  case "$_proto" in tcp) _pf=-t ;; udp) _pf=-u ;; sctp) _pf=--sctp-service ;; *) return 2 ;; esac
  _vs=$(hostport "$(vip_of "$_cf")" "$_port") _outer=$(rs_addr rs1 "$_of")
  edge_clear
  SVC_ERR=$(nsx director ipvsadm -A $_pf "$_vs" -s rr 2>&1) || return 1
  case "$_p" in
    ours)
      _dst=$(rs_addr rs1 "$_cf")
      case "$_cs" in nocsum) _mode=none ;; csum) _mode=udp ;; *) _mode=remcsum ;; esac
      SVC_ERR=$(nsx director ipvsadm -a $_pf "$_vs" -r "$(hostport "$_dst" "$_port")" -g 2>&1) || return 1
      SVC_ERR=$(nsx director ipvs-gue-ctl -a -r "$_dst" --gue-port "$GUE_PORT" --csum "$_mode" --outer "$_outer" 2>&1) \
        || return 1 ;;
    c)
      SVC_ERR=$(nsx director ipvsadm -a $_pf "$_vs" -r "$(hostport "$_outer" "$_port")" -i --tun-type gue \
        --tun-port "$GUE_PORT" "--tun-$_cs" 2>&1) || return 1 ;;
  esac
}

# ---- counters --------------------------------------------------------------------------------

# Director transmit drops counted as qemu/guest/drops.sh counts them (its definition at the time
# of writing, kept here so this suite does not depend on that file's internals): skb:kfree_skb at
# validate_xmit_skb / __dev_queue_xmit in a tracefs instance, a kretprobe on
# skb_udp_tunnel_segment (calls from kprobe_profile, errors = ERR_PTR returns), eth-b's TX drops.
# A second instance counts the packets the C path frees in ip_vs_tunnel_xmit{,_v6}.
EDGE_TX=$TRACEFS/instances/ipvs_gue_edge_tx
EDGE_C=$TRACEFS/instances/ipvs_gue_edge_c
EDGE_TX_FILTER='location.function == validate_xmit_skb || location.function == __dev_queue_xmit'
EDGE_C_FILTER='location.function == ip_vs_tunnel_xmit || location.function == ip_vs_tunnel_xmit_v6'
edge_trace_init() {
  [ -d $TRACEFS/events ] || mount -t tracefs tracefs $TRACEFS || return 1
  grep -q 'ipvs_gue/gso_ret' $TRACEFS/kprobe_events \
    || echo 'r:ipvs_gue/gso_ret skb_udp_tunnel_segment ret=$retval:x64' >> $TRACEFS/kprobe_events || return 1
  [ -d $EDGE_TX ] || mkdir $EDGE_TX || return 1
  echo 8192 > $EDGE_TX/buffer_size_kb
  echo "$EDGE_TX_FILTER" > $EDGE_TX/events/skb/kfree_skb/filter || return 1
  echo 'ret >= 0xfffffffffffff001' > $EDGE_TX/events/ipvs_gue/gso_ret/filter || return 1
  echo 1 > $EDGE_TX/events/skb/kfree_skb/enable
  echo 1 > $EDGE_TX/events/ipvs_gue/gso_ret/enable
  echo 1 > $EDGE_TX/tracing_on
  [ -d $EDGE_C ] || mkdir $EDGE_C || return 1
  if echo "$EDGE_C_FILTER" > $EDGE_C/events/skb/kfree_skb/filter; then
    echo 1 > $EDGE_C/events/skb/kfree_skb/enable
    echo 1 > $EDGE_C/tracing_on
  else diag "no C drop-site filter (c_xmit_frees stays 0)"; fi
}
edge_trace_stop() { echo 0 > $EDGE_TX/tracing_on; echo 0 > $EDGE_C/tracing_on; echo 0 > $EDGE_TX/events/enable; echo 0 > $EDGE_C/events/enable; }
count_events() { local _n; _n=$(grep -c " $2:" "$1/trace" 2>/dev/null); echo "${_n:-0}"; }
gso_hits() { awk '$1 == "ipvs_gue/gso_ret" || $1 == "gso_ret" {print $2; f = 1} END {if (!f) print 0}' $TRACEFS/kprobe_profile; }

# Counters are read through /proc/PID/net of one idle process per namespace (an "ip netns exec"
# per read costs ~0.1 s under TCG), and the trace instances run for the whole boot and are read by
# snapshot (toggling triggers and events costs seconds per case under TCG).
ns_pids_start() {
  local _ns
  # $IP itself, not the nsx function: a backgrounded function is a subshell in the root namespace.
  for _ns in client director rs1; do
    $IP netns exec "$_ns" sleep 100000 &
    eval "PID_$_ns=\$!"
  done
}
ns_pids_stop() { local _ns; for _ns in client director rs1; do eval "kill \$PID_$_ns" 2>/dev/null; done; }
pnet() { eval "echo /proc/\$PID_$1/net"; }
# key=value lines: every counter a case compares before/after.
snap() { # OUT
  local _d _c _r
  _d=$(pnet director) _c=$(pnet client) _r=$(pnet rs1)
  {
    awk '/^# addr /{for (i = 2; i <= NF; i++) c[$i] = i - 1; next} /^#/ {next}
      NF {for (k in c) s[k] += $(c[k])}
      END {for (k in c) if (k != "addr" && k != "outer" && k != "port" && k != "csum" && k != "flowlabel") print "mod_" k "=" s[k] + 0}' $_d/ipvs_gue
    awk '$1 == "Icmp:" && !hi {for (i = 2; i <= NF; i++) ci[$i] = i; hi = 1; next}
      $1 == "Icmp:" {print "cl_icmp_unreach=" $(ci["InDestUnreachs"])}
      $1 == "Tcp:" && !ht {for (i = 2; i <= NF; i++) ct[$i] = i; ht = 1; next}
      $1 == "Tcp:" {print "retransmits=" $(ct["RetransSegs"])}' $_c/snmp
    awk '$1 == "Icmp6InDestUnreachs" {print "cl_icmp6_unreach=" $2}
      $1 == "Icmp6InPktTooBigs" {print "cl_icmp6_ptb=" $2}' $_c/snmp6
    awk '$1 == "Ip:" && !h {for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next}
      $1 == "Ip:" {print "dir_frag_creates=" $(c["FragCreates"]); print "dir_frag_fails=" $(c["FragFails"])}' $_d/snmp
    awk '$1 == "Ip6FragCreates" {print "dir_frag6_creates=" $2} $1 == "Ip6FragFails" {print "dir_frag6_fails=" $2}' $_d/snmp6
    awk -v dev="eth-b:" '$1 == dev {print "tx_dropped=" $13}' $_d/dev
    awk 'BEGIN {w["Ip:InHdrErrors"]; w["Ip:InAddrErrors"]; w["Ip:InUnknownProtos"]; w["Ip:InDiscards"];
        w["Ip:ReasmFails"]; w["Udp:InErrors"]; w["Udp:NoPorts"]; w["Udp:RcvbufErrors"]; w["Udp:InCsumErrors"];
        w["Tcp:InErrs"]; w["Tcp:InCsumErrors"]}
      {p = $1; if (!(p in h)) {h[p] = 1; for (i = 2; i <= NF; i++) c[p, i] = $i; next}
       for (i = 2; i <= NF; i++) if ((p c[p, i]) in w) {k = p c[p, i]; gsub(":", "_", k); print "rs_" k "=" $i}}' $_r/snmp
    awk '$1 ~ /^(Ip6InHdrErrors|Ip6InAddrErrors|Ip6InUnknownProtos|Ip6InDiscards|Ip6ReasmFails|Ip6InTruncatedPkts|Udp6InErrors|Udp6NoPorts|Udp6RcvbufErrors|Udp6InCsumErrors)$/ {print "rs_" $1 "=" $2}' $_r/snmp6
    [ -r $_r/sctp/snmp ] && awk '$1 == "SctpChecksumErrors" {print "rs_" $1 "=" $2}' $_r/sctp/snmp
    echo "kfree_xmit=$(count_events $EDGE_TX kfree_skb)"
    echo "gso_errors=$(count_events $EDGE_TX gso_ret)"
    echo "gso_calls=$(gso_hits)"
    echo "trace_overrun=$(cat $EDGE_TX/per_cpu/cpu*/stats $EDGE_C/per_cpu/cpu*/stats 2>/dev/null | awk '$1 == "overrun:" {s += $2} END {print s + 0}')"
    echo "c_xmit_frees=$(count_events $EDGE_C kfree_skb)"
  } > "$1" 2>/dev/null
}

# JSON object of the deltas B - A (numeric keys present in both) with the derived totals.
deltas() { # A B
  awk -F= 'FNR == NR {a[$1] = $2; next} ($1 in a) && $2 ~ /^[0-9]+$/ {d[$1] = $2 - a[$1]}
    END {s = ""; for (k in d) s = s (s == "" ? "" : ",") "\"" k "\":" d[k]; print "{" s "}"}' "$1" "$2" \
  | jq -c '.tx_dropped_delta = .tx_dropped | del(.tx_dropped)
    | .director_drops = ([.kfree_xmit, .tx_dropped_delta] | max) + (.dir_frag_fails // 0) + (.dir_frag6_fails // 0)
    | .rs_errors = ([to_entries[] | select(.key | startswith("rs_")) | .value] | add // 0)
    | .rs_error_keys = [to_entries[] | select((.key | startswith("rs_")) and .value != 0) | "\(.key)=\(.value)"]
    | .mod_other_drops = ((.mod_drop_no_route // 0) + (.mod_drop_no_headroom // 0) + (.mod_drop_bad_packet // 0))'
}

# case_begin / case_end NAME PATH EXTRA_JSON: counters around one path's traffic; CASE is the
# resulting record (also sent to the results channel).
case_begin() { tmark begin; snap /tmp/snap0; tmark traffic; }
case_end() { # NAME PATH EXTRA_JSON
  tmark end
  sleep 0.2
  snap /tmp/snap1
  CASE=$(deltas /tmp/snap0 /tmp/snap1 | jq -c --arg name "$1" --arg path "$2" --argjson x "${3:-{\}}" \
    '{suite: "edge", name: $name, path: $path} + $x + {counters: .}')
  result "$CASE"
  tmark recorded
}
cget() { echo "$CASE" | jq -r "$1"; }
# The clean-transfer conditions: no director drops, GSO errors or rs1 receive errors, no module
# drops other than PMTU (ours).  Prints the reasons it fails, nothing if clean.
unclean() {
  echo "$CASE" | jq -r '.counters as $c | [
    if $c.director_drops > 0 then "director drops \($c.director_drops)" else empty end,
    if $c.gso_errors > 0 then "GSO errors \($c.gso_errors)" else empty end,
    if $c.trace_overrun > 0 then "trace overrun" else empty end,
    if $c.rs_errors != 0 then "rs1 receive errors \($c.rs_error_keys | join(" "))" else empty end,
    if .path == "ours" and $c.mod_other_drops > 0 then "module drops (route/headroom/bad) \($c.mod_other_drops)" else empty end
  ] | join("; ")'
}
# One path in a few words (counters).
brief() {
  echo "$CASE" | jq -r '.counters as $c | "drops \($c.director_drops), rs_err \($c.rs_errors)"
    + (if .path == "ours" then ", mod tx \($c.mod_packets // 0) pmtu \($c.mod_drop_pmtu // 0) other \($c.mod_other_drops)" else ", C frees \($c.c_xmit_frees)" end)'
}

# ---- background servers and captures ---------------------------------------------------------

# capture_start OUT COUNT TIMEOUT_MS: outgoing GUE packets on the director's eth-b.
capture_start() {
  bg_start director "$1" gue-traffic capture --iface eth-b --port "$GUE_PORT" --direction out \
    --count "$2" --timeout-ms "$3" --json "$1.json" && CAP_PID=$BG_PID
}
capture_wait() { wait "$CAP_PID" 2>/dev/null; touch "$1.json"; }

# ---- 1. UDP request/response -----------------------------------------------------------------
UDP_REQUESTS=${UDP_REQUESTS:-10}
UDP_SIZES=${UDP_SIZES:-64,1400,8000}
cell_udp() { # FAMILY
  local fam port name vip nsz n txt okall p epid rc sizes why
  fam=$1 port=7100 name="udp-c$1-o$1"
  vip=$(vip_of "$fam")
  nsz=$(echo "$UDP_SIZES" | tr ',' '\n' | wc -l); n=$((nsz * UDP_REQUESTS))
  txt= ; okall=0
  for p in ours c; do
    if ! svc "$p" udp "$fam" "$fam" $port; then t_fail "$name: $p service setup: $SVC_ERR"; return; fi
    bg_start rs1 /tmp/echo.json gue-traffic udp-echo --listen "$(hostport "$vip" $port)" --count $n \
      --timeout-ms 30000 --json - || { t_fail "$name: $p echo server"; return; }
    epid=$BG_PID
    tmark echo started
    case_begin
    nsx client gue-traffic udp-rr --to "$(hostport "$vip" $port)" --sizes "$UDP_SIZES" --requests "$UDP_REQUESTS" \
      --timeout-ms 2000 --json /tmp/rr.json 2>/tmp/rr.err
    rc=$?
    tmark rr done
    wait $epid
    tmark echo done
    [ -s /tmp/rr.json ] || echo '{"sizes":[],"ok":0,"requests":0}' > /tmp/rr.json
    case_end "$name" "$p" "$(jq -c --argjson rc $rc '{family: ('"$fam"'), rc: $rc, rr: .}' /tmp/rr.json)"
    sizes=$(jq -r '[.sizes[] | "\(.payload_bytes)B \(.ok)/\(.requests)"] | join(", ")' /tmp/rr.json)
    why=$(unclean)
    [ "$rc" = 0 ] || why="${why:+$why; }not all answered ($(jq -r '[.sizes[].first_error // empty] | first // ""' /tmp/rr.json))"
    if [ "$p" = ours ] && [ "$(cget '.counters.mod_packets // 0')" -lt "$n" ]; then
      why="${why:+$why; }module encapsulated $(cget '.counters.mod_packets // 0') < $n packets"
    fi
    [ -z "$why" ] || okall=1
    txt="$txt${txt:+ | }$p: $sizes; $(brief)${why:+ -- $why}"
  done
  if [ $okall = 0 ]; then t_ok "$name $UDP_SIZES B x$UDP_REQUESTS: $txt"; else t_fail "$name $UDP_SIZES B x$UDP_REQUESTS: $txt"; fi
}

# ---- 2. SCTP ---------------------------------------------------------------------------------
cell_sctp() {
  local port e fam vip name spid txt okall p rc why
  if [ ! -d /proc/net/sctp ]; then
    t_ok "sctp # SKIP kernel has no SCTP (CONFIG_IP_SCTP off: no /proc/net/sctp)"; return
  fi
  port=7200
  # Probe IPVS SCTP support once.
  nsx director ipvsadm -C
  if ! e=$(nsx director ipvsadm -A --sctp-service "$VIP4:$port" -s rr 2>&1); then
    t_ok "sctp # SKIP IPVS has no SCTP (ipvsadm: $e)"; return
  fi
  nsx director ipvsadm -C
  for fam in 4 6; do
    vip=$(vip_of "$fam") name="sctp-c$fam-o$fam"
    bg_start rs1 /tmp/sctp-srv.txt gue-traffic sctp-serve --listen "$(hostport "$vip" $port)" \
      || { t_fail "$name: SCTP server on rs1"; continue; }
    spid=$BG_PID
    txt= ; okall=0
    for p in ours c; do
      if ! svc "$p" sctp "$fam" "$fam" $port; then t_fail "$name: $p service setup: $SVC_ERR"; okall=2; break; fi
      case_begin
      nsx client gue-traffic sctp-run --connect "$(hostport "$vip" $port)" --bind "$(client_addr "$fam")" \
        --sizes 1K,64K --requests 4 --timeout-ms 10000 --json /tmp/sctp.json 2>/tmp/sctp.err
      rc=$?
      [ -s /tmp/sctp.json ] || echo '{"sizes":[]}' > /tmp/sctp.json
      case_end "$name" "$p" "$(jq -c --argjson rc $rc '{family: ('"$fam"'), rc: $rc, sctp: .}' /tmp/sctp.json)"
      why=$(unclean)
      [ "$rc" = 0 ] || why="${why:+$why; }$(jq -r '[.sizes[].first_error // empty] | first // "sctp-run failed"' /tmp/sctp.json)"
      [ "$p" != ours ] || [ "$(cget '.counters.mod_packets // 0')" -gt 0 ] || why="${why:+$why; }module encapsulated nothing"
      [ -z "$why" ] || okall=1
      txt="$txt${txt:+ | }$p: $(jq -r '[.sizes[] | "\(.payload_bytes)B \(.ok)/\(.requests) p50 \(.p50_ms)ms"] | join(", ")' /tmp/sctp.json); $(brief)${why:+ -- $why}"
    done
    kill $spid 2>/dev/null; wait $spid 2>/dev/null
    [ $okall = 2 ] && continue
    if [ $okall = 0 ]; then t_ok "$name 1K+64K x4: $txt"; else t_fail "$name 1K+64K x4: $txt"; fi
  done
}

# ---- 3. IPv4 options, IPv6 extension headers ---------------------------------------------------
# Sent by the client with IP_OPTIONS / IPV6_HOPOPTS + IPV6_DSTOPTS.  Linux records at every
# receiver (RFC 791 as ip_options_compile does it): the client fills record-route slot 1 / the
# first timestamp, the director's input (before IPVS) the next one, rs1's input after decap the
# last.  Expected on eth-b (inner) and at rs1's socket (IP_RECVOPTS / IPV6_RECV*OPTS), exactly:
OPT_RR_SEND=01070f04000000000000000000000000        # NOP, RR len 15 ptr 4, 3 empty slots
OPT_RR_WIRE=01070f0c0a0100010a0a0a0a00000000        # client 10.1.0.1, director VIP, ptr 12
OPT_RR_RS=01070f100a0100010a0a0a0a0a0a0a0a          # + rs1 VIP, ptr 16
OPT_TS_SEND=440c05000000000000000000                # timestamp (TS only), 2 slots
OPT_TS_WIRE=440c0d00                                # both slots filled (values vary), ptr 13
OPT_TS_RS=440c0d10                                  # + overflow count 1 at rs1
HBH=00001e0445444745                               # hop-by-hop: experimental option 0x1e "EDGE"
DST=00001e0444535421                               # destination options: 0x1e "DST!"
HBH_RS=3c001e0445444745                            # next header written by the kernel: 60
DST_RS=11001e0444535421                            #   and 17 (UDP)
cell_options() { # KIND(rr|ts|ext6)
  local kind port n fam flag sizes name vip total txt okall wire_ours wire_c rs_ours rs_c p epid rc wire rs want_wire want_rs why
  kind=$1 port=7300 n=${OPT_REQUESTS:-10}
  case "$kind" in
    rr) fam=4 flag="--ip-options $OPT_RR_SEND" sizes=64,1400 ;;
    ts) fam=4 flag="--ip-options $OPT_TS_SEND" sizes=64 ;;
    ext6) fam=6 flag="--hopopts $HBH --dstopts $DST" sizes=64,1400 ;;
  esac
  name="options-$kind-c$fam-o$fam" vip=$(vip_of "$fam")
  total=$(( $(echo "$sizes" | tr ',' '\n' | wc -l) * n ))
  txt= ; okall=0; wire_ours= ; wire_c= ; rs_ours= ; rs_c=
  for p in ours c; do
    if ! svc "$p" udp "$fam" "$fam" $port; then t_fail "$name: $p service setup: $SVC_ERR"; return; fi
    bg_start rs1 /tmp/echo.json gue-traffic udp-echo --listen "$(hostport "$vip" $port)" --count $total \
      --timeout-ms 20000 --json - || { t_fail "$name: $p echo server"; return; }
    epid=$BG_PID
    capture_start /tmp/optcap $total 20000 || { t_fail "$name: $p capture"; kill $epid; return; }
    case_begin
    nsx client gue-traffic udp-rr --to "$(hostport "$vip" $port)" --sizes $sizes --requests $n $flag \
      --timeout-ms 2000 --json /tmp/rr.json 2>/tmp/rr.err
    rc=$?
    wait $epid; capture_wait /tmp/optcap
    [ -s /tmp/rr.json ] || echo '{"sizes":[],"ok":0}' > /tmp/rr.json
    [ -s /tmp/echo.json ] || echo '{}' > /tmp/echo.json
    # What left the director (inner options / extension headers) and what rs1's socket saw.
    wire=$(jq -rs '[.[] | select(.inner.kind == "ip") | "\(.inner.options) ext=\(.inner.ext_headers | map(tostring) | join(",")) up=\(.inner.upper_protocol) dport=\(.inner.dport)"]
      | group_by(.) | map("\(.[0]) x\(length)") | join("; ")' /tmp/optcap.json)
    case "$kind" in
      ts) wire=$(jq -rs '[.[] | select(.inner.kind == "ip") | "\(.inner.options[0:8]) len=\(.inner.options | length / 2) up=\(.inner.upper_protocol)"]
            | group_by(.) | map("\(.[0]) x\(length)") | join("; ")' /tmp/optcap.json)
          rs=$(jq -r '[.ip_options // {} | to_entries[] | {k: .key[0:8], v: .value}] | group_by(.k)
            | map("\(.[0].k) x\(map(.v) | add)") | join("; ")' /tmp/echo.json) ;;
      rr) rs=$(jq -r '[.ip_options // {} | to_entries[] | "\(.key) x\(.value)"] | join("; ")' /tmp/echo.json) ;;
      ext6) rs=$(jq -r '"hbh " + ([.hopopts // {} | to_entries[] | "\(.key) x\(.value)"] | join(",")) + " dst " + ([.dstopts // {} | to_entries[] | "\(.key) x\(.value)"] | join(","))' /tmp/echo.json) ;;
    esac
    case_end "$name" "$p" "$(jq -nc --argjson rc $rc --arg wire "$wire" --arg rs "$rs" --slurpfile rr /tmp/rr.json \
      --slurpfile echo /tmp/echo.json '{family: '"$fam"', rc: $rc, wire: $wire, at_rs: $rs, rr: $rr[0], echo: $echo[0]}')"
    case "$kind" in
      rr) want_wire="$OPT_RR_WIRE ext= up=17 dport=$port x$total" want_rs="$OPT_RR_RS x$total" ;;
      ts) want_wire="$OPT_TS_WIRE len=12 up=17 x$total" want_rs="$OPT_TS_RS x$total" ;;
      ext6) want_wire="$HBH_RS$DST_RS ext=0,60 up=17 dport=$port x$total" want_rs="hbh $HBH_RS x$total dst $DST_RS x$total" ;;
    esac
    why=$(unclean)
    [ "$rc" = 0 ] || why="${why:+$why; }$(jq -r '.ok' /tmp/rr.json)/$total answered"
    [ "$wire" = "$want_wire" ] || why="${why:+$why; }on the wire '$wire', want '$want_wire'"
    [ "$rs" = "$want_rs" ] || why="${why:+$why; }at rs1 '$rs', want '$want_rs'"
    [ -z "$why" ] || okall=1
    eval "wire_$p=\$wire; rs_$p=\$rs"
    txt="$txt${txt:+ | }$p: $(jq -r '.ok' /tmp/rr.json)/$total answered, rs1 saw $rs; $(brief)${why:+ -- $why}"
  done
  [ "$wire_ours|$rs_ours" = "$wire_c|$rs_c" ] || { okall=1; txt="$txt -- ours and C differ"; }
  if [ $okall = 0 ]; then t_ok "$name $sizes B x$n: $txt"; else t_fail "$name $sizes B x$n: $txt"; fi
}

# ---- 5. wire properties --------------------------------------------------------------------------
# 5a spread: 32 UDP flows (client ports 41000..41031) -> distinct outer source ports.  The port
# is udp_flow_src_port() of the inner flow hash over the 28232-port local range (32768-60999):
# for uniform hashes the expected number of coinciding pairs among 32 flows is
# C(32,2)/28232 = 0.018, so >= 3 lost ports has probability ~1e-6; require >= 30 distinct.
# Both paths hash the same skb the same way (skb_get_hash; the client's IPv6 flow label is part of
# the hash, so auto flow labels are off in the client for this sub-cell): ours must give each flow
# the port C gives it.
SPREAD_MIN=30
cell_spread() { # CF OF
  local cf of port flows name vip txt okall p epid rc st st_ours st_c why same
  cf=$1 of=$2 port=7500 flows=32 name="wire-spread-c$1-o$2"
  vip=$(vip_of "$cf")
  sysctl_ns client net.ipv6.auto_flowlabels=0
  txt= ; okall=0
  for p in ours c; do
    if ! svc "$p" udp "$cf" "$of" $port; then t_fail "$name: $p service setup: $SVC_ERR"; return; fi
    bg_start rs1 /tmp/echo.json gue-traffic udp-echo --listen "$(hostport "$vip" $port)" --count $((flows * 2)) \
      --timeout-ms 20000 --json - || { t_fail "$name: echo server"; return; }
    epid=$BG_PID
    capture_start /tmp/spread-$p $((flows * 2)) 20000 || { t_fail "$name: capture"; kill $epid; return; }
    case_begin
    nsx client gue-traffic udp-rr --to "$(hostport "$vip" $port)" --bind "$(client_addr "$cf")" --sizes 64 \
      --requests $((flows * 2)) --flows $flows --src-port 41000 --timeout-ms 2000 --json /tmp/rr.json 2>/tmp/rr.err
    rc=$?
    wait $epid; capture_wait /tmp/spread-$p
    st=$(jq -sc --argjson lo "$(nsx director sysctl -n net.ipv4.ip_local_port_range | awk '{print $1}')" \
      --argjson hi "$(nsx director sysctl -n net.ipv4.ip_local_port_range | awk '{print $2}')" '
      [.[] | select(.inner.kind == "ip")] | group_by(.inner.sport)
      | {flows: length, per_flow: map({key: (.[0].inner.sport | tostring), value: (map(.udp.sport) | unique)}) | from_entries}
      | .distinct = ([.per_flow[][]] | unique | length)
      | .multi = ([.per_flow | to_entries[] | select(.value | length > 1)] | length)
      | .out_of_range = ([.per_flow[][] | select(. < $lo or . >= $hi)] | length)' /tmp/spread-$p.json)
    case_end "$name" "$p" "$(jq -nc --argjson rc $rc --argjson st "$st" '{client_family: '"$cf"', outer_family: '"$of"', rc: $rc} + $st')"
    eval "st_$p=\$st"
    why=$(unclean)
    [ "$rc" = 0 ] || why="${why:+$why; }not all answered"
    set -- $(echo "$st" | jq -r '"\(.flows) \(.distinct) \(.multi) \(.out_of_range)"')
    [ "$1" = $flows ] || why="${why:+$why; }$1 of $flows flows captured"
    [ "$2" -ge $SPREAD_MIN ] || why="${why:+$why; }only $2 distinct ports (want >= $SPREAD_MIN)"
    [ "$3" = 0 ] || why="${why:+$why; }$3 flows on several ports"
    [ "$4" = 0 ] || why="${why:+$why; }$4 ports outside the local port range"
    [ -z "$why" ] || okall=1
    txt="$txt${txt:+ | }$p: $2 distinct ports over $1 flows, $3 multi-port flows; $(brief)${why:+ -- $why}"
    sleep 2.2  # let the IPVS UDP connections (timeout 1 s in this cell) expire before the other path
  done
  same=$(jq -nr --argjson a "$st_ours" --argjson b "$st_c" \
    '[$a.per_flow | to_entries[] | select($b.per_flow[.key] == .value)] | length')
  [ "$same" = $flows ] || { okall=1; txt="$txt -- only $same of $flows flows got the port the C path gives them"; }
  sysctl_ns client net.ipv6.auto_flowlabels=1
  if [ $okall = 0 ]; then t_ok "$name $flows flows: $txt; all $same flows on the same port as C"; else t_fail "$name $flows flows: $txt"; fi
}

# 5b lifetime: one UDP flow (100 datagrams, 3 s) and one TCP upload (1 MiB) each keep one port.
cell_lifetime() { # FAMILY
  local fam port name vip txt okall p epid rc trc got st why udp tcp multi nflows
  fam=$1 port=7501 name="wire-lifetime-c$1-o$1"
  vip=$(vip_of "$fam")
  txt= ; okall=0
  for p in ours c; do
    if ! svc "$p" udp "$fam" "$fam" $port; then t_fail "$name: $p service setup: $SVC_ERR"; return; fi
    nsx director ipvsadm -A -t "$(hostport "$vip" 8080)" -s rr
    if [ $p = ours ]; then nsx director ipvsadm -a -t "$(hostport "$vip" 8080)" -r "$(hostport "$(rs_addr rs1 "$fam")" 8080)" -g
    else nsx director ipvsadm -a -t "$(hostport "$vip" 8080)" -r "$(hostport "$(rs_addr rs1 "$fam")" 8080)" -i --tun-type gue --tun-port $GUE_PORT --tun-nocsum; fi
    bg_start rs1 /tmp/echo.json gue-traffic udp-echo --listen "$(hostport "$vip" $port)" --count 100 \
      --timeout-ms 20000 --no-reply --json - || { t_fail "$name: echo server"; return; }
    epid=$BG_PID
    capture_start /tmp/life-$p 700 25000 || { t_fail "$name: capture"; kill $epid; return; }
    case_begin
    nsx client gue-traffic udp-rr --to "$(hostport "$vip" $port)" --sizes 64 --requests 100 --no-reply \
      --interval-ms 30 --json /tmp/rr.json 2>/tmp/rr.err
    rc=$?
    nsx client gue-traffic run --connect "$(hostport "$vip" 8080)" --sizes 1M --requests 1 --timeout-ms 20000 \
      --json /tmp/run.json >/dev/null 2>/tmp/run.err
    trc=$?
    wait $epid; capture_wait /tmp/life-$p
    got=$(jq -r '.datagrams // 0' /tmp/echo.json 2>/dev/null || echo 0)
    st=$(jq -sc '[.[] | select(.inner.kind == "ip")] | group_by([.inner.protocol, .inner.sport, .inner.dport])
      | map({flow: "\(.[0].inner.protocol)/\(.[0].inner.sport)->\(.[0].inner.dport)", packets: length, ports: (map(.udp.sport) | unique)})' /tmp/life-$p.json)
    case_end "$name" "$p" "$(jq -nc --argjson rc $rc --argjson trc $trc --argjson got "$got" --argjson st "$st" '{family: '"$fam"', udp_rc: $rc, tcp_rc: $trc, udp_received: $got, flows: $st}')"
    why=$(unclean)
    [ "$got" = 100 ] || why="${why:+$why; }rs1 received $got/100 datagrams"
    [ "$trc" = 0 ] || why="${why:+$why; }1 MiB upload failed"
    udp=$(echo "$st" | jq -r --argjson d $port '[.[] | select(.flow | endswith("->\($d)"))] | map("\(.packets) pkts on \(.ports | length) port(s)") | join(",")')
    tcp=$(echo "$st" | jq -r '[.[] | select(.flow | endswith("->8080"))] | map("\(.packets) pkts on \(.ports | length) port(s)") | join(",")')
    multi=$(echo "$st" | jq '[.[] | select(.ports | length > 1)] | length')
    nflows=$(echo "$st" | jq 'length')
    [ "$nflows" = 2 ] || why="${why:+$why; }captured $nflows inner flows (want 2)"
    [ "$multi" = 0 ] || why="${why:+$why; }$multi flows changed port"
    [ -z "$why" ] || okall=1
    txt="$txt${txt:+ | }$p: UDP $udp, TCP $tcp; $(brief)${why:+ -- $why}"
  done
  if [ $okall = 0 ]; then t_ok "$name: $txt"; else t_fail "$name: $txt"; fi
}

# 5c ECN / DSCP: every ECN codepoint with DSCP 0, 10 (AF11), 46 (EF), 48 (CS6), set per datagram
# (IP_TOS / IPV6_TCLASS).  RFC 6040 normal mode (INET_ECN_encapsulate): outer DSCP = inner DSCP,
# outer ECN = inner ECN except CE -> ECT(0).  The inner TOS must arrive unchanged at rs1 (the echo
# reply reports it).  Ours and C are compared field by field through the capture's layout (outer
# TOS/TC, TTL/hop limit, DF, UDP, GUE) plus the IPv6 flow label.
ECN_TOS="0x00,0x01,0x02,0x03,0x28,0x29,0x2a,0x2b,0xb8,0xb9,0xba,0xbb,0xc0,0xc1,0xc2,0xc3"
cell_ecn() { # CF OF
  local cf of port name n vip txt okall p epid rc map map_ours map_c why bad cecn diff
  cf=$1 of=$2 port=7502 name="wire-ecn-c$1-o$2" n=32
  vip=$(vip_of "$cf")
  txt= ; okall=0
  for p in ours c; do
    if ! svc "$p" udp "$cf" "$of" $port; then t_fail "$name: $p service setup: $SVC_ERR"; return; fi
    bg_start rs1 /tmp/echo.json gue-traffic udp-echo --listen "$(hostport "$vip" $port)" --count $n \
      --timeout-ms 20000 --json - || { t_fail "$name: echo server"; return; }
    epid=$BG_PID
    capture_start /tmp/ecn-$p $n 20000 || { t_fail "$name: capture"; kill $epid; return; }
    case_begin
    nsx client gue-traffic udp-rr --to "$(hostport "$vip" $port)" --sizes 64 --requests $n --tos "$ECN_TOS" \
      --timeout-ms 2000 --json /tmp/rr.json 2>/tmp/rr.err
    rc=$?
    wait $epid; capture_wait /tmp/ecn-$p
    map=$(jq -sc '[.[] | select(.inner.kind == "ip")] | group_by(.inner.dsfield)
      | map({key: (.[0].inner.dsfield | tostring), value: {outer: (map(.ip.tos // .ip.traffic_class) | unique),
             layouts: (map(.layout) | unique), flow_labels: (map(.ip.flow_label // 0) | unique)}}) | from_entries' /tmp/ecn-$p.json)
    case_end "$name" "$p" "$(jq -nc --argjson rc $rc --argjson m "$map" --slurpfile rr /tmp/rr.json '{client_family: '"$cf"', outer_family: '"$of"', rc: $rc, by_inner_tos: $m, rr: $rr[0]}')"
    eval "map_$p=\$map"
    why=$(unclean)
    [ "$rc" = 0 ] || why="${why:+$why; }$(jq -r '"\(.ok)/\(.requests) answered, \(.sizes[0].tos_mismatches) arrived with another TOS"' /tmp/rr.json)"
    bad=$(echo "$map" | jq -r --arg tos "$ECN_TOS" '. as $m
      | [$tos | split(",")[] | ltrimstr("0x")
         | (explode | map(if . >= 97 then . - 87 else . - 48 end) | .[0] * 16 + .[1]) as $t
         | ($t - ($t % 4) + (if $t % 4 == 3 then 2 else $t % 4 end)) as $w
         | if $m[$t | tostring] == null then "inner \($t) not captured"
           elif $m[$t | tostring].outer != [$w] then "inner \($t) -> outer \($m[$t | tostring].outer) (want \($w))"
           else empty end] | join(", ")')
    [ -z "$bad" ] || why="${why:+$why; }$bad"
    [ -z "$why" ] || okall=1
    cecn=$(echo "$map" | jq -r '[to_entries[] | select((.key | tonumber) % 4 == 3) | "\(.key)->\(.value.outer | join("/"))"] | join(" ")')
    txt="$txt${txt:+ | }$p: $(jq -r '"\(.ok)/\(.requests)"' /tmp/rr.json) answered with their TOS, CE mapped $cecn; $(brief)${why:+ -- $why}"
  done
  diff=$(jq -nr --argjson a "$map_ours" --argjson b "$map_c" '[$a | keys[] as $k | select($a[$k] != $b[$k]) | "tos \($k): ours \($a[$k].layouts) C \($b[$k].layouts)"] | join("; ")')
  [ -z "$diff" ] || { okall=1; txt="$txt -- differs from C: $diff"; }
  if [ $okall = 0 ]; then t_ok "$name 16 TOS values: $txt; ours = C field by field"; else t_fail "$name 16 TOS values: $txt"; fi
}

# ---- 4. path MTU at the edges ---------------------------------------------------------------------
# The director's eth-b MTU is set to M (as tests/guest/e2e.sh's MTU cells do).  Below 1280 the
# kernel removes IPv6 from that link (addrconf), which also cuts rs1's IPv6 replies: an IPv6 inner
# packet can then only be tested over an IPv4 tunnel with the outer route's MTU set to M
# ("route mtu": ip route 10.2.0.2/32 dev eth-b mtu lock M, link left at 1600).  Traffic: a 1 KiB
# request and a 64 KiB upload (one each, in parallel) to VIP:8080.  Expected (design.md "Path MTU"):
#   left = M - (20|40 + 8 + 4); outer IPv6 on a link below 1280: no route (refused);
#   left below the outer family's floor (68 / 1280): refused without ICMP (ours: drop_pmtu);
#   otherwise delivered; where left < 1500 (the client's MTU) the module answers with the inner
#   family's ICMP carrying left, except IPv6 in IPv4: up to 1280 sent (outer IPv4 fragmented),
#   larger ones get packet-too-big 1280 (deliberate difference 8: C refuses non-GSO IPv6 packets
#   above left, also when left < 1280).  With remcsum, packets carrying the option have 8 bytes
#   less; where only they fall below the floor (1332 over IPv6) ours must do what C does.
MTU_CASES=${MTU_CASES:-}
mtu_default_cases() {
  local m f
  for m in 68 576 1280 1312 1332; do for f in 4:4 6:4 4:6 6:6; do printf '%s:%s ' $m $f; done; done
}
egress_set() { # M CF OF -> MODE (link|route)
  if [ "$2" = 6 ] && [ "$3" = 4 ] && [ "$1" -lt 1280 ]; then
    nsx director $IP route replace 10.2.0.2/32 dev eth-b mtu lock "$1"; echo route
  else
    nsx director $IP link set dev eth-b mtu "$1"; echo link
  fi
}
egress_restore() {
  nsx director $IP route del 10.2.0.2/32 dev eth-b 2>/dev/null
  nsx director $IP link set dev eth-b mtu 1600
  nsx director $IP -6 addr add fd02::1/64 dev eth-b nodad 2>/dev/null
  nsx director $IP -6 route add fd03::/64 via fd02::3 2>/dev/null
  nsx client $IP route flush cache 2>/dev/null; nsx client $IP -6 route flush cache 2>/dev/null
}
client_pmtu() { # FAMILY -> the client's PMTU towards the VIP (route cache), or "-"
  nsx client $IP $([ "$1" = 6 ] && echo -6) route get "$(vip_of "$1")" 2>/dev/null | tr ' ' '\n' \
    | awk 'p && $1 != "lock" {print; exit} $1 == "mtu" {p = 1}' | grep . || echo -
}
mtu_expect() { # M CF OF [CSUM] -> "deliver LIMIT" | "refuse REASON" | "asC remcsum"
  local m cf of hdr left floor lim
  m=$1 cf=$2 of=$3
  hdr=32; [ "$of" = 6 ] && hdr=52
  left=$((m - hdr)) floor=68; [ "$of" = 6 ] && floor=1280
  if [ "$of" = 6 ] && [ "$m" -lt 1280 ]; then
    [ "$cf" = 6 ] && echo "refuse dr" || echo "refuse route"
  elif [ "$left" -lt "$floor" ]; then echo "refuse pmtu"
  elif [ "${4:-}" = remcsum ] && [ $((left - 8)) -lt "$floor" ]; then
    # Only packets that carry the option (CHECKSUM_PARTIAL: the GRO-merged ones) lose the 8
    # bytes and fall below the floor: refused without ICMP, the others pass -- as in C.
    echo "asC remcsum"
  else
    lim=$left; [ "$cf" = 6 ] && [ "$of" = 4 ] && [ "$left" -lt 1280 ] && lim=1280
    echo "deliver $lim"
  fi
}
mtu_run() { # CF: one 1 KiB request and one 64 KiB upload in parallel; sets RUN_SMALL RUN_BIG RUN_ERR
  local vp a f
  vp=$(hostport "$(vip_of "$1")" 8080)
  nsx client gue-traffic run --connect "$vp" --sizes 1K --requests 1 --timeout-ms 6000 --connect-timeout-ms 2500 \
    --json /tmp/m-small.json >/dev/null 2>/tmp/m-small.err &
  a=$!
  nsx client gue-traffic run --connect "$vp" --sizes 64K --requests 1 --timeout-ms 8000 --connect-timeout-ms 2500 \
    --json /tmp/m-big.json >/dev/null 2>/tmp/m-big.err
  wait $a
  for f in small big; do [ -s /tmp/m-$f.json ] || echo '{"sizes":[{"ok":0,"requests":1}]}' > /tmp/m-$f.json; done
  RUN_SMALL=$(jq -r '.sizes[0].ok' /tmp/m-small.json) RUN_BIG=$(jq -r '.sizes[0].ok' /tmp/m-big.json)
  RUN_ERR=$(jq -r '[.sizes[0].first_error // empty] | first // ""' /tmp/m-small.json /tmp/m-big.json | grep . | head -n1 | cut -c1-80)
}
cell_mtu_case() { # M CF OF [CSUM]
  local m cf of cs name exp why_exp txt okall p mode t0 pm dt ok out icmp ptb sig frags line why want_pm note out_ours out_c icmp_ours icmp_c pm_ours pm_c
  m=$1 cf=$2 of=$3 cs=${4:-nocsum}
  name="mtu$m-c$cf-o$of${4:+-$4}"
  set -- $(mtu_expect "$m" "$cf" "$of" "$cs"); exp=$1 why_exp=$2
  txt= ; okall=0
  for p in ours c; do
    egress_restore
    mode=$(egress_set "$m" "$cf" "$of")
    if ! svc "$p" tcp "$cf" "$of" 8080 "$cs"; then t_fail "$name: $p service setup: $SVC_ERR"; egress_restore; return; fi
    t0=$(now)
    case_begin
    mtu_run "$cf"
    pm=$(client_pmtu "$cf")
    dt=$(echo "$(now) $t0" | awk '{printf "%.1f", $1 - $2}')
    case_end "$name" "$p" "$(jq -nc --argjson m $m --arg mode "$mode" --arg exp "$exp $why_exp" --argjson s "$RUN_SMALL" \
      --argjson b "$RUN_BIG" --arg pm "$pm" --arg err "$RUN_ERR" --argjson dt "$dt" \
      '{mtu: $m, mtu_mode: $mode, client_family: '"$cf"', outer_family: '"$of"', expected: $exp, small_ok: $s, big_ok: $b,
        client_pmtu: $pm, first_error: $err, seconds: $dt}')"
    ok=$((RUN_SMALL + RUN_BIG))
    if [ $ok = 2 ]; then out=deliver; elif [ $ok = 0 ]; then out=refuse; else out=partial; fi
    icmp=$(cget '.counters | (.cl_icmp_unreach // 0) + (.cl_icmp6_unreach // 0) + (.cl_icmp6_ptb // 0)')
    ptb=$(cget '.counters | (.cl_icmp6_ptb // 0)')
    eval "out_$p=\$out icmp_$p=\$icmp pm_$p=\$pm"
    sig="icmp $icmp"; [ "$cf" = 6 ] && sig="icmp6 ptb $ptb unreach $(cget '.counters.cl_icmp6_unreach // 0')"
    [ "$cf" = 4 ] && sig="icmp unreach/frag $(cget '.counters.cl_icmp_unreach // 0')"
    frags=$(cget '.counters | (.dir_frag_creates // 0) + (.dir_frag6_creates // 0)')
    line="$p: $out 1K $RUN_SMALL/1 64K $RUN_BIG/1 in ${dt}s, $sig, pmtu $pm, outer frags $frags; $(brief)"
    [ "$out" = deliver ] || line="$line ($RUN_ERR)"
    why=
    if [ "$p" = ours ]; then
      why=$(unclean)
      case "$exp" in
        deliver)
          [ "$out" = deliver ] || why="${why:+$why; }expected delivery"
          if [ "$why_exp" -lt 1500 ]; then
            want_pm=$why_exp
            # An IPv4 host never goes below net.ipv4.route.min_pmtu (552): it locks the route
            # there and sends without DF, so the module passes those on (outer fragmented).
            [ "$cf" = 4 ] && [ "$want_pm" -lt "$MIN_PMTU" ] && want_pm=$MIN_PMTU
            [ "$pm" = "$want_pm" ] || why="${why:+$why; }client PMTU $pm, want $want_pm"
            [ "$cf" = 6 ] || [ "$(cget '.counters.mod_drop_pmtu // 0')" -gt 0 ] || why="${why:+$why; }no drop_pmtu"
          fi
          [ "$(cget '.counters.mod_packets // 0')" -gt 0 ] || why="${why:+$why; }module sent nothing" ;;
        refuse)
          why=$(echo "$CASE" | jq -r '.counters as $c | [if $c.gso_errors > 0 then "GSO errors" else empty end,
            if $c.rs_errors != 0 then "rs1 receive errors" else empty end] | join("; ")')
          [ "$out" = refuse ] || why="${why:+$why; }expected refusal, got $out"
          case "$why_exp" in
            pmtu) [ "$(cget '.counters.mod_drop_pmtu // 0')" -gt 0 ] || why="${why:+$why; }no drop_pmtu"
                  [ "$icmp" = 0 ] || why="${why:+$why; }client got ICMP ($icmp)" ;;
            route) [ "$(cget '.counters.mod_drop_no_route // 0')" -gt 0 ] || why="${why:+$why; }no drop_no_route" ;;
            dr) [ "$(cget '.counters.mod_packets // 0')" = 0 ] || why="${why:+$why; }module sent packets" ;;
          esac
          [ "$(cget '.counters.mod_packets // 0')" = 0 ] || why="${why:+$why; }module sent $(cget '.counters.mod_packets') packets" ;;
        asC)
          why=$(unclean)
          [ "$out" = deliver ] || [ "$(cget '.counters.mod_drop_pmtu // 0')" -gt 0 ] || why="${why:+$why; }$out without drop_pmtu" ;;
      esac
      [ -z "$why" ] || line="$line -- $why"
    fi
    [ -z "$why" ] || okall=1
    txt="$txt${txt:+ | }$line"
  done
  egress_restore
  # Ours against C: the same outcome and the same signal to the client, unless documented.
  note=
  if [ "$out_ours" != "$out_c" ]; then
    if [ "$cf" = 6 ] && [ "$of" = 4 ] && [ "$exp" = deliver ] && [ "$out_ours" = deliver ] && [ $((m - 32)) -lt 1280 ]; then
      note="C $out_c: documented difference 8 (IPv6 in IPv4 with < 1280 left)"
    else
      okall=1; note="DIFFERENCE: ours $out_ours, C $out_c (not documented)"
    fi
  elif [ "$out_ours" = refuse ] && [ "$([ "$icmp_ours" = 0 ] && echo 0 || echo 1)" != "$([ "$icmp_c" = 0 ] && echo 0 || echo 1)" ]; then
    okall=1; note="DIFFERENCE: refusal signalled by ICMP: ours $icmp_ours, C $icmp_c (not documented)"
  elif [ "$out_ours" = deliver ] && [ "$pm_c" != - ] && [ "$pm_ours" != "$pm_c" ]; then
    # Both delivered and C told the client a PMTU (from a non-GSO packet): it must be ours too.
    okall=1; note="DIFFERENCE: client PMTU ours $pm_ours, C $pm_c (not documented)"
  fi
  [ -n "$note" ] && txt="$txt -- $note"
  if [ $okall = 0 ]; then t_ok "$name ($mode mtu, expect $exp $why_exp): $txt"; else t_fail "$name ($mode mtu, expect $exp $why_exp): $txt"; fi
}

# ---- main ----------------------------------------------------------------------------------------
if [ -z "${KO:-}" ]; then tap_fail "KO not set"; tap_done; exit 1; fi
tap_check "$(lbl "insmod $(basename "$KO")")" module_insert "$KO" || { tap_done; exit 1; }
topo_setup 1600 || { t_fail "topology setup"; tap_done; exit 1; }
topo_wait_servers || true
MIN_PMTU=$(nsx client sysctl -n net.ipv4.route.min_pmtu 2>/dev/null || echo 552)
ns_pids_start
edge_trace_init || { t_fail "drop accounting (tracefs) setup"; tap_done; exit 1; }
[ -x /bin/gue-traffic ] && gue-traffic udp-rr --help >/dev/null 2>&1 \
  || { t_fail "gue-traffic in the guest has udp-rr (rebuild the tools and the initramfs)"; tap_done; exit 1; }
T0=$(now)
for c in $CELLS; do
  c0=$(now)
  case "$c" in
    udp) cell_udp 4; cell_udp 6 ;;
    sctp) cell_sctp ;;
    options) cell_options rr; cell_options ts; cell_options ext6 ;;
    wire)
      nsx director ipvsadm --set 0 0 1
      cell_spread 4 4; cell_spread 6 6
      cell_lifetime 4; cell_lifetime 6
      cell_ecn 4 4; cell_ecn 6 6; cell_ecn 4 6; cell_ecn 6 4
      nsx director ipvsadm --set 0 0 300 ;;
    mtu) for mc in ${MTU_CASES:-$(mtu_default_cases)}; do cell_mtu_case $(echo "$mc" | tr ':' ' '); done ;;
    *) t_fail "unknown cell $c" ;;
  esac
  diag "cell $c took $(echo "$(now) $c0" | awk '{printf "%.0f", $1 - $2}') s"
done
edge_clear
edge_trace_stop
ns_pids_stop
if dmesg | grep -E 'WARNING|BUG|Oops|general protection' > /tmp/dmesg-bad.txt; then
  t_fail "dmesg clean"; sed 's/^/#   /' /tmp/dmesg-bad.txt | head -n 20
else t_ok "dmesg clean (no WARNING/BUG/Oops)"; fi
diag "cells took $(echo "$(now) $T0" | awk '{printf "%.0f", $1 - $2}') s"
tap_done
