# Configuration-interface checks (sourced by tests/guest/smoke.sh after insmod): every bad input
# is refused with a clear error and leaves the table exactly as it was.  Runs in its own netns.
PROC=/proc/net/ipvs_gue

# Write LINE(S) to the namespace's proc file in ONE write(2) (a batch is applied all-or-nothing
# per write); prints the error text, returns the writer's status.
cfg_write() {
  printf '%b' "$1" > /tmp/cfg-batch
  nsx cfgtest dd if=/tmp/cfg-batch of="$PROC" bs=65536 2>/tmp/cfg-err && return 0
  grep -v 'records' /tmp/cfg-err
  return 1
}
cfg_table() { nsx cfgtest grep -v '^#' "$PROC"; }
cfg_empty() { [ -z "$(cfg_table)" ]; }
cfg_no_error() { ! nsx cfgtest grep -q 'last error' "$PROC"; }
cfg_ctl_lists() { nsx cfgtest ipvs-gue-ctl -L -n | grep -qF "$1"; }

# NAME INPUT EXPECTED_ERRNO_TEXT DMESG_TEXT: the write must fail with that error, log that text,
# and not change the table.
cfg_reject() {
  local before err after
  before=$(cfg_table)
  err=$(cfg_write "$2") && { tap_fail "config: $1 is rejected (write succeeded)"; return; }
  after=$(cfg_table)
  case "$err" in *"$3"*) ;; *) tap_fail "config: $1 → '$3' (got: $err)"; return ;; esac
  if ! dmesg | tail -n 5 | grep -qF "$4"; then
    tap_fail "config: $1 logs '$4'"; dmesg | tail -n 3 | sed 's/^/#   /'; return
  fi
  if [ "$before" != "$after" ]; then tap_fail "config: $1 leaves the table unchanged"; return; fi
  if ! nsx cfgtest grep -qF "# last error: " "$PROC"; then tap_fail "config: $1 shows '# last error:'"; return; fi
  tap_ok "config: $1 → $3, '$4', table unchanged"
}

config_checks() {
  local row err lines i out rc new rows
  $IP netns add cfgtest
  tap_check "config: add IPv4 and IPv6 real servers" \
    cfg_write 'add 10.9.0.1 port 5501\nadd fd09::1 port 6080 csum remcsum outer 10.9.0.9\n'
  row=$(cfg_table | grep '^fd09::1 ')
  tap_check "config: listing shows 'fd09::1 10.9.0.9 6080 remcsum' ($row)" \
    sh -c "echo '$row' | grep -q '^fd09::1 10.9.0.9 6080 remcsum 0 0 0 0 0 0 0$'"
  cfg_reject "port out of range" 'add 10.9.0.2 port 70000\n' "Invalid argument" "port 70000 out of range"
  cfg_reject "port 0" 'add 10.9.0.2 port 0\n' "Invalid argument" "out of range"
  cfg_reject "bad address" 'add 10.9.0.300 port 5501\n' "Invalid argument" "10.9.0.300"
  cfg_reject "unknown command" 'frobnicate 10.9.0.2\n' "Invalid argument" "unknown command"
  cfg_reject "unknown checksum mode" 'add 10.9.0.2 port 1 csum crc32\n' "Invalid argument" "crc32"
  cfg_reject "missing port" 'add 10.9.0.2\n' "Invalid argument" "port"
  cfg_reject "trailing text" 'del 10.9.0.1 now\n' "Invalid argument" "now"
  cfg_reject "non-ASCII byte" 'add 10.9.0.2 port 1\351\n' "Invalid argument" "invalid byte"
  cfg_reject "duplicate add" 'add 10.9.0.1 port 5501\n' "File exists" "already exists"
  cfg_reject "delete of a missing server" 'del 10.9.0.77\n' "No such file" "10.9.0.77"
  cfg_reject "a batch with one bad line applies nothing" \
    'add 10.9.0.3 port 1\nadd 10.9.0.4 port 2\nedit 10.9.0.1 port 99999\n' "Invalid argument" "line 3"
  tap_check "config: edit changes only what it names" cfg_write 'edit 10.9.0.1 csum udp\n'
  tap_check "config: edited row reads '10.9.0.1 10.9.0.1 5501 udp'" \
    nsx cfgtest grep -q '^10.9.0.1 10.9.0.1 5501 udp ' "$PROC"
  tap_check "config: a successful write clears '# last error:'" cfg_no_error
  # CAP_NET_ADMIN over the namespace: root in a fresh user namespace does not have it.
  err=$(nsx cfgtest unshare -U -r sh -c 'echo flush > /proc/net/ipvs_gue' 2>&1) \
    && tap_fail "config: write without CAP_NET_ADMIN is refused" \
    || { case "$err" in *"not permitted"*) tap_ok "config: write without CAP_NET_ADMIN → EPERM" ;;
         *) tap_fail "config: write without CAP_NET_ADMIN → EPERM (got: $err)" ;; esac; }
  # 100 more servers in four writes: the table grows past a new table's 64 slots.
  lines=; i=0; err=
  while [ $i -lt 100 ]; do
    i=$((i + 1)); lines="${lines}add 10.8.0.$i port $((5500 + i))\n"
    if [ $((i % 25)) = 0 ]; then out=$(cfg_write "$lines") || err="$err write $((i / 25)): $out;"; lines=; fi
  done
  if [ -z "$err" ]; then tap_ok "config: 100 more real servers accepted (4 writes of 25 adds)"
  else tap_fail "config: 100 more real servers accepted (4 writes of 25 adds):$err"; fi
  new=$(cfg_table | grep -c '^10\.8\.0\.'); rows=$(cfg_table | wc -l)
  tap_check "config: the listing shows them all ($new of 100 new, $rows rows)" [ "$new" = 100 -a "$rows" = 102 ]
  tap_check "config: flush empties the table" cfg_write 'flush\n'
  tap_check "config: table is empty after flush" cfg_empty
  if [ -x /bin/ipvs-gue-ctl ]; then
    out=$(nsx cfgtest ipvs-gue-ctl -a -r 10.9.0.5 --gue-port 70000 2>&1); rc=$?
    case "$rc:$out" in 2:*70000*) tap_ok "ipvs-gue-ctl: bad port → exit 2, names the port" ;;
      *) tap_fail "ipvs-gue-ctl: bad port → exit 2 (rc $rc: $out)" ;; esac
    tap_check "ipvs-gue-ctl: -a adds a server" nsx cfgtest ipvs-gue-ctl -a -r fd09::5 --gue-port 5501 --csum udp
    tap_check "ipvs-gue-ctl: -L shows it" cfg_ctl_lists fd09::5
  else
    tap_fail "ipvs-gue-ctl checks # ipvs-gue-ctl missing in initramfs"
  fi
  $IP netns del cfgtest
}
