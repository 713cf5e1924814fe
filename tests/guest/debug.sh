# Guest side of tests/debug.sh (busybox sh, run by /init on the DEBUG kernel): the module under
# configuration writes, unload/reload under traffic and namespace churn with traffic; any kernel
# complaint fails.  Detector canaries (a throw-away C module, CANARY) prove the detectors are live.
#   KO           the module under test (guest path)
#   CANARY       the canary module (guest path); mode=early trips might_sleep/RCU/ODEBUG/WARN
#                checks that leave lockdep armed, mode=late trips lockdep and KASAN (run last:
#                both switch lock debugging off)
#   SCENARIOS    which of "2 3 4" to run (default all; the canaries always run)
#   CYCLES       scenario 3: rmmod/insmod/reconfigure cycles under traffic (default 5)
#   UPLOAD_SIZE UPLOAD_REQUESTS UPLOAD_CONNECTIONS  scenario 3 traffic shape (2M, 8, 2 per family)
#   NS_ROUNDS NS_PER_ROUND  scenario 4: rounds x director namespaces per round (default 2 x 5)
#   KMEMLEAK_EXPECTED=1  the kernel has DEBUG_KMEMLEAK: its absence in the guest is a failure
# TAP lines go to the console AND to /dev/ttyS1 (results.txt): kernel messages on the console can
# split a line, the second serial port carries only ours.  Markers "ipvs-gue-debug: ... begin/end"
# go to the kernel log so the host can attribute console complaints to a scenario.
. /guest/lib.sh
echo 7 > /proc/sys/kernel/printk   # every complaint (most are KERN_WARNING) reaches the console too

SCENARIOS=${SCENARIOS:-2 3 4}
CYCLES=${CYCLES:-5}
UPLOAD_SIZE=${UPLOAD_SIZE:-2M}
UPLOAD_REQUESTS=${UPLOAD_REQUESTS:-8}
UPLOAD_CONNECTIONS=${UPLOAD_CONNECTIONS:-2}
NS_ROUNDS=${NS_ROUNDS:-2}
NS_PER_ROUND=${NS_PER_ROUND:-5}
MOD=ipvs_gue
# What counts as a kernel complaint (extended regular expression, case-sensitive).
PAT='BUG:|WARNING:|KASAN|general protection|Oops|suspicious RCU usage|possible circular locking|possible recursive locking|inconsistent lock state|sleeping function called from invalid context|scheduling while atomic|UBSAN|kernel BUG|list_add corruption|list_del corruption|refcount_t|ODEBUG: .*object type|ODEBUG disabled|Kernel panic'

emit() { echo "$*"; echo "$*" > /dev/ttyS1; }
tap_ok()   { TAP_N=$((TAP_N + 1)); TAP_PASS=$((TAP_PASS + 1)); emit "ok $TAP_N - $*"; }
tap_fail() { TAP_N=$((TAP_N + 1)); TAP_FAIL=$((TAP_FAIL + 1)); emit "not ok $TAP_N - $*"; }
diag() { emit "# $*"; }
kmsg() { echo "ipvs-gue-debug: $*" > /dev/kmsg; }
has_scenario() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }
mod_loaded() { grep -q "^$MOD " /proc/modules; }
lockdep_armed() { awk '/debug_locks:/ {print $2; f = 1} END {if (!f) print "?"}' /proc/lockdep_stats 2>/dev/null || echo "?"; }

# CMD's exit status, or 124 if it still runs after SECS (it is left behind: a task stuck in the
# kernel cannot be killed, and the suite must still report).
bounded() { # SECS CMD...
  local secs=$1 pid st n=0
  shift
  "$@" &
  pid=$!
  while :; do
    st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ] || break
    n=$((n + 1))
    if [ "$n" -gt $((secs * 10)) ]; then diag "still running after ${secs}s: $*"; return 124; fi
    sleep 0.1
  done
  wait "$pid"
}

# Prints a complaint file as TAP diagnostics: the distinct complaint lines (with counts), then
# the first report from its first line on; about 40 lines in all.
report_complaints() { # FILE
  local first l
  grep -E "$PAT" "$1" | sed 's/^\[[ 0-9.]*\] //; s/ffff[0-9a-f]\{12\}/ADDR/g' | sort | uniq -c | sort -rn \
    | head -n 10 | while IFS= read -r l; do diag "   $l"; done
  first=$(grep -nE "$PAT" "$1" | head -n 1 | cut -d: -f1)
  [ -n "$first" ] || return 0
  diag "   first report:"
  sed -n "${first},\$p" "$1" | head -n 30 | while IFS= read -r l; do diag "   | $l"; done
}

# The kernel log since the last check (read and cleared) must hold no complaint, and lockdep must
# still be armed (any lockdep report, KASAN report or oops turns it off for good).
DM_N=0
dmesg_check() { # NAME
  local f dl nbad
  DM_N=$((DM_N + 1)); f=/tmp/dmesg-$DM_N.txt
  dmesg -c > "$f" 2>/dev/null
  cat "$f" >> /tmp/dmesg-all.txt
  dl=$(lockdep_armed)
  if grep -E "$PAT" "$f" > /tmp/dmesg-bad.txt; then
    nbad=$(wc -l < /tmp/dmesg-bad.txt)
    tap_fail "$1: kernel log clean ($nbad complaint lines; lockdep debug_locks $dl)"
    report_complaints "$f"
  elif [ "$dl" != 1 ]; then
    tap_fail "$1: lockdep still armed (debug_locks $dl, no complaint text in the log)"
  else
    tap_ok "$1: kernel log clean (no BUG/WARNING/KASAN/lockdep/RCU/ODEBUG complaint; lockdep armed)"
  fi
}

# ipvs-gue-ctl ARGS in NS ("-" = the initial netns); its errors in /tmp/cfg-put.err.
cfg_ctl() { # NS ARGS...
  local ns=$1
  shift
  if [ "$ns" = - ]; then ipvs-gue-ctl "$@" 2>/tmp/cfg-put.err
  else nsx "$ns" ipvs-gue-ctl "$@" 2>/tmp/cfg-put.err; fi
}
# Makes LINES (ipvs-gue-ctl -a arguments, printf %b escapes) NS's whole table: one table-replace.
cfg_restore() { # NS LINES
  printf '%b' "$2" > /tmp/cfg-put
  cfg_ctl "$1" -R < /tmp/cfg-put
}
# Packets the module encapsulated in NS, summed over its real servers (0 if no listing).
hook_packets() { # NS
  local v
  v=$(nsx "$1" awk '!/^#/ {p += $5} END {print p + 0}' /proc/net/ipvs_gue 2>/dev/null | tail -n 1)
  echo "${v:-0}"
}
# Waits up to SECS for NS's packet counter to reach > 0; prints the count.
wait_hook_packets() { # NS SECS
  local n=0 p=0
  while [ "$n" -lt $(($2 * 5)) ]; do
    p=$(hook_packets "$1")
    [ "$p" -gt 0 ] && break
    n=$((n + 1)); sleep 0.2
  done
  echo "$p"
}

# Uploads from NS to VIP:8080 until /tmp/stop-TAG exists; the running gue-traffic's pid is in
# /tmp/pid-TAG (traffic_stop kills it).  Runs and successes end up in /tmp/traffic-TAG.sum.
traffic_loop() { # NS VIP TAG SIZE REQUESTS CONNECTIONS TIMEOUT_MS
  local runs=0 ok=0 tpid
  while [ ! -e "/tmp/stop-$3" ]; do
    nsx "$1" gue-traffic run --connect "$(hostport "$2" 8080)" --sizes "$4" --requests "$5" \
      --connections "$6" --timeout-ms "$7" >/dev/null 2>>"/tmp/traffic-$3.err" &
    tpid=$!
    echo "$tpid" > "/tmp/pid-$3"
    wait "$tpid" && ok=$((ok + 1))
    runs=$((runs + 1))
    [ -e "/tmp/stop-$3" ] || [ "$ok" -gt 0 ] || [ "$runs" -lt 50 ] || break   # never spin forever
  done
  echo "$runs $ok" > "/tmp/traffic-$3.sum"
}
TRAFFIC_PID=
traffic_start() { # NS VIP TAG SIZE REQUESTS CONNECTIONS TIMEOUT_MS: the loop's pid -> TRAFFIC_PID
  rm -f "/tmp/stop-$3" "/tmp/pid-$3" "/tmp/traffic-$3.sum" "/tmp/traffic-$3.err"
  traffic_loop "$@" >/dev/null 2>&1 &
  TRAFFIC_PID=$!
}
# True once PID has exited (gone or a zombie), false if it still runs after SECS.
wait_gone() { # PID SECS
  local n=0 st
  while :; do
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ] || return 0
    n=$((n + 1)); [ "$n" -le $(($2 * 10)) ] || return 1
    sleep 0.1
  done
}
traffic_stop() { # LOOP_PID TAG
  touch "/tmp/stop-$2"
  [ -s "/tmp/pid-$2" ] && kill "$(cat "/tmp/pid-$2")" 2>/dev/null
  if wait_gone "$1" 30; then wait "$1" 2>/dev/null; else diag "upload loop $2 still running after 30 s"; fi
  true
}
traffic_summary() { # TAG: "R runs, K complete"
  if [ -s "/tmp/traffic-$1.sum" ]; then awk '{printf "%d runs, %d complete", $1, $2}' "/tmp/traffic-$1.sum"
  else echo "no summary"; fi
}

# ---------------------------------------------------------------------------------------------
# Scenario 1: the detectors are on, and live.
canary_boot() {
  local boot=/tmp/dmesg-boot.txt s missing=
  dmesg -c > "$boot" 2>/dev/null
  cat "$boot" >> /tmp/dmesg-all.txt
  tap_check "canary: KASAN initialised at boot ($(grep -o 'KernelAddressSanitizer initialized.*' "$boot" | head -n1))" \
    grep -q 'KernelAddressSanitizer initialized' "$boot"
  tap_check "canary: PROVE_RCU announced at boot ('RCU lockdep checking is enabled')" \
    grep -q 'RCU lockdep checking is enabled' "$boot"
  tap_check "canary: lockdep present and armed at boot (/proc/lockdep_stats debug_locks $(lockdep_armed))" \
    [ "$(lockdep_armed)" = 1 ]
  for s in __might_resched lockdep_rcu_suspicious debug_object_activate kasan_report report_bug lock_acquire; do
    grep -q " $s\$" /proc/kallsyms || missing="$missing $s"
  done
  tap_check "canary: detector entry points in kallsyms (__might_resched lockdep_rcu_suspicious debug_object_activate kasan_report report_bug lock_acquire)${missing:+ # missing:$missing}" \
    [ -z "$missing" ]
  if grep -E "$PAT" "$boot" > /tmp/dmesg-bad.txt; then
    tap_fail "boot: kernel log clean before any test ($(wc -l < /tmp/dmesg-bad.txt) complaint lines)"
    report_complaints "$boot"
  else
    tap_ok "boot: kernel log clean before any test"
  fi
}

# Runs the canary in MODE between markers; the log it produced is left in /tmp/canary-MODE.txt.
canary_run() { # MODE
  local f=/tmp/canary-$1.txt
  dmesg -c >> /tmp/dmesg-all.txt 2>/dev/null
  kmsg "canary begin ($1: complaints below are expected)"
  if [ -f "${CANARY:-}" ] && insmod "$CANARY" mode="$1"; then
    rmmod ipvs_gue_canary || diag "rmmod ipvs_gue_canary failed"
  else
    diag "canary module ${CANARY:-?} missing or insmod failed"
  fi
  kmsg "canary end"
  dmesg -c > "$f" 2>/dev/null
  cat "$f" >> /tmp/dmesg-all.txt
}
canary_expect() { # FILE DESCRIPTION ERE
  if grep -qE "$3" "$1"; then tap_ok "canary: $2"; else tap_fail "canary: $2 # detector silent"; fi
}

canary_early() {
  local f=/tmp/canary-early.txt
  canary_run early
  canary_expect "$f" "DEBUG_ATOMIC_SLEEP: might_sleep() with preemption off -> 'BUG: sleeping function called from invalid context'" \
    'BUG: sleeping function called from invalid context'
  canary_expect "$f" "PROVE_RCU: rcu_dereference() outside a read-side section -> 'suspicious RCU usage'" \
    'WARNING: suspicious RCU usage'
  canary_expect "$f" "DEBUG_OBJECTS_RCU_HEAD: double call_rcu() -> 'ODEBUG: activate active ... object type: rcu_head'" \
    'ODEBUG: activate active.*object type: rcu_head'
  canary_expect "$f" "CONFIG_BUG: WARN() -> 'WARNING: ... canary_warn'" 'WARNING: .*canary_warn'
  canary_expect "$f" "DEBUG_NET: DEBUG_NET_WARN_ON_ONCE() -> 'WARNING: ... canary_debug_net'" 'WARNING: .*canary_debug_net'
  tap_check "canary: lockdep still armed after the early canary (debug_locks $(lockdep_armed))" [ "$(lockdep_armed)" = 1 ]
  sleep 1   # might_sleep reports are rate-limited to one per second
}

canary_late() {
  local f=/tmp/canary-late.txt armed
  armed=$(lockdep_armed)
  canary_run late
  if [ "$armed" = 1 ]; then
    canary_expect "$f" "PROVE_LOCKING: AB-BA spinlock order -> 'possible circular locking dependency'" \
      'possible circular locking dependency detected'
  else
    tap_fail "canary: PROVE_LOCKING live at the end # lockdep was already off (debug_locks $armed): an earlier complaint disabled it"
  fi
  canary_expect "$f" "KASAN (end of run): read after kfree() -> 'BUG: KASAN: slab-use-after-free in canary_kasan'" \
    'BUG: KASAN: slab-use-after-free in canary_kasan'
}

# ---------------------------------------------------------------------------------------------
# Scenario 2: insmod, configuration writes (accepted and rejected), listing reads alongside.
CFG_OK=0 CFG_REJ=0 CFG_BAD=0
cfg_expect() { # NS ok|fail CMD ARGS... (CMD: cfg_ctl or cfg_restore)
  local ns=$1 want=$2 cmd=$3
  shift 3
  if "$cmd" "$ns" "$@"; then
    if [ "$want" = ok ]; then CFG_OK=$((CFG_OK + 1)); else CFG_BAD=$((CFG_BAD + 1)); diag "   accepted, expected rejection: $cmd $*"; fi
  else
    if [ "$want" = fail ]; then CFG_REJ=$((CFG_REJ + 1)); else CFG_BAD=$((CFG_BAD + 1)); diag "   rejected, expected success: $cmd $* ($(head -n1 /tmp/cfg-put.err))"; fi
  fi
}
cfg_series() { # NS
  local batch= i=1
  cfg_expect "$1" ok   cfg_ctl -a -r 10.9.0.1 --gue-port 5501
  cfg_expect "$1" ok   cfg_ctl -a -r fd09::1 --gue-port 6080 --csum remcsum --outer 10.9.0.9
  cfg_expect "$1" ok   cfg_ctl -e -r 10.9.0.1 --gue-port 5502 --csum udp
  cfg_expect "$1" ok   cfg_ctl -e -r fd09::1 --outer fd09::9 --csum none
  cfg_expect "$1" ok   cfg_ctl -e -r 10.9.0.1 --outer fd09::10
  cfg_expect "$1" fail cfg_ctl -a -r 10.9.0.1 --gue-port 5501
  cfg_expect "$1" fail cfg_ctl -d -r 10.9.0.77
  cfg_expect "$1" fail cfg_ctl -e -r 10.9.0.1
  cfg_expect "$1" ok   cfg_restore "-a -r 10.9.0.3 --gue-port 1\n-a -r 10.9.0.4 --gue-port 2 --csum udp\n"
  cfg_expect "$1" fail cfg_restore "-a -r 10.9.0.5 --gue-port 1\n-a -r 10.9.0.5 --gue-port 3\n"
  cfg_expect "$1" ok   cfg_ctl -d -r 10.9.0.3
  cfg_expect "$1" ok   cfg_ctl -C
  # 100 servers in one request, then a 101st: the table grows past a new table's 64 slots.
  while [ "$i" -le 100 ]; do batch="${batch}-a -r 10.9.1.$i --gue-port 5501\n"; i=$((i + 1)); done
  cfg_expect "$1" ok   cfg_restore "$batch"
  cfg_expect "$1" ok   cfg_ctl -a -r 10.9.2.1 --gue-port 5501
  cfg_expect "$1" ok   cfg_ctl -C
}
reader_loop() { # NS COUNT: reads the listing COUNT times
  local i=0
  while [ "$i" -lt "$2" ]; do
    if [ "$1" = - ]; then cat /proc/net/ipvs_gue; else nsx "$1" cat /proc/net/ipvs_gue; fi >/dev/null || return 1
    i=$((i + 1))
  done
}
scenario_config() {
  local t0 rpid rrc
  t0=$(now); kmsg "scenario 2 begin (configuration writes)"
  if ! mod_loaded; then tap_check "s2: insmod $(basename "$KO")" module_insert "$KO"; fi
  $IP netns add dbg-cfg
  reader_loop - 100 & rpid=$!
  cfg_series -
  cfg_series dbg-cfg
  wait "$rpid"; rrc=$?
  tap_check "s2: $((CFG_OK + CFG_REJ + CFG_BAD)) writes in init_net and a netns created after load: $CFG_OK accepted, $CFG_REJ rejected as expected, $CFG_BAD unexpected" \
    [ "$CFG_BAD" = 0 ]
  tap_check "s2: 100 listing reads alongside the writes (rc $rrc)" [ "$rrc" = 0 ]
  $IP netns del dbg-cfg
  diag "s2 took $(since "$t0") s"
  dmesg_check "s2 configuration writes"
}

# ---------------------------------------------------------------------------------------------
# Scenario 3: rmmod + insmod + reconfigure, CYCLES times, while uploads (IPv4 and IPv6 services,
# several connections each) run through the hook.  Uploads may break; the kernel must not complain.
# Configuration for cycle C: the outer family and checksum mode alternate, so every reload also
# exercises a different encapsulation.
s3_config() { # CYCLE
  local v4='-a -r 10.2.0.2 --gue-port 5501' v6='-a -r fd02::2 --gue-port 5501'
  case $(($1 % 3)) in
    0) printf '%s' "$v4 --csum none\n$v6 --csum udp\n" ;;
    1) printf '%s' "$v4 --csum udp --outer fd02::2\n$v6 --csum remcsum --outer 10.2.0.2\n" ;;
    2) printf '%s' "$v4 --csum remcsum\n$v6 --csum none --outer 10.2.0.2\n" ;;
  esac
}
scenario_unload() {
  local t0 c p4 p_before rmrc insrc cfgrc l4 l6 m tc trm tin=-
  t0=$(now); kmsg "scenario 3 begin (unload under traffic)"
  if ! mod_loaded; then tap_check "s3: insmod $(basename "$KO")" module_insert "$KO"; fi
  if ! topo_setup 1600; then tap_fail "s3: topology setup"; return; fi
  topo_wait_servers || true
  # IPVS DR services for both families, the module's GUE config for rs1 (cycle 0 shape).
  if ipvs_service_rust 4 10.2.0.2 nocsum 10.2.0.2 && nsx director ipvsadm -A -t "[$VIP6]:8080" -s rr \
     && nsx director ipvsadm -a -t "[$VIP6]:8080" -r "[fd02::2]:8080" -g \
     && cfg_ctl director -a -r fd02::2 --gue-port 5501 --csum udp; then
    tap_ok "s3: IPVS DR services $VIP4 and $VIP6 -> rs1, module configured for GUE to rs1"
  else
    tap_fail "s3: IPVS DR services + module configuration"; return
  fi
  traffic_start client "$VIP4" s3v4 "$UPLOAD_SIZE" "$UPLOAD_REQUESTS" "$UPLOAD_CONNECTIONS" 20000; l4=$TRAFFIC_PID
  traffic_start client "$VIP6" s3v6 "$UPLOAD_SIZE" "$UPLOAD_REQUESTS" "$UPLOAD_CONNECTIONS" 20000; l6=$TRAFFIC_PID
  p_before=$(wait_hook_packets director 20)
  c=1
  while [ "$c" -le "$CYCLES" ]; do
    # a few table replacements under traffic, then the unload while packets flow
    for m in udp remcsum none; do cfg_ctl director -e -r 10.2.0.2 --csum "$m" || true; done
    p_before=$(hook_packets director)
    tc=$(now)
    bounded 120 module_remove; rmrc=$?
    trm=$(since "$tc")
    sleep 1   # traffic continues by plain DR meanwhile
    insrc=1 cfgrc=1 p4=0
    if [ "$rmrc" = 0 ] && ! mod_loaded; then
      tc=$(now)
      module_insert "$KO"; insrc=$?
      tin=$(since "$tc")
      if [ "$insrc" = 0 ]; then
        cfg_restore director "$(s3_config "$c")"; cfgrc=$?
        p4=$(wait_hook_packets director 20)
      fi
    fi
    if [ "$p_before" -gt 0 ] && [ "$rmrc" = 0 ] && [ "$insrc" = 0 ] && [ "$cfgrc" = 0 ] && [ "$p4" -gt 0 ]; then
      tap_ok "s3 cycle $c/$CYCLES: $p_before packets through the hook, rmmod under traffic ok (${trm} s), insmod (${tin} s) + reconfigure ok, $p4 packets after reload"
    else
      tap_fail "s3 cycle $c/$CYCLES: packets before rmmod $p_before, rmmod rc $rmrc, insmod rc $insrc, config rc $cfgrc, packets after reload $p4"
      mod_loaded || break
    fi
    c=$((c + 1))
  done
  traffic_stop "$l4" s3v4; traffic_stop "$l6" s3v6
  diag "s3 uploads (not asserted): IPv4 $(traffic_summary s3v4); IPv6 $(traffic_summary s3v6)"
  tail -n 2 /tmp/traffic-s3v4.err 2>/dev/null | sed 's/^/#   ipv4 upload: /'
  ipvs_clear
  diag "s3 took $(since "$t0") s"
  dmesg_check "s3 unload under traffic"
}

# ---------------------------------------------------------------------------------------------
# Scenario 4: director namespaces created after load (IPVS DR + GUE config each), traffic from a
# shared client namespace through each, then deleted while the traffic flows; rounds of them.
#   ch-client  c<N> 10.100.N.1/24 fd64:N::1/64  --veth--  chd<N> eth-a 10.100.N.2 fd64:N::2
#   chd<N>     eth-b 10.101.N.1/24 fd65:N::1/64 --veth--  ch-rs d<N> 10.101.N.2 fd65:N::2
#   VIP of unit N: 10.102.N.10 / fd66:N::10 on chd<N> vip0 and on ch-rs lo (DSR)
churn_base() {
  local n
  for n in ch-client ch-rs; do
    $IP netns del "$n" 2>/dev/null; $IP netns add "$n" || return 1
    $IP -n "$n" link set lo up
    sysctl_ns "$n" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.default.accept_ra=0 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  done
  topo_real_server ch-rs
  n=0
  until nsx ch-rs sh -c 'cat /proc/net/tcp6 /proc/net/tcp' 2>/dev/null | grep -q ':1F90 .* 0A '; do
    n=$((n + 1)); [ "$n" -lt 50 ] || return 1; sleep 0.1
  done
}
# Every process costs a lot on a KASAN + lockdep + kmemleak guest under TCG: one `ip -batch` per
# namespace, one shell for the sysctls, one `ipvsadm -R`.
churn_unit() { # N
  local n=$1 d=chd$1 o4 o6
  $IP netns add "$d" || return 1
  printf '%s\n' "link set lo up" "link add c$n type veth peer name eth-a netns $d" > /tmp/ch-c1
  printf '%s\n' "link add eth-b type veth peer name d$n netns ch-rs" \
    "addr add 10.100.$n.2/24 dev eth-a" "addr add fd64:$n::2/64 dev eth-a nodad" \
    "addr add 10.101.$n.1/24 dev eth-b" "addr add fd65:$n::1/64 dev eth-b nodad" \
    "link add vip0 type dummy" "addr add 10.102.$n.10/32 dev vip0" "addr add fd66:$n::10/128 dev vip0 nodad" \
    "link set dev eth-a up" "link set dev eth-b up" "link set dev vip0 up" > /tmp/ch-d
  printf '%s\n' "addr add 10.100.$n.1/24 dev c$n" "addr add fd64:$n::1/64 dev c$n nodad" "link set dev c$n up" \
    "route add 10.102.$n.10/32 via 10.100.$n.2" "route add fd66:$n::10/128 via fd64:$n::2" > /tmp/ch-c2
  printf '%s\n' "addr add 10.101.$n.2/24 dev d$n" "addr add fd65:$n::2/64 dev d$n nodad" "link set dev d$n up" \
    "addr add 10.102.$n.10/32 dev lo" "addr add fd66:$n::10/128 dev lo nodad" \
    "route add 10.100.$n.0/24 via 10.101.$n.1" "route add fd64:$n::/64 via fd65:$n::1" > /tmp/ch-r
  $IP -n "$d" link set lo up || return 1
  $IP -n ch-client -batch /tmp/ch-c1 || return 1
  $IP -n "$d" -batch /tmp/ch-d || return 1
  nsx "$d" sh -c 'for k in ipv6/conf/all/accept_dad ipv6/conf/default/accept_dad ipv6/conf/default/accept_ra \
      ipv4/conf/all/rp_filter ipv4/conf/default/rp_filter ipv4/conf/eth-a/rp_filter ipv4/conf/eth-b/rp_filter \
      ipv4/conf/all/send_redirects; do echo 0 > /proc/sys/net/$k; done
    for k in ipv4/ip_forward ipv6/conf/all/forwarding ipv4/conf/eth-b/accept_local ipv4/vs/expire_nodest_conn; do
      echo 1 > /proc/sys/net/$k; done' || return 1
  $IP -n ch-client -batch /tmp/ch-c2 || return 1
  $IP -n ch-rs -batch /tmp/ch-r || return 1
  printf '%s\n' "-A -t 10.102.$n.10:8080 -s rr" "-a -t 10.102.$n.10:8080 -r 10.101.$n.2:8080 -g" \
    "-A -t [fd66:$n::10]:8080 -s rr" "-a -t [fd66:$n::10]:8080 -r [fd65:$n::2]:8080 -g" > /tmp/ch-ipvs
  nsx "$d" ipvsadm -R < /tmp/ch-ipvs || return 1
  # units 1, 2 (mod 4): outer in the service's family; 3, 0: crossed (v4 over v6, v6 over v4)
  case $((n % 4)) in 1|2) o4=; o6= ;; *) o4=" --outer fd65:$n::2"; o6=" --outer 10.101.$n.2" ;; esac
  cfg_restore "$d" "-a -r 10.101.$n.2 --gue-port 5501 --csum none$o4\n-a -r fd65:$n::2 --gue-port 5501 --csum udp$o6\n"
}
scenario_netns() {
  local t0 r=1 u k units pids ok pk line tgone gone n p rc vip rsa tr tsetup ttraffic
  t0=$(now); kmsg "scenario 4 begin (namespace churn with traffic)"
  if ! mod_loaded; then tap_check "s4: insmod $(basename "$KO")" module_insert "$KO"; fi
  if churn_base; then tap_ok "s4: shared client and real-server namespaces (created after load)"
  else tap_fail "s4: shared client and real-server namespaces"; return; fi
  u=1
  while [ "$r" -le "$NS_ROUNDS" ]; do
    units= pids= ok=1 line= tr=$(now)
    k=0
    while [ "$k" -lt "$NS_PER_ROUND" ]; do
      if churn_unit "$u"; then units="$units $u"
      else ok=0; line="$line chd$u setup failed;"; fi
      u=$((u + 1)); k=$((k + 1))
    done
    # one upload per director, to its IPv4 VIP in odd units and its IPv6 VIP in even ones
    for n in $units; do
      if [ $((n % 2)) = 1 ]; then vip=10.102.$n.10; else vip=fd66:$n::10; fi
      traffic_start ch-client "$vip" "u$n" 1M 50 1 10000; pids="$pids $TRAFFIC_PID:u$n"
    done
    tsetup=$(since "$tr"); tr=$(now)
    for n in $units; do
      pk=$(wait_hook_packets "chd$n" 20)
      if [ $((n % 2)) = 1 ]; then rsa=10.101.$n.2; else rsa=fd65:$n::2; fi
      cfg_ctl "chd$n" -e -r "$rsa" --csum remcsum || line="$line chd$n edit failed;"
      pk=$(hook_packets "chd$n")
      line="$line chd$n $pk pkts;"
      [ "$pk" -gt 0 ] || ok=0
    done
    ttraffic=$(since "$tr")
    # delete the directors while their uploads run; then end the uploads
    for n in $units; do $IP netns del "chd$n" || { ok=0; line="$line del chd$n failed;"; }; done
    sleep 0.5
    for p in $pids; do traffic_stop "${p%%:*}" "${p#*:}"; done
    # the namespaces really went: their veth peers vanish when cleanup_net has run
    tgone=$(now) gone=0 k=0
    while [ "$k" -lt 300 ]; do
      gone=1
      for n in $units; do $IP -n ch-client link show "c$n" >/dev/null 2>&1 && gone=0; done
      [ "$gone" = 1 ] && break
      k=$((k + 1)); sleep 0.1
    done
    [ "$gone" = 1 ] || { ok=0; line="$line veth peers still present after 30 s (netns not torn down);"; }
    if [ "$ok" = 1 ]; then
      tap_ok "s4 round $r/$NS_ROUNDS: director netns created after load (${tsetup} s), traffic through each hook (${ttraffic} s), deleted under traffic, torn down in $(since "$tgone") s:$line"
    else
      tap_fail "s4 round $r/$NS_ROUNDS:$line"
    fi
    r=$((r + 1))
  done
  # everything else goes too (servers keep a namespace alive: end them), then the module
  for n in ch-client ch-rs $TOPO_NS; do
    for p in $($IP netns pids "$n" 2>/dev/null); do kill "$p" 2>/dev/null; done
    $IP netns del "$n" 2>/dev/null
  done
  sleep 2
  bounded 90 module_remove; rc=$?
  tap_check "s4: rmmod $MOD after the churn (rc $rc)" [ "$rc" = 0 ]
  diag "s4 took $(since "$t0") s"
  dmesg_check "s4 namespace churn with traffic"
}

# ---------------------------------------------------------------------------------------------
# Leaks (CONFIG_DEBUG_KMEMLEAK, scans only on request): a scan + clear before the module is loaded
# greys whatever boot left; after the final rmmod, new unreferenced objects are leaks of the run.
KMEMLEAK=/sys/kernel/debug/kmemleak
# The early canary leaked 16 objects starting with "ipvs-gue-canary-": the baseline scan must
# report them (kmemleak lists the slab object size, not the requested one; the hex dump shows
# the text).
kmemleak_baseline() {
  if [ ! -w "$KMEMLEAK" ]; then
    if [ "${KMEMLEAK_EXPECTED:-0}" = 1 ]; then tap_fail "canary: kmemleak present ($KMEMLEAK) # missing"
    else diag "kmemleak not in this kernel: no leak check"; fi
    return
  fi
  sleep 5   # kmemleak ignores objects younger than 5 s
  # a scan only checksums an object it sees for the first time; the second one reports it
  echo scan > "$KMEMLEAK"; echo scan > "$KMEMLEAK"
  cat "$KMEMLEAK" > /tmp/kmemleak-canary.txt
  if grep -q 'ipvs-gue-canary-' /tmp/kmemleak-canary.txt; then
    tap_ok "canary: DEBUG_KMEMLEAK: 16 dropped kmalloc()s -> $(grep -c 'ipvs-gue-canary-' /tmp/kmemleak-canary.txt) reported as 'unreferenced object' (hex dump 'ipvs-gue-canary-')"
  else
    tap_fail "canary: DEBUG_KMEMLEAK: 16 dropped kmalloc()s are reported # detector silent"
    diag "   $(grep -c '^unreferenced object' /tmp/kmemleak-canary.txt) unreferenced objects listed; kernel log: $({ cat /tmp/dmesg-all.txt; dmesg; } | grep -i kmemleak | tail -n 2 | tr '\n' ' ')"
  fi
  echo clear > "$KMEMLEAK"
}
kmemleak_check() {
  local t0 nleak l
  [ -w "$KMEMLEAK" ] || return 0
  t0=$(now)
  sleep 6   # kmemleak ignores objects younger than 5 s
  echo scan > "$KMEMLEAK"; echo scan > "$KMEMLEAK"
  cat "$KMEMLEAK" > /tmp/kmemleak.txt
  nleak=$(grep -c '^unreferenced object' /tmp/kmemleak.txt)
  if [ "$nleak" = 0 ]; then
    tap_ok "leaks: kmemleak finds no unreferenced object after the final rmmod (scan $(since "$t0") s)"
  else
    tap_fail "leaks: kmemleak finds $nleak unreferenced objects after the final rmmod"
    head -n 30 /tmp/kmemleak.txt | while IFS= read -r l; do diag "   | $l"; done
  fi
  dmesg -c >> /tmp/dmesg-all.txt 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
T0=$(now)
diag "debug suite: scenarios '$SCENARIOS', $CYCLES reload cycles, $NS_ROUNDS x $NS_PER_ROUND churn namespaces; $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpus, $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) MiB"
kmsg "scenario 1 begin (detector canary)"
canary_boot
canary_early
kmemleak_baseline
dmesg -c >> /tmp/dmesg-all.txt 2>/dev/null
if [ -z "${KO:-}" ] || [ ! -f "$KO" ]; then
  tap_fail "module under test present in the guest # KO='${KO:-}'"
else
  has_scenario 2 && scenario_config
  has_scenario 3 && scenario_unload
  has_scenario 4 && scenario_netns
  if mod_loaded; then
    kmsg "final rmmod begin"
    bounded 60 module_remove; rc=$?
    tap_check "final rmmod $MOD (rc $rc)" [ "$rc" = 0 ]
    dmesg_check "final rmmod"
  fi
  mod_loaded || kmemleak_check
fi
kmsg "scenario 5 begin (end-of-run canary)"
canary_late
diag "guest run took $(since "$T0") s"
tap_done
