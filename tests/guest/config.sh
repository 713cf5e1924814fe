# Configuration-interface checks (sourced by tests/guest/smoke.sh after insmod), in their own
# netns: the proc file is a read-only listing (writes refused, even root's; the table unchanged);
# ipvs-gue-ctl refuses bad input with a clear error and the table unchanged. The netlink family
# itself is checked by tests/guest/netlink.sh.
PROC=/proc/net/ipvs_gue

cfg_table() { nsx cfgtest grep -v '^#' "$PROC"; }
cfg_ctl() { nsx cfgtest ipvs-gue-ctl "$@"; }
cfg_lists() { cfg_ctl -L -n | grep -qF "$1"; }
cfg_saved() { cfg_ctl -S | grep -qxF -- "$1"; }

# NAME EXIT TEXT ARGS...: ipvs-gue-ctl ARGS must exit EXIT, say TEXT, and not change the table.
cfg_ctl_refuses() {
  local name=$1 want_rc=$2 text=$3 before after out rc
  shift 3
  before=$(cfg_table)
  out=$(cfg_ctl "$@" 2>&1); rc=$?
  after=$(cfg_table)
  case "$rc:$out" in
    "$want_rc:"*"$text"*) ;;
    *) tap_fail "ipvs-gue-ctl: $name → exit $want_rc, '$text' (exit $rc: $out)"; return ;;
  esac
  if [ "$before" != "$after" ]; then tap_fail "ipvs-gue-ctl: $name leaves the table unchanged"; return; fi
  tap_ok "ipvs-gue-ctl: $name → exit $rc, '$text', table unchanged"
}

config_checks() {
  local row err mode
  $IP netns add cfgtest
  if [ ! -x /bin/ipvs-gue-ctl ]; then
    tap_fail "config checks # ipvs-gue-ctl missing in initramfs"; $IP netns del cfgtest; return
  fi
  tap_check "ipvs-gue-ctl: -a adds an IPv4 real server" cfg_ctl -a -r 10.9.0.1 --gue-port 5501
  tap_check "ipvs-gue-ctl: -a adds an IPv6 real server with csum and outer" \
    cfg_ctl -a -r fd09::1 --gue-port 6080 --csum remcsum --outer 10.9.0.9
  row=$(cfg_table | grep '^fd09::1 ')
  tap_check "config: the listing shows 'fd09::1 10.9.0.9 6080 remcsum', zero counters, flow label zero ($row)" \
    sh -c "echo '$row' | grep -q '^fd09::1 10.9.0.9 6080 remcsum 0 0 0 0 0 0 0 zero$'"
  tap_check "ipvs-gue-ctl: -L lists fd09::1" cfg_lists fd09::1
  # Read-only: mode 0444 and no write handler, so root's writes fail too (proc_simple_write:
  # EACCES); the module's only configuration interface is netlink.
  mode=$(stat -c %a "$PROC")
  tap_check "config: $PROC is mode 0444 ($mode)" [ "$mode" = 444 ]
  row=$(cfg_table)
  err=$(nsx cfgtest sh -c "echo flush > $PROC" 2>&1) \
    && tap_fail "config: root's write to $PROC is refused (it succeeded)" \
    || { case "$err" in *"Permission denied"*) tap_ok "config: root's write to $PROC is refused (EACCES)" ;;
         *) tap_fail "config: root's write to $PROC is refused with EACCES (got: $err)" ;; esac; }
  tap_check "config: the refused write left the table unchanged" [ "$row" = "$(cfg_table)" ]
  cfg_ctl_refuses "a port out of range" 2 "70000" -a -r 10.9.0.5 --gue-port 70000
  cfg_ctl_refuses "a bad address" 2 "10.9.0.300" -a -r 10.9.0.300 --gue-port 1
  cfg_ctl_refuses "an unknown checksum mode" 2 "crc32" -a -r 10.9.0.5 --gue-port 1 --csum crc32
  cfg_ctl_refuses "an unknown flow label mode" 2 "unknown flow label mode 'random'" -e -r fd09::1 --flowlabel random
  cfg_ctl_refuses "a duplicate add (the kernel's EEXIST)" 1 "already exists" -a -r 10.9.0.1 --gue-port 5501
  cfg_ctl_refuses "a delete of a missing server (the kernel's ENOENT)" 1 "does not exist" -d -r 10.9.0.77
  cfg_ctl_refuses "an edit that changes nothing" 2 "nothing to edit" -e -r 10.9.0.1
  tap_check "ipvs-gue-ctl: -e changes only what it names" cfg_ctl -e -r 10.9.0.1 --csum udp
  tap_check "config: edited row reads '10.9.0.1 10.9.0.1 5501 udp'" \
    nsx cfgtest grep -q '^10.9.0.1 10.9.0.1 5501 udp ' "$PROC"
  tap_check "ipvs-gue-ctl: -e --flowlabel hash" cfg_ctl -e -r fd09::1 --flowlabel hash
  tap_check "config: -S saves it ('-a -r fd09::1 --gue-port 6080 --csum remcsum --outer 10.9.0.9 --flowlabel hash')" \
    cfg_saved '-a -r fd09::1 --gue-port 6080 --csum remcsum --outer 10.9.0.9 --flowlabel hash'
  tap_check "ipvs-gue-ctl: -C empties the table" cfg_ctl -C
  tap_check "config: the listing is empty after -C" [ -z "$(cfg_table)" ]
  $IP netns del cfgtest
}
