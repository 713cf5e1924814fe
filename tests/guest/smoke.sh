# Guest side of tests/smoke.sh.  KO = module path in the guest (empty: module missing).
# How to see that the module attached to a netns created after load: NETNS_PATTERN (dmesg text the
# module logs per netns; counted before/after) if set, else NETNS_CHECK (shell command run inside
# the new netns; default: the module's per-netns /proc/net/ipvs_gue exists).
NETNS_PATTERN=${NETNS_PATTERN:-}
NETNS_CHECK=${NETNS_CHECK:-test -e /proc/net/ipvs_gue}
. /guest/lib.sh
mod=$(basename "${KO:-ipvs_gue.ko}" .ko)
if [ -n "${KO:-}" ] && [ -f "$KO" ]; then
  tap_check "insmod $(basename "$KO")" module_insert "$KO"; mod=${MODULE_NAME:-$mod}
  before=$(dmesg | grep -c "${NETNS_PATTERN:-^$}")
  $IP netns add smoke-probe
  sleep 0.2
  if [ -n "$NETNS_PATTERN" ]; then
    after=$(dmesg | grep -c "$NETNS_PATTERN")
    tap_check "module sees a netns created after load (dmesg '$NETNS_PATTERN': $before -> $after)" [ "$after" -gt "$before" ]
  else
    tap_check "module sees a netns created after load ($NETNS_CHECK)" nsx smoke-probe sh -c "$NETNS_CHECK"
  fi
  dmesg | grep -i "$mod" | tail -n 5 | sed 's/^/#   dmesg: /'
  . /guest/config.sh
  config_checks
  . /guest/netlink.sh
  netlink_checks
  $IP netns del smoke-probe
else
  tap_fail "insmod $mod # module missing"
  tap_fail "module sees a netns created after load # module missing"
fi
topo_setup 1600 && tap_ok "topology setup" || tap_fail "topology setup"
topo_wait_servers || true
topo_preconditions
if [ -x /bin/gue-traffic ]; then
  for dst in 10.2.0.2 fd02::2; do
    if nsx client gue-traffic run --connect "$(hostport "$dst" 8080)" --sizes 1K,64K,1M --requests 4 \
         --connections 2 --timeout-ms 20000 --json /tmp/smoke.json 2>/tmp/smoke.err; then
      tap_ok "traffic client -> rs1 $dst (plain routing): $(jq -c '[.sizes[] | "\(.payload_bytes)B \(.ok)/\(.requests)"]' /tmp/smoke.json)"
    else
      tap_fail "traffic client -> rs1 $dst (plain routing)"; tail -n 5 /tmp/smoke.err | sed 's/^/#   /'
    fi
  done
else
  tap_fail "traffic client -> rs1 # gue-traffic missing in initramfs"
fi
for ns in $TOPO_NS; do $IP netns del "$ns"; done
if [ -n "${KO:-}" ] && [ -f "$KO" ]; then
  sleep 1
  tap_check "rmmod $mod" module_remove
else
  tap_fail "rmmod $mod # module missing"
fi
if dmesg | grep -E 'WARNING|BUG|Oops|general protection' > /tmp/dmesg-bad.txt; then
  tap_fail "dmesg clean"; sed 's/^/#   /' /tmp/dmesg-bad.txt | head -n 20
else tap_ok "dmesg has no WARNING/BUG/Oops"; fi
tap_done
