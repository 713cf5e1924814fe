# Drop accounting and packet conservation for one traffic run (sourced; needs topology.sh).
# Facts behind it: /work/shared/notes/platform.md and docs/harness.md ("Drop accounting").
#   drops_start [RS]   snapshot every counter below (RS rs1|rs2: the cell's real server, default rs1)
#   drops_stop         wait until the links are quiet, then print KEY=VALUE lines (below)
#   drops_get FILE KEY; drops_hist_report (director histogram), drops_rx_hist_report (receive side)
# Director transmit path (unchanged):
#  - kfree_xmit: skb:kfree_skb at validate_xmit_skb / __dev_queue_xmit (tracefs instance; tracing
#    is guest-wide, so this also counts any other netns: stricter, never looser)
#  - gso_calls / gso_errors / gso_missed: kretprobe on skb_udp_tunnel_segment (calls from
#    kprobe_profile's hit count, errors = returns that are ERR_PTRs)
#  - tx_dropped_delta: director eth-b;  retransmits: client netns Tcp RetransSegs
# Receive side (rs1, rs2, router, director NICs), summed into rx_drops, nonzero items in rx_detail:
#  - UDP/UDP6 InCsumErrors InErrors RcvbufErrors NoPorts, TCP InCsumErrors, IP/IPv6 InHdrErrors
#    InAddrErrors InUnknownProtos InDiscards InTruncatedPkts InNoRoutes ReasmFails (+ IPv6
#    InTooBigErrors),
#    ICMP/ICMPv6 destination-unreachable sent; router: also Out/Frag/TimeExceeded errors;
#    every device's rx_dropped + rx_errors (router: + tx_dropped + tx_errors), tunnels included
#  - rx_kfree: skb:kfree_skb guest-wide with a drop reason other than the benign set
#    ($DROPS_RX_BENIGN), or any reason inside the fou/GUE/tunnel receive functions (they drop
#    with NOT_SPECIFIED and count nothing: e.g. ipip_rcv with tunl0 down, ipxip6_rcv with
#    ip6tnl0 in ip6ip6 mode) -- hist per reason/location in $DROPS_RX_HIST
# Conservation (segments = wire frames; packets = skbs as IPVS and the module see them):
#  - in_pkts: IPVS InPkts (/proc/net/ip_vs_stats_percpu: live per-cpu, unlike ipvsadm's
#    2-second estimator copy);  in_segs: director eth-a rx_packets;  client_segs: client eth-a tx
#  - out_pkts: outer packets handed to the director's IP output (IPv4 OutRequests minus ICMP, TCP
#    and UDP the director originates; IPv6 eth-b OutTransmits minus ICMPv6, forwarded and extra
#    fragments);  out_frames / out_segs: director eth-b tx_packets, minus extra outer fragments
#  - frames that are not test traffic but countable -- ICMPv6 on the interface (neighbour
#    discovery of link-local neighbours a few seconds after set-up, MLD) and IPv4 multicast or
#    broadcast (netns-wide) -- are taken out of out_frames and rs_frames (noise_frames)
#  - icmp_pmtu: director ICMP frag-needed/dest-unreachable + ICMPv6 packet-too-big sent (never
#    rate-limited for PMTU)
#  - rs_frames: the real server NIC's rx_packets (minus noise);  rs_datagrams = rs_frames minus extra
#    fragments reassembled;  rs_ip_segs: its IPv4+IPv6 In{NoECT,ECT0,ECT1,CE}Pkts, which count
#    every received IP packet once per GRO segment: an outer GUE packet and its decapsulated inner
#    packet each count, so rs_decap_segs = rs_ip_segs - rs_frames;  rs_tunnel_pkts: tunl0 + sit0
#    + ip6tnl0 rx_packets (skbs after the real server's GRO: reported only)
# Links must carry nothing else while a run is measured: tests/guest/e2e.sh makes every
# neighbour entry permanent (no ARP/ND) and drops_stop waits until the frame counters settle.
TRACEFS=/sys/kernel/tracing
DROPS_INST=$TRACEFS/instances/ipvs_gue
DROPS_RX_INST=$TRACEFS/instances/ipvs_gue_rx
DROPS_HIST=/tmp/drops-hist.txt
DROPS_RX_HIST=/tmp/drops-rx-hist.txt
DROPS_KFREE_FILTER='location.function == validate_xmit_skb || location.function == __dev_queue_xmit'
DROPS_DEV=${DROPS_DEV:-eth-b}
# Roles for the receive-side sums: namespaces whose loss counters count, and among them the
# directors (device counters only: their IP counters are IPVS's business) and the routers
# (forwarding errors count too).  The scale-out suite has two directors and two routers.
DROPS_RX_NS=${DROPS_RX_NS:-rs1 rs2 router director}
DROPS_DIRECTOR_NS=${DROPS_DIRECTOR_NS:-director}
DROPS_ROUTER_NS=${DROPS_ROUTER_NS:-router}
# Drop reasons that are not losses of the path (names from the kfree_skb format file):
#   NOT_SPECIFIED   thousands per clean transfer from normal coalescing (skb_release_data);
#                   counted only inside the receive functions below
#   QUEUE_PURGE     socket queues purged when a connection closes
#   TCP endpoint state discards: a TCP receiver dropping a segment its own state makes redundant
#   (a duplicate of data it already has: OLD_SEQUENCE, OLD_DATA, OFOMERGE, OFO_DROP (6.12: an
#   out-of-order segment that in-order data already covers), RFC7323_PAWS -- the spurious
#   retransmissions of platform.md; or a segment of a connection that is closing or
#   gone: FLAGS, CLOSE, RESET, ABORT_ON_DATA, INVALID_SEQUENCE, INVALID_ACK_SEQUENCE, INVALID_SYN,
#   OLD_ACK, TOO_OLD_ACK, ACK_UNSENT_DATA, and NO_SOCKET inside tcp_v4_rcv/tcp_v6_rcv).  The
#   sender still has (or no longer needs) such data, so they are not losses; a segment the path
#   really lost
#   shows in the conservation balance.  Still counted: TCP_CSUM, receive-buffer and memory drops
#   (TCP_ZEROWINDOW, TCP_OFO_QUEUE_PRUNE, PROTO_MEM, SOCKET_BACKLOG, ...), every IP/UDP/tunnel
#   reason.
DROPS_RX_BENIGN=${DROPS_RX_BENIGN:-NOT_SPECIFIED QUEUE_PURGE TCP_OLD_SEQUENCE TCP_OLD_DATA
  TCP_OFOMERGE TCP_OFO_DROP TCP_RFC7323_PAWS TCP_FLAGS TCP_CLOSE TCP_RESET TCP_ABORT_ON_DATA
  TCP_INVALID_SEQUENCE TCP_INVALID_ACK_SEQUENCE TCP_INVALID_SYN TCP_OLD_ACK TCP_TOO_OLD_ACK
  TCP_ACK_UNSENT_DATA}
# Receive functions of fou/GUE and the ipip/sit/ip6tnl tunnels that free without a reason.
DROPS_RX_DECAP_FUNCS="fou_udp_recv gue_udp_recv gue_control_message ipip_rcv ipip_tunnel_rcv
  ip_tunnel_rcv ipip6_rcv __ip6_tnl_rcv ip6_tnl_rcv ipxip6_rcv ip4ip6_rcv ip6ip6_rcv tunnel4_rcv
  tunnel64_rcv tunnel6_rcv tunnel46_rcv"
DROPS_SNAP0=/tmp/drops-snap0.txt
DROPS_SNAP1=/tmp/drops-snap1.txt
DROPS_DELTA=/tmp/drops-delta.txt

_drops_gso_hits() { awk '($1 == "gso_ret" || $1 == "ipvs_gue/gso_ret") {print $2; f=1} END {if (!f) print 0}' $TRACEFS/kprobe_profile; }
_drops_gso_missed() { awk '($1 == "gso_ret" || $1 == "ipvs_gue/gso_ret") {print $3; f=1} END {if (!f) print 0}' $TRACEFS/kprobe_profile; }

# The kfree_skb reason number of NAME, from the event's print format ({ N, "NAME" }).
_drops_reason_num() {
  sed -n 's/.*__print_symbolic(REC->reason, //p' $TRACEFS/events/skb/kfree_skb/format \
    | tr '}' '\n' | sed -n "s/^[ ,]*{ *\([0-9]*\), *\"$1\" *$/\1/p" | head -n1
}

# "( reason != A && ... ) || ( location >= START && location < END ) || ...": the benign reasons
# by number, the receive functions by the address ranges they occupy in this kernel.
_drops_rx_filter() {
  local f n r
  f=
  for r in $DROPS_RX_BENIGN; do
    n=$(_drops_reason_num "$r")
    [ -n "$n" ] || { echo "# drops: no kfree_skb reason $r in this kernel" >&2; continue; }
    f="$f${f:+ && }reason != $n"
  done
  n=$(_drops_reason_num NO_SOCKET)
  # (a function name ends at white space: keep a blank before every closing parenthesis)
  [ -z "$n" ] || f="$f && ( reason != $n || ( location.function != tcp_v4_rcv && location.function != tcp_v6_rcv ) )"
  f="( ${f:-reason != 0} )"
  # Address ranges, not location.function: that resolves a name to one symbol, and some of these
  # names exist twice (ipip_rcv is in ipip.c and in sit.c).  Hex strings of one width compare
  # as text (awk's numbers would round 64-bit addresses).
  for r in $(_drops_func_ranges $DROPS_RX_DECAP_FUNCS); do
    f="$f || ( location >= 0x${r%-*} && location < 0x${r#*-} )"
  done
  echo "$f"
}

# START-END (hex) of every text symbol named NAME..., end = the next symbol's address.
_drops_func_ranges() {
  sort /proc/kallsyms | awk -v names=" $* " '
    open != "" && $1 > open { print open "-" $1; open = "" }
    ($2 == "t" || $2 == "T") && index(names, " " $3 " ") && $1 !~ /^0+$/ { open = $1 }'
}

drops_init() { # once per boot: mounts + kretprobe event definition
  [ -d $TRACEFS/events ] || mount -t tracefs tracefs $TRACEFS || { echo "# no tracefs" >&2; return 1; }
  if ! grep -q 'ipvs_gue/gso_ret' $TRACEFS/kprobe_events; then
    echo 'r:ipvs_gue/gso_ret skb_udp_tunnel_segment ret=$retval:x64' >> $TRACEFS/kprobe_events || return 1
  fi
  [ -n "${DROPS_RX_FILTER:-}" ] || DROPS_RX_FILTER=$(_drops_rx_filter)
}

# One counter per line, "NS KEY VALUE": every device's packet, drop and error counts
# (dev.NAME.FIELD, from /proc/net/dev: its rx drop column also holds rx_missed_errors), /proc/net/snmp
# and netstat (Proto.Field), snmp6 and per-device dev_snmp6 (dev6.NAME.Field), and in the director
# IPVS's live InPkts summed over CPUs (ipvs.InPkts).  One awk per namespace, entered with setns
# only (/proc/net follows the reader's namespace): a process per counter file and `ip netns exec`
# (which remounts /sys) cost 2-4 s per snapshot under TCG, and every traffic run takes two.
DROPS_SNAP_AWK='
  function pairs(f,   line, h, x, k, n, i, key) {  # "Proto: names" then "Proto: values"
    while ((getline line < f) > 0) {
      n = split(line, x); key = x[1]
      if (!(key in h)) { h[key] = line; continue }
      split(h[key], k); delete h[key]
      for (i = 2; i <= n; i++) print ns, substr(key, 1, length(key) - 1) "." k[i], x[i]
    }
    close(f)
  }
  function named(f, prefix,   line, x) { while ((getline line < f) > 0) { split(line, x); print ns, prefix x[1], x[2] } close(f) }
  BEGIN {
    nd = 0
    while ((getline line < "/proc/net/dev") > 0) {
      if (line !~ /:/) continue
      sub(/:/, " ", line); split(line, x); d = x[1]; devs[++nd] = d
      print ns, "dev." d ".rx_packets", x[3]; print ns, "dev." d ".rx_errors", x[4]
      print ns, "dev." d ".rx_dropped", x[5]; print ns, "dev." d ".tx_packets", x[11]
      print ns, "dev." d ".tx_errors", x[12]; print ns, "dev." d ".tx_dropped", x[13]
    }
    close("/proc/net/dev")
    pairs("/proc/net/snmp"); pairs("/proc/net/netstat")
    named("/proc/net/snmp6", "")
    for (i = 1; i <= nd; i++) named("/proc/net/dev_snmp6/" devs[i], "dev6." devs[i] ".")
    f = "/proc/net/ip_vs_stats_percpu"; s = 0
    if ((getline line < f) > 0) {
      do { n = split(line, x); if (x[1] ~ /^[0-9A-F]+$/ && n == 6) s += ("0x" x[3]) + 0 } while ((getline line < f) > 0)
      print ns, "ipvs.InPkts", s
    }
  }'
_drops_snap() { # FILE
  local ns
  for ns in $TOPO_NS; do nsenter --net=/run/netns/"$ns" awk -v ns="$ns" "$DROPS_SNAP_AWK"; done > "$1"
}

# Frames on every topology NIC: unchanged for two reads 0.3 s apart = quiet.
_drops_activity() {
  local ns
  for ns in $TOPO_NS; do nsenter --net=/run/netns/"$ns" cat /proc/net/dev; done \
    | awk '{sub(":", " "); $0 = $0} $1 ~ /^eth-/ {s += $3 + $11} END {print s + 0}'  # name rx_bytes rx_packets .. tx_bytes tx_packets
}
drops_settle() { # waits at most ~6 s
  local a same i b
  a=$(_drops_activity); same=0; i=0
  while [ "$same" -lt 2 ] && [ "$i" -lt 20 ]; do
    sleep 0.3; b=$(_drops_activity); i=$((i + 1))
    if [ "$a" = "$b" ]; then same=$((same + 1)); else same=0; fi
    a=$b
  done
  DROPS_SETTLE_STEPS=$i
}

DROPS_TRIGGER="hist:keys=reason,location.sym:vals=hitcount:sort=hitcount.descending if $DROPS_KFREE_FILTER"
_drops_instance() { # DIR EVENT_FILTER TRIGGER [GSO]: (re)arm one tracefs instance
  if [ -d "$1" ]; then # reuse: stop, drop the old histogram and events
    echo 0 > "$1/tracing_on"
    echo 0 > "$1/events/enable"
    echo "!$3" > "$1/events/skb/kfree_skb/trigger" 2>/dev/null
    : > "$1/trace"
  else
    mkdir "$1" || return 1
    echo 8192 > "$1/buffer_size_kb"
    if ! echo "$2" > "$1/events/skb/kfree_skb/filter"; then
      echo "# drops: filter refused: $2" >&2
      sed 's/^/# drops: /' $TRACEFS/error_log >&2 2>/dev/null
      rmdir "$1"; return 1  # never count through an unfiltered instance
    fi
    if [ -n "${4:-}" ]; then
      echo 'ret >= 0xfffffffffffff001' > "$1/events/ipvs_gue/gso_ret/filter" || return 1
    fi
  fi
  echo "$3" > "$1/events/skb/kfree_skb/trigger" 2>/dev/null || echo "# no hist trigger (HIST_TRIGGERS?)"
  echo 1 > "$1/events/skb/kfree_skb/enable"
  [ -z "${4:-}" ] || echo 1 > "$1/events/ipvs_gue/gso_ret/enable"
  echo 1 > "$1/tracing_on"
}

drops_start() { # [RS]
  drops_init || return 1
  DROPS_RS=${1:-rs1}
  case "$DROPS_RS" in rs1) DROPS_RS_DEV=eth-b ;; rs2) DROPS_RS_DEV=eth-c ;;
    *) echo "# drops_start: bad real server $DROPS_RS" >&2; return 1 ;; esac
  DROPS_RX_TRIGGER="hist:keys=reason,location.sym:vals=hitcount:sort=hitcount.descending if $DROPS_RX_FILTER"
  _drops_instance $DROPS_INST "$DROPS_KFREE_FILTER" "$DROPS_TRIGGER" gso || return 1
  _drops_instance $DROPS_RX_INST "$DROPS_RX_FILTER" "$DROPS_RX_TRIGGER" || return 1
  DROPS_GSO0=$(_drops_gso_hits); DROPS_MISS0=$(_drops_gso_missed)
  _drops_snap $DROPS_SNAP0
}

_drops_overrun() { cat "$1"/per_cpu/cpu*/stats 2>/dev/null | awk '$1 == "overrun:" {s += $2} END {print s + 0}'; }

drops_stop() {
  local gso missed kfree gerr rxkfree overrun
  drops_settle
  _drops_snap $DROPS_SNAP1
  echo 0 > $DROPS_INST/tracing_on
  echo 0 > $DROPS_RX_INST/tracing_on
  gso=$(( $(_drops_gso_hits) - DROPS_GSO0 ))
  missed=$(( $(_drops_gso_missed) - DROPS_MISS0 ))
  kfree=$(grep -c ' kfree_skb:' $DROPS_INST/trace)
  gerr=$(grep -c ' gso_ret:' $DROPS_INST/trace)
  rxkfree=$(grep -c ' kfree_skb:' $DROPS_RX_INST/trace)
  overrun=$(( $(_drops_overrun $DROPS_INST) + $(_drops_overrun $DROPS_RX_INST) ))
  cat $DROPS_INST/events/skb/kfree_skb/hist > $DROPS_HIST 2>/dev/null || : > $DROPS_HIST
  cat $DROPS_RX_INST/events/skb/kfree_skb/hist > $DROPS_RX_HIST 2>/dev/null || : > $DROPS_RX_HIST
  echo 0 > $DROPS_INST/events/enable
  echo 0 > $DROPS_RX_INST/events/enable
  echo "gso_calls=$gso"
  echo "gso_errors=$gerr"
  echo "gso_missed=$missed"
  echo "kfree_xmit=$kfree"
  echo "rx_kfree=$rxkfree"
  echo "trace_overrun=$overrun"
  echo "settle_steps=$DROPS_SETTLE_STEPS"
  awk 'NR == FNR {a[$1 " " $2] = $3; next} {print $1, $2, $3 - a[$1 " " $2]}' $DROPS_SNAP0 $DROPS_SNAP1 > $DROPS_DELTA
  awk -v rs="$DROPS_RS" -v rsdev="$DROPS_RS_DEV" -v egress="$DROPS_DEV" -v rxns=" $DROPS_RX_NS " \
    -v directors=" $DROPS_DIRECTOR_NS " -v routers=" $DROPS_ROUTER_NS " '
    { d[$1 " " $2] = $3 }
    function role(list, ns) { return index(list, " " ns " ") > 0 }
    # receive-side loss counters, by role
    function lossy(ns, k) {
      if (k ~ /^dev\.[^.]+\.rx_(dropped|errors)$/) return 1
      if (role(directors, ns)) return 0
      if (k == "Tcp.InCsumErrors") return 1
      if (k ~ /^Udp\.(InCsumErrors|InErrors|RcvbufErrors|NoPorts)$/ || k ~ /^Udp6(InCsumErrors|InErrors|RcvbufErrors|NoPorts)$/) return 1
      if (k ~ /^Ip\.(InHdrErrors|InAddrErrors|InUnknownProtos|InDiscards|ReasmFails)$/) return 1
      if (k ~ /^IpExt\.(InCsumErrors|InTruncatedPkts|InNoRoutes)$/) return 1
      if (k ~ /^Ip6(InHdrErrors|InAddrErrors|InUnknownProtos|InDiscards|InTruncatedPkts|InNoRoutes|InTooBigErrors|ReasmFails)$/) return 1
      if (k == "Icmp.OutDestUnreachs" || k == "Icmp6OutDestUnreachs") return 1
      if (!role(routers, ns)) return 0
      if (k ~ /^dev\.[^.]+\.tx_(dropped|errors)$/) return 1
      if (k ~ /^Ip\.(OutDiscards|OutNoRoutes|FragFails)$/ || k ~ /^Ip6(OutDiscards|OutNoRoutes|FragFails)$/) return 1
      if (k == "Icmp.OutTimeExcds" || k == "Icmp6OutTimeExcds" || k == "Icmp6OutPktTooBigs") return 1
      return 0
    }
    (role(rxns, $1) && $2 !~ /^dev6\./ && $3 != 0 && lossy($1, $2)) {
      rx += $3; det = det (det == "" ? "" : ",") $1 ":" $2 "=" $3
    }
    function v(ns, k) { return (ns " " k) in d ? d[ns " " k] : 0 }
    function ect4(ns) { return v(ns, "IpExt.InNoECTPkts") + v(ns, "IpExt.InECT1Pkts") + v(ns, "IpExt.InECT0Pkts") + v(ns, "IpExt.InCEPkts") }
    function ect6(ns) { return v(ns, "Ip6InNoECTPkts") + v(ns, "Ip6InECT1Pkts") + v(ns, "Ip6InECT0Pkts") + v(ns, "Ip6InCEPkts") }
    END {
      D = "director"; e6 = "dev6." egress "."
      out4 = v(D, "Ip.OutRequests") - v(D, "Icmp.OutMsgs") - v(D, "Tcp.OutSegs") - v(D, "Udp.OutDatagrams")
      out6 = v(D, e6 "Ip6OutTransmits") - v(D, e6 "Icmp6OutMsgs") - v(D, e6 "Ip6OutForwDatagrams") \
             - (v(D, e6 "Ip6FragCreates") - v(D, e6 "Ip6FragOKs"))
      fragx = (v(D, "Ip.FragCreates") - v(D, "Ip.FragOKs")) + (v(D, "Ip6FragCreates") - v(D, "Ip6FragOKs"))
      # ICMPv6 on the interface (neighbour discovery of link-local neighbours, MLD) and IPv4
      # multicast/broadcast are never test traffic (GUE is UDP): counted, set aside
      mcout = v(D, e6 "Icmp6OutMsgs") + v(D, "IpExt.OutMcastPkts") + v(D, "IpExt.OutBcastPkts")
      frames = v(D, "dev." egress ".tx_packets") - mcout
      mcin = v(rs, "dev6." rsdev ".Icmp6InMsgs") + v(rs, "IpExt.InMcastPkts") + v(rs, "IpExt.InBcastPkts")
      rsf = v(rs, "dev." rsdev ".rx_packets") - mcin
      reasmx = (v(rs, "Ip.ReasmReqds") - v(rs, "Ip.ReasmOKs")) + (v(rs, "Ip6ReasmReqds") - v(rs, "Ip6ReasmOKs"))
      ipsegs = ect4(rs) + ect6(rs)
      print "tx_dropped_delta=" v(D, "dev." egress ".tx_dropped")
      print "retransmits=" v("client", "Tcp.RetransSegs")
      print "rx_drops=" rx + 0
      print "rx_detail=" det
      print "in_pkts=" v(D, "ipvs.InPkts")
      print "in_segs=" v(D, "dev.eth-a.rx_packets")
      print "client_segs=" v("client", "dev.eth-a.tx_packets")
      print "out_pkts=" out4 + out6
      print "out_frames=" frames
      print "out_frag_extra=" fragx
      print "out_segs=" frames - fragx
      print "icmp_pmtu=" v(D, "Icmp.OutDestUnreachs") + v(D, "Icmp6OutPktTooBigs")
      print "rs_frames=" rsf
      print "rs_datagrams=" rsf - reasmx
      print "rs_ip_segs=" ipsegs - mcin
      print "rs_decap_segs=" ipsegs - mcin - rsf
      print "noise_frames=" mcout + mcin
      print "rs_tunnel_pkts=" v(rs, "dev.tunl0.rx_packets") + v(rs, "dev.sit0.rx_packets") + v(rs, "dev.ip6tnl0.rx_packets")
      print "router_rx_frames=" v("router", "dev.eth-b.rx_packets")
      print "router_tx_frames=" v("router", "dev.eth-c.tx_packets")
    }' $DROPS_DELTA
}

# Eval-able form: drops_stop > f; drops_get f KEY
drops_get() { sed -n "s/^$2=//p" "$1"; }
drops_hist_report() { # the director's per-reason histogram, as TAP diagnostics
  grep -v '^#' $DROPS_HIST | grep -v '^$' | sed 's/^/#   /'
}
drops_rx_hist_report() { # the receive-side (filtered) histogram
  grep -v '^#' $DROPS_RX_HIST | grep -v '^$' | sed 's/^/#   rx /'
}
