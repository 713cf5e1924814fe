# Guest side of tests/config-stress.sh (busybox sh): configuration stress of the generic netlink
# family against a model, and who may configure which namespace.
#   1. `gue-traffic config-stress`: WRITERS threads (a netlink socket each), WRITES requests in all
#      against one fresh namespace, every answer (errno, extack message) and the table checked
#      against the writers' models (0 mismatches), every kind of refusal seen; a self-test run
#      with --skip-model-update must report a mismatch.
#   2. Permissions, over netlink (ipvs-gue-ctl): without CAP_NET_ADMIN over the namespace's
#      owning user namespace (unshare -U, unshare -Ur, a non-root uid) add/del/flush are refused
#      with EPERM and the table is unchanged; reading (netlink dump, /proc/net/ipvs_gue) needs no
#      privilege; the owner of a new user+net namespace (unshare -Urn) configures its own
#      namespace, not the initial one, and cannot enter the initial one; no namespace sees
#      another's entries.
#   3. The kernel log is clean afterwards (and lockdep still armed on a debug kernel; /init
#      runs the kmemleak scan).
# Env: KO (module, guest path), WRITERS (4), WRITES (10000), SEED (1), STRESS_TIMEOUT (250 s),
#      SELFTEST_SKIP (25: the accepted change the self-test's model skips).
. /guest/lib.sh
WRITERS=${WRITERS:-4}
WRITES=${WRITES:-10000}
SEED=${SEED:-1}
STRESS_TIMEOUT=${STRESS_TIMEOUT:-250}
SELFTEST_SKIP=${SELFTEST_SKIP:-25}
PROC=/proc/net/ipvs_gue
CTL=ipvs-gue-ctl
# Kernel complaints (as tests/guest/debug.sh).
PAT='BUG:|WARNING:|KASAN|general protection|Oops|suspicious RCU usage|possible circular locking|possible recursive locking|inconsistent lock state|sleeping function called from invalid context|scheduling while atomic|UBSAN|kernel BUG|list_add corruption|list_del corruption|refcount_t|ODEBUG: .*object type|ODEBUG disabled|Kernel panic'

# TAP to the console and to /dev/ttyS1 (results.txt): kernel messages on the console can split a
# line, the second serial port carries only ours.
emit() { echo "$*"; echo "$*" > /dev/ttyS1; }
tap_ok()   { TAP_N=$((TAP_N + 1)); TAP_PASS=$((TAP_PASS + 1)); emit "ok $TAP_N - $*"; }
tap_fail() { TAP_N=$((TAP_N + 1)); TAP_FAIL=$((TAP_FAIL + 1)); emit "not ok $TAP_N - $*"; }
diag() { emit "# $*"; }
diag_file() { # FILE [MAX_LINES]
  local l
  head -n "${2:-20}" "$1" | while IFS= read -r l; do diag "  $l"; done
}
summary_field() { # FILE KEY
  sed -n 's/^config-stress summary //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# Kernel log since the last call (read and cleared) into FILE; TAP line NAME for its cleanliness.
DM_N=0
dmesg_take() { dmesg -c > "$1" 2>/dev/null; cat "$1" >> /tmp/dmesg-all.txt; }
dmesg_check() { # NAME
  local f=/tmp/cs-dmesg-$DM_N.txt dl first
  DM_N=$((DM_N + 1))
  dmesg_take "$f"
  dl=$(awk '/debug_locks:/ {print $2}' /proc/lockdep_stats 2>/dev/null)
  if grep -E "$PAT" "$f" > /tmp/cs-bad.txt; then
    tap_fail "$1: kernel log clean ($(wc -l < /tmp/cs-bad.txt) complaint lines)"
    diag_file /tmp/cs-bad.txt 10
    first=$(grep -nE "$PAT" "$f" | head -n 1 | cut -d: -f1)
    [ -z "$first" ] || { diag "  first report:"; sed -n "${first},\$p" "$f" | head -n 30 > /tmp/cs-first.txt; diag_file /tmp/cs-first.txt 30; }
  elif [ -n "$dl" ] && [ "$dl" != 1 ]; then
    tap_fail "$1: lockdep still armed (debug_locks $dl)"
  else
    tap_ok "$1: kernel log clean (no BUG/WARNING/KASAN/lockdep/RCU complaint${dl:+; lockdep armed})"
  fi
}

in_ns() { # NS ("-" = initial) CMD...
  local ns=$1
  shift
  if [ "$ns" = - ]; then "$@"; else nsx "$ns" "$@"; fi
}
listing() { in_ns "$1" cat "$PROC"; }
rows() { listing "$1" | grep -v '^#'; }
# The table as ipvs-gue-ctl -S lines (a netlink dump), sorted.
saved() { in_ns "$1" $CTL -S | sort; }
ctl() { # NS ARGS...: ipvs-gue-ctl in NS as root; a failure is a failed check
  local ns=$1
  shift
  in_ns "$ns" $CTL "$@" 2>/tmp/cs-ctl.err || tap_fail "perm: root: ipvs-gue-ctl $* in namespace $ns ($(head -n 1 /tmp/cs-ctl.err))"
}

# ---------------------------------------------------------------------------------------------
mod=$(basename "${KO:-ipvs_gue.ko}" .ko)
if [ -n "${KO:-}" ] && [ -f "$KO" ] && module_insert "$KO"; then
  tap_ok "insmod $(basename "$KO")"; mod=${MODULE_NAME:-$mod}
else
  tap_fail "insmod ${KO:-module} # module missing or insmod failed"
  tap_done; exit 1
fi
[ -e "$PROC" ] || tap_fail "initial namespace has $PROC"
if ! gue-traffic config-stress --help 2>/dev/null | grep -q config-stress; then
  tap_fail "gue-traffic has the config-stress subcommand # rebuild the tools (scripts/build-tools)"
fi

# 1. Stress against the model -----------------------------------------------------------------
$IP netns add cs-stress
dmesg_check "boot and insmod"
t0=$(now)
timeout "$STRESS_TIMEOUT" "$IP" netns exec cs-stress gue-traffic config-stress --writers "$WRITERS" \
  --writes "$WRITES" --seed "$SEED" > /tmp/cs.out 2> /tmp/cs.err
rc=$?
el=$(since "$t0")
dmesg_take /tmp/cs-stress-dmesg.txt
while IFS= read -r l; do case "$l" in "config-stress: "*) diag "$l" ;; esac; done < /tmp/cs.out
w=$(summary_field /tmp/cs.out writes); mm=$(summary_field /tmp/cs.out mismatches)
acc=$(summary_field /tmp/cs.out accepted); rej=$(summary_field /tmp/cs.out rejected)
secs=$(summary_field /tmp/cs.out seconds)
errs="EINVAL $(summary_field /tmp/cs.out einval), ERANGE $(summary_field /tmp/cs.out erange), EEXIST $(summary_field /tmp/cs.out eexist), ENOENT $(summary_field /tmp/cs.out enoent), ENOSPC $(summary_field /tmp/cs.out enospc), EPERM $(summary_field /tmp/cs.out eperm), other $(summary_field /tmp/cs.out other)"
if [ "$rc" = 0 ] && [ "$w" = "$WRITES" ] && [ "$mm" = 0 ]; then
  tap_ok "config-stress: $w netlink writes by $WRITERS writers match the model (accepted $acc, rejected $rej: $errs; mismatches 0; ${secs}s)"
else
  case "$rc" in 124|143) why="not finished after ${STRESS_TIMEOUT}s: lower --writes" ;; *) why="rc $rc after ${el}s" ;; esac
  tap_fail "config-stress: $WRITES netlink writes by $WRITERS writers match the model ($why; writes ${w:-?}, mismatches ${mm:-?})"
  diag_file /tmp/cs.err 40
fi
# Every kind of answer came up (a generator that stopped making some would pass unnoticed).
missing=
for k in accepted einval erange eexist enoent; do
  [ "$(summary_field /tmp/cs.out $k)" -gt 0 ] 2>/dev/null || missing="$missing $k"
done
if [ -z "$missing" ]; then
  tap_ok "config-stress: every kind of answer seen (accepted, EINVAL, ERANGE, EEXIST, ENOENT)"
else
  tap_fail "config-stress: every kind of answer seen (none of:$missing)"
fi
# Rows left by the stress stay in their namespace (checked below); the tool's final check
# compared the whole table with the models.
rows cs-stress > /tmp/cs-stress-rows.txt
dmesg_check "config-stress"

# Self-test: a model that skips one update must be caught.
$IP netns add cs-self
timeout 90 "$IP" netns exec cs-self gue-traffic config-stress --writers 2 --writes 400 --rounds 2 \
  --seed 7 --skip-model-update "$SELFTEST_SKIP" > /tmp/cs-self.out 2> /tmp/cs-self.err
rc=$?
smm=$(summary_field /tmp/cs-self.out mismatches)
if [ "$rc" = 1 ] && [ "${smm:-0}" -ge 1 ] && grep -q '^MISMATCH 1 ' /tmp/cs-self.err; then
  tap_ok "config-stress self-test: skipping model update $SELFTEST_SKIP is reported (exit 1, $smm mismatch)"
else
  tap_fail "config-stress self-test: skipping model update $SELFTEST_SKIP is reported (rc $rc, mismatches ${smm:-?})"
fi
grep -A3 '^MISMATCH 1 ' /tmp/cs-self.err > /tmp/cs-self-first.txt; diag_file /tmp/cs-self-first.txt 4
$IP netns del cs-self
dmesg_take /tmp/cs-self-dmesg.txt

diag "stress and self-test done $(now) s after boot"

# 2. Permissions ------------------------------------------------------------------------------
$IP netns add cs-perm-a
$IP netns add cs-perm-b
ctl cs-perm-a -a -r 10.61.0.1 --gue-port 1001
ctl cs-perm-a -a -r fd61::1 --gue-port 1002 --csum udp
ctl cs-perm-b -a -r 10.62.0.1 --gue-port 2001 --outer fd62::9
ctl - -a -r 10.60.0.1 --gue-port 3001 --csum remcsum
saved cs-perm-a > /tmp/cs-a0.txt; saved cs-perm-b > /tmp/cs-b0.txt; saved - > /tmp/cs-i0.txt
listing cs-perm-a > /tmp/cs-a0-proc.txt

# NAME NS CMD...: ipvs-gue-ctl, run by CMD in NS ("-" = the initial one), adds, deletes and
# flushes; each must be refused with EPERM ("Operation not permitted") and leave NS's table as it
# was.
perm_refused() {
  local name=$1 ns=$2 c bad='' before=/tmp/cs-perm-before.txt
  shift 2
  saved "$ns" > "$before"
  for c in '-a -r 10.61.0.99 --gue-port 9' '-d -r 10.61.0.1' '-C'; do
    # shellcheck disable=SC2086 # $c: the options, split on purpose
    if in_ns "$ns" "$@" $CTL $c 2>/tmp/cs-perm.err; then
      bad="$bad '$c' accepted;"
    else
      grep -q 'Operation not permitted' /tmp/cs-perm.err || bad="$bad '$c': $(head -n 1 /tmp/cs-perm.err);"
    fi
  done
  saved "$ns" > /tmp/cs-perm-after.txt
  [ -s "$before" ] || bad="$bad no table to compare;"
  cmp -s "$before" /tmp/cs-perm-after.txt || bad="$bad table changed;"
  if [ -z "$bad" ]; then tap_ok "perm: $name: add/del/flush refused (EPERM), table unchanged"
  else tap_fail "perm: $name: add/del/flush refused (EPERM), table unchanged:$bad"; fi
}
perm_refused "new user namespace without a mapping (unshare -U)" cs-perm-a unshare -U
perm_refused "root of a new user namespace (unshare -Ur)" cs-perm-a unshare -Ur
perm_refused "initial namespace, root of a new user namespace (unshare -Ur)" - unshare -Ur
grep -q '^nobody:' /etc/passwd || echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >> /etc/passwd
# "--": busybox su would take the tool's options for its own.
perm_refused "non-root uid 65534" cs-perm-b su -s /bin/sh nobody -c 'exec "$0" "$@"' --
# Reading needs no privilege: the dump and the proc listing.
if nsx cs-perm-a unshare -U $CTL -S 2>&1 | sort > /tmp/cs-ro.txt && cmp -s /tmp/cs-ro.txt /tmp/cs-a0.txt; then
  tap_ok "perm: an unprivileged reader (unshare -U) dumps the same table over netlink"
else
  tap_fail "perm: an unprivileged reader (unshare -U) dumps the same table over netlink"; diag_file /tmp/cs-ro.txt 5
fi
if nsx cs-perm-a unshare -U cat $PROC > /tmp/cs-ro.txt 2>&1 && cmp -s /tmp/cs-ro.txt /tmp/cs-a0-proc.txt; then
  tap_ok "perm: an unprivileged reader (unshare -U) sees the same $PROC listing"
else
  tap_fail "perm: an unprivileged reader (unshare -U) sees the same $PROC listing"; diag_file /tmp/cs-ro.txt 5
fi

# The owner of a new user+net namespace configures it, and only it.
rm -f /tmp/cs-u.ready /tmp/cs-u.go /tmp/cs-u.done /tmp/cs-u.log
cat > /tmp/cs-userns.sh <<'EOF'
C=ipvs-gue-ctl
say() { echo "$*" >> /tmp/cs-u.log; }
c() { $C "$@" 2>/tmp/cs-u.err; }
e() { head -n 1 /tmp/cs-u.err; }
addrs() { $C -S | sed 's/^-a -r \([^ ]*\) .*/\1/' | sort | tr '\n' ' '; }
[ -e /proc/net/ipvs_gue ] && say "exists yes" || say "exists no"
say "rows-before $($C -S | wc -l)"
c -a -r 10.63.0.1 --gue-port 4001 && c -a -r fd63::1 --gue-port 4002 --csum remcsum --outer 10.63.0.9 \
  && say "add ok" || say "add fail $(e)"
c -a -r 10.63.0.1 --gue-port 4001 && say "dup ok" || say "dup fail $(e)"
c -d -r 10.63.0.77 && say "del-missing ok" || say "del-missing fail $(e)"
c -e -r 10.63.0.1 --csum udp && say "edit ok" || say "edit fail $(e)"
$C -S | grep -qx -- '-a -r 10.63.0.1 --gue-port 4001 --csum udp --outer 10.63.0.1 --flowlabel zero' && say "row ok" || say "row missing"
nsenter -t 1 -n true 2>/tmp/cs-u.err && say "setns ok" || say "setns fail $(e)"
say "own-rows $(addrs)"
touch /tmp/cs-u.ready
i=0; while [ ! -e /tmp/cs-u.go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
c -C && say "flush ok" || say "flush fail $(e)"
say "after-flush $($C -S | wc -l)"
touch /tmp/cs-u.done
EOF
unshare -Urn sh /tmp/cs-userns.sh &
upid=$!
i=0; while [ ! -e /tmp/cs-u.ready ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
ulog() { sed -n "s/^$1 //p" /tmp/cs-u.log | head -n 1; }
tap_check "perm: unshare -Urn: the new namespace has $PROC and an empty table ($(ulog exists), $(ulog rows-before) servers)" \
  [ "$(ulog exists)" = yes -a "$(ulog rows-before)" = 0 ]
tap_check "perm: unshare -Urn: its owner adds, edits ($(ulog add); $(ulog edit); $(ulog row))" \
  [ "$(ulog add)" = ok -a "$(ulog edit)" = ok -a "$(ulog row)" = ok ]
case "$(ulog dup)|$(ulog del-missing)" in
  "fail"*"File exists"*"|fail"*"No such file"*) tap_ok "perm: unshare -Urn: table errors as usual (duplicate: EEXIST, missing: ENOENT)" ;;
  *) tap_fail "perm: unshare -Urn: table errors as usual (duplicate: $(ulog dup); missing: $(ulog del-missing))" ;;
esac
case "$(ulog setns)" in
  "fail"*) tap_ok "perm: unshare -Urn: entering the initial netns is refused ($(ulog setns | sed 's/^fail //'))" ;;
  *) tap_fail "perm: unshare -Urn: entering the initial netns is refused (got: $(ulog setns))" ;;
esac
# Isolation: each namespace lists exactly its own entries.
if [ -r "/proc/$upid/net/ipvs_gue" ]; then
  grep -v '^#' "/proc/$upid/net/ipvs_gue" | cut -d' ' -f1 | sort | tr '\n' ' ' > /tmp/cs-u-rows.txt
else
  echo "(unreadable)" > /tmp/cs-u-rows.txt
fi
saved - > /tmp/cs-i1.txt; saved cs-perm-a > /tmp/cs-a2.txt; saved cs-perm-b > /tmp/cs-b2.txt
addrs() { sed 's/^-a -r \([^ ]*\) .*/\1/' "$1" | sort | tr '\n' ' '; }
iso=
[ "$(addrs /tmp/cs-i1.txt)" = "10.60.0.1 " ] || iso="$iso initial: $(addrs /tmp/cs-i1.txt);"
[ "$(addrs /tmp/cs-a2.txt)" = "10.61.0.1 fd61::1 " ] || iso="$iso A: $(addrs /tmp/cs-a2.txt);"
[ "$(addrs /tmp/cs-b2.txt)" = "10.62.0.1 " ] || iso="$iso B: $(addrs /tmp/cs-b2.txt);"
[ "$(cat /tmp/cs-u-rows.txt)" = "10.63.0.1 fd63::1 " ] || iso="$iso userns (outside view): $(cat /tmp/cs-u-rows.txt);"
[ "$(ulog own-rows)" = "10.63.0.1 fd63::1 " ] || iso="$iso userns (own view): $(ulog own-rows);"
nstress=$(wc -l < /tmp/cs-stress-rows.txt)
if grep -vE '^(10\.1(0[1-9]|1[0-6])\.|fd0e:|::ffff:10\.1(0[1-9]|1[0-6])\.)' /tmp/cs-stress-rows.txt > /tmp/cs-odd.txt; then
  iso="$iso stress namespace has foreign rows: $(head -n 3 /tmp/cs-odd.txt | cut -d' ' -f1 | tr '\n' ' ');"
fi
if [ -z "$iso" ]; then
  tap_ok "perm: each namespace lists only its own entries (initial, A, B, unshare -Urn, stress with $nstress rows)"
else
  tap_fail "perm: each namespace lists only its own entries:$iso"
fi
tap_check "perm: the initial namespace's table is unchanged by the refused requests" cmp -s /tmp/cs-i0.txt /tmp/cs-i1.txt
# The owner's flush empties its own namespace only.
touch /tmp/cs-u.go
wait "$upid"
saved - > /tmp/cs-i2.txt
name="perm: unshare -Urn: its owner's flush ($(ulog flush); $(ulog after-flush) servers left) leaves the initial namespace's table as it was"
if [ "$(ulog flush)" = ok ] && [ "$(ulog after-flush)" = 0 ] && cmp -s /tmp/cs-i0.txt /tmp/cs-i2.txt; then
  tap_ok "$name"
else
  tap_fail "$name"; diag_file /tmp/cs-i2.txt 5
fi
ctl - -d -r 10.60.0.1
rows - > /tmp/cs-i3.txt
tap_check "perm: initial namespace empty again" [ ! -s /tmp/cs-i3.txt ]
for ns in cs-perm-a cs-perm-b cs-stress; do $IP netns del "$ns"; done
sleep 1
dmesg_check "permissions"
diag "permission checks done $(now) s after boot"

# 3. Unload, kernel log (kmemleak: qemu/guest/init scans after every run) ---------------------------------------------------------
tap_check "rmmod $mod" module_remove
sleep 1
dmesg_check "after rmmod"
tap_done
