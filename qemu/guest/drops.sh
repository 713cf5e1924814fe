# Transmit-path drop accounting (sourced; needs topology.sh).  See docs in platform.md:
#  - kfree_xmit: skb:kfree_skb events at validate_xmit_skb / __dev_queue_xmit (tracefs instance;
#    tracing is guest-wide, so this also counts any other netns: stricter, never looser)
#  - gso_calls / gso_errors: kretprobe on skb_udp_tunnel_segment; calls from kprobe_profile's
#    hit count, errors = returns that are ERR_PTRs ($retval > 0xfffffffffffff000)
#  - tx_dropped_delta: director eth-b tx_dropped;  retransmits: client netns Tcp RetransSegs delta
# drops_start; ...traffic...; drops_stop  -> key=value lines.  Per-reason histogram of the
# filtered kfree_skb events: $DROPS_HIST (kept for failure reports).
TRACEFS=/sys/kernel/tracing
DROPS_INST=$TRACEFS/instances/ipvs_gue
DROPS_HIST=/tmp/drops-hist.txt
DROPS_KFREE_FILTER='location.function == validate_xmit_skb || location.function == __dev_queue_xmit'
DROPS_DEV=${DROPS_DEV:-eth-b}

_drops_gso_hits() { awk '($1 == "gso_ret" || $1 == "ipvs_gue/gso_ret") {print $2; f=1} END {if (!f) print 0}' $TRACEFS/kprobe_profile; }
_drops_gso_missed() { awk '($1 == "gso_ret" || $1 == "ipvs_gue/gso_ret") {print $3; f=1} END {if (!f) print 0}' $TRACEFS/kprobe_profile; }
_drops_txd() { nsx director cat "/sys/class/net/$DROPS_DEV/statistics/tx_dropped"; }
_drops_retrans() { nsx client awk '$1 == "Tcp:" && !h {for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next}
                                $1 == "Tcp:" {print $c["RetransSegs"]}' /proc/net/snmp; }

drops_init() { # once per boot: mounts + kretprobe event definition
  [ -d $TRACEFS/events ] || mount -t tracefs tracefs $TRACEFS || { echo "# no tracefs" >&2; return 1; }
  if ! grep -q 'ipvs_gue/gso_ret' $TRACEFS/kprobe_events; then
    echo 'r:ipvs_gue/gso_ret skb_udp_tunnel_segment ret=$retval:x64' >> $TRACEFS/kprobe_events || return 1
  fi
}

DROPS_TRIGGER="hist:keys=reason,location.sym:vals=hitcount:sort=hitcount.descending if $DROPS_KFREE_FILTER"
drops_start() {
  drops_init || return 1
  if [ -d $DROPS_INST ]; then # reuse: stop, drop the old histogram and events
    echo 0 > $DROPS_INST/tracing_on
    echo 0 > $DROPS_INST/events/enable
    echo "!$DROPS_TRIGGER" > $DROPS_INST/events/skb/kfree_skb/trigger 2>/dev/null
    : > $DROPS_INST/trace
  else
    mkdir $DROPS_INST || return 1
    echo 8192 > $DROPS_INST/buffer_size_kb
    echo "$DROPS_KFREE_FILTER" > $DROPS_INST/events/skb/kfree_skb/filter || return 1
    echo 'ret >= 0xfffffffffffff001' > $DROPS_INST/events/ipvs_gue/gso_ret/filter || return 1
  fi
  echo "$DROPS_TRIGGER" > $DROPS_INST/events/skb/kfree_skb/trigger 2>/dev/null \
    || echo "# no hist trigger (HIST_TRIGGERS?)"
  echo 1 > $DROPS_INST/events/skb/kfree_skb/enable
  echo 1 > $DROPS_INST/events/ipvs_gue/gso_ret/enable
  echo 1 > $DROPS_INST/tracing_on
  DROPS_GSO0=$(_drops_gso_hits); DROPS_MISS0=$(_drops_gso_missed)
  DROPS_TXD0=$(_drops_txd); DROPS_RTX0=$(_drops_retrans)
}

drops_stop() {
  echo 0 > $DROPS_INST/tracing_on
  gso=$(( $(_drops_gso_hits) - DROPS_GSO0 ))
  missed=$(( $(_drops_gso_missed) - DROPS_MISS0 ))
  txd=$(( $(_drops_txd) - DROPS_TXD0 ))
  rtx=$(( $(_drops_retrans) - DROPS_RTX0 ))
  kfree=$(grep -c ' kfree_skb:' $DROPS_INST/trace)
  gerr=$(grep -c ' gso_ret:' $DROPS_INST/trace)
  overrun=$(cat $DROPS_INST/per_cpu/cpu*/stats 2>/dev/null | awk '$1 == "overrun:" {s += $2} END {print s + 0}')
  cat $DROPS_INST/events/skb/kfree_skb/hist > $DROPS_HIST 2>/dev/null || : > $DROPS_HIST
  echo 0 > $DROPS_INST/events/enable
  echo "gso_calls=$gso"
  echo "gso_errors=$gerr"
  echo "gso_missed=$missed"
  echo "kfree_xmit=$kfree"
  echo "tx_dropped_delta=$txd"
  echo "retransmits=$rtx"
  echo "trace_overrun=$overrun"
}

# Eval-able form: drops_stop > f; drops_get f KEY
drops_get() { sed -n "s/^$2=//p" "$1"; }
drops_hist_report() { # the per-reason histogram, as TAP diagnostics
  grep -v '^#' $DROPS_HIST | grep -v '^$' | sed 's/^/#   /'
}
