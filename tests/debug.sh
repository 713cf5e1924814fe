#!/usr/bin/env bash
# Debug-kernel suite: ipvs_gue.ko on a guest kernel with KASAN, lockdep (PROVE_LOCKING), PROVE_RCU,
# DEBUG_ATOMIC_SLEEP, DEBUG_OBJECTS_RCU_HEAD, DEBUG_NET and CONFIG_BUG, under configuration
# writes, rmmod/insmod under traffic and namespace churn with traffic.  Any kernel complaint
# fails.  A throw-away canary module trips every detector on purpose, so a silent detector fails
# too.  KTAP, ending with "N passed, M failed"; exit 1 on any failure.  docs/reliability.md.
#   tests/debug.sh [options] [MODULE.ko]
#     MODULE.ko           module under test, built against the debug kernel (default: build it,
#                         `scripts/build-module --kernel debug`; or env IPVS_GUE_DEBUG_KO)
#     --scenarios LIST    guest scenarios, of "2 3 4" (default all; the canaries always run):
#                         2 config writes, 3 unload under traffic, 4 namespace churn with traffic
#     --cycles N          scenario 3 rmmod/insmod/reconfigure cycles (default 5)
#     --ns-rounds N       scenario 4 rounds (default 2)
#     --ns-per-round N    scenario 4 director namespaces per round (default 5)
#     --timeout SECS      hard limit for the VM (default 900)
#     --out DIR           console.log, results.txt, canary build (default target/debug-suite)
#     -h, --help
#   Env: IPVS_GUE_DEBUG_KDIR (debug kernel build dir; else the one IPVS_GUE_BZIMAGE lies in; else
#   `scripts/build-kernel debug`, or the newest finished one while another kernel build runs),
#   IPVS_GUE_MEM (guest memory, default 1G), IPVS_GUE_CMDLINE (appended to the kernel command line).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

ko=${IPVS_GUE_DEBUG_KO:-}
scenarios="2 3 4"
cycles=5 ns_rounds=2 ns_per_round=5
tmo=900
out="$TOP/target/debug-suite"  # (target/debug is cargo's)
while [ $# -gt 0 ]; do
  case "$1" in
    --scenarios) need_value "$1" $#; scenarios=$2; shift 2 ;;
    --cycles) need_value "$1" $#; cycles=$2; shift 2 ;;
    --ns-rounds) need_value "$1" $#; ns_rounds=$2; shift 2 ;;
    --ns-per-round) need_value "$1" $#; ns_per_round=$2; shift 2 ;;
    --timeout) need_value "$1" $#; tmo=$2; shift 2 ;;
    --out) need_value "$1" $#; out=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) usage_error "unknown option $1" ;;
    *) [ -z "${ko_arg:-}" ] || usage_error "more than one module given"
       ko_arg=$1; ko=$1; shift ;;
  esac
done
need_number --cycles "$cycles"; need_number --ns-rounds "$ns_rounds"
need_number --ns-per-round "$ns_per_round"; need_number --timeout "$tmo"
# scenario 4 numbers its director namespaces' subnets 10.10x.N.0/24
[ $((ns_rounds * ns_per_round)) -le 250 ] || usage_error "--ns-rounds x --ns-per-round: at most 250 namespaces"
for s in $scenarios; do
  case "$s" in 2|3|4) ;; *) usage_error "unknown scenario '$s' (2 3 4)" ;; esac
done

# The debug kernel build directory: scripts/test passes its image as IPVS_GUE_BZIMAGE.
debug_kdir() {
  if [ -n "${IPVS_GUE_DEBUG_KDIR:-}" ]; then echo "$IPVS_GUE_DEBUG_KDIR"; return; fi
  if [ -n "${IPVS_GUE_BZIMAGE:-}" ] && [ -f "${IPVS_GUE_BZIMAGE%/arch/x86/boot/bzImage}/.config" ]; then
    echo "${IPVS_GUE_BZIMAGE%/arch/x86/boot/bzImage}"; return
  fi
  kernel_dir debug
}

# The canary: a C module that trips each detector once (see tests/guest/debug.sh for what the
# guest expects to see).  mode=early keeps lockdep armed; mode=late switches it off (lockdep and
# KASAN reports do), so it runs at the very end.
write_canary() { # DIR
  mkdir -p "$1"
  echo 'obj-m := ipvs_gue_canary.o' > "$1/Kbuild"
  cat > "$1/ipvs_gue_canary.c" <<'EOF'
// SPDX-License-Identifier: GPL-2.0
/* Detector canary for tests/debug.sh: trips each debug detector once, on purpose. */
#include <linux/bug.h>
#include <linux/module.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <net/net_debug.h>

static char *mode = "early";
module_param(mode, charp, 0444);
MODULE_PARM_DESC(mode, "early: might_sleep, RCU, ODEBUG, WARN, DEBUG_NET, kmemleak; late: lockdep, KASAN");

struct canary_obj {
	struct rcu_head rcu;
	int v;
};
static int canary_val = 1;
static int __rcu *canary_ptr;
static DEFINE_SPINLOCK(canary_lock_a);
static DEFINE_SPINLOCK(canary_lock_b);

static void canary_free(struct rcu_head *h)
{
	kfree(container_of(h, struct canary_obj, rcu));
}

/* DEBUG_ATOMIC_SLEEP: "BUG: sleeping function called from invalid context" */
static noinline void canary_might_sleep(void)
{
	preempt_disable();
	might_sleep();
	preempt_enable();
}

/* PROVE_RCU: "suspicious RCU usage" */
static noinline void canary_rcu(void)
{
	int *p;

	RCU_INIT_POINTER(canary_ptr, &canary_val);
	p = rcu_dereference(canary_ptr);
	pr_info("ipvs_gue_canary: rcu value %d\n", *p);
}

/* DEBUG_OBJECTS_RCU_HEAD: "ODEBUG: activate active ... object type: rcu_head".  The kernel
 * turns the queued callback into a no-op instead of queueing it twice, so free it here once
 * rcu_barrier() has run it (no kmemleak report from the canary). */
static noinline void canary_double_call_rcu(void)
{
	struct canary_obj *o = kzalloc(sizeof(*o), GFP_KERNEL);

	if (!o)
		return;
	call_rcu(&o->rcu, canary_free);
	call_rcu(&o->rcu, canary_free);
	rcu_barrier();
	kfree(o);
}

/* CONFIG_BUG: "WARNING: ... canary_warn" */
static noinline void canary_warn(void)
{
	WARN(1, "ipvs_gue_canary: WARN() prints (CONFIG_BUG)\n");
}

/* DEBUG_NET: "WARNING: ... canary_debug_net" (a no-op without CONFIG_DEBUG_NET) */
static noinline void canary_debug_net(void)
{
	DEBUG_NET_WARN_ON_ONCE(1);
}

/* DEBUG_KMEMLEAK: objects nobody points to, starting with "ipvs-gue-canary-leak" (kmemleak's hex
 * dump shows it).  Several: a stale copy of the last pointer may survive in a scanned stack. */
static char *canary_leak_ptr;
static noinline void canary_leak(void)
{
	int i;

	for (i = 0; i < 16; i++) {
		char *p = kmalloc(64, GFP_KERNEL);

		if (p)
			strscpy(p, "ipvs-gue-canary-leak", 64);
		WRITE_ONCE(canary_leak_ptr, p);
	}
	WRITE_ONCE(canary_leak_ptr, NULL);
}

/* PROVE_LOCKING: "possible circular locking dependency detected" (sequential AB, BA) */
static noinline void canary_lockdep(void)
{
	spin_lock(&canary_lock_a);
	spin_lock(&canary_lock_b);
	spin_unlock(&canary_lock_b);
	spin_unlock(&canary_lock_a);
	spin_lock(&canary_lock_b);
	spin_lock(&canary_lock_a);
	spin_unlock(&canary_lock_a);
	spin_unlock(&canary_lock_b);
}

/* KASAN: "BUG: KASAN: slab-use-after-free in canary_kasan" */
static noinline void canary_kasan(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return;
	kfree(p);
	pr_info("ipvs_gue_canary: read after free: %d\n", READ_ONCE(p[8]));
}

static int __init canary_init(void)
{
	if (!strcmp(mode, "late")) {
		canary_lockdep();
		canary_kasan();
	} else {
		canary_might_sleep();
		canary_rcu();
		canary_double_call_rcu();
		canary_warn();
		canary_debug_net();
		canary_leak();
	}
	pr_info("ipvs_gue_canary: mode %s done\n", mode);
	return 0;
}

static void __exit canary_exit(void)
{
	rcu_barrier();
}

module_init(canary_init);
module_exit(canary_exit);
MODULE_DESCRIPTION("ipvs-gue test: trips the debug kernel's detectors on purpose");
MODULE_LICENSE("GPL");
EOF
}

kdir=$(debug_kdir)
[ -f "$kdir/arch/x86/boot/bzImage" ] || die "no debug kernel image in $kdir"
if [ -z "$ko" ]; then
  log "building ipvs_gue.ko against the debug kernel ($kdir)"
  ko=$(build_module "$kdir" --kernel debug)
fi
[ -f "$ko" ] || usage_error "no such module $ko"
require_tools qemu-system-x86_64
ko=$(cd "$(dirname "$ko")" && pwd)/$(basename "$ko")
mkdir -p "$out"
out=$(cd "$out" && pwd)
canary_dir="$out/canary"
write_canary "$canary_dir"
log "building the detector canary module in $canary_dir"
make -C "$kdir" M="$canary_dir" "${KMAKE_VARS[@]}" modules > "$out/canary-build.log" 2>&1 \
  || { tail -n 20 "$out/canary-build.log" >&2; die "canary build failed (log $out/canary-build.log)"; }
tools="$TOP/target/x86_64-unknown-linux-gnu/release"
if [ ! -x "$tools/gue-traffic" ] || [ ! -x "$tools/ipvs-gue-ctl" ]; then
  "$TOP/scripts/build-tools" >/dev/null
fi

# Host-side part of the detector canary: the kernel config really has every detector.
missing=()
for opt in CONFIG_BUG CONFIG_KASAN CONFIG_KASAN_GENERIC CONFIG_PROVE_LOCKING CONFIG_PROVE_RCU \
           CONFIG_DEBUG_ATOMIC_SLEEP CONFIG_DEBUG_OBJECTS_RCU_HEAD CONFIG_DEBUG_NET CONFIG_RUST; do
  grep -qx "$opt=y" "$kdir/.config" || missing+=("$opt")
done
kmemleak=0; grep -qx 'CONFIG_DEBUG_KMEMLEAK=y' "$kdir/.config" && kmemleak=1
if [ ${#missing[@]} -eq 0 ]; then
  ktap_pass "canary: debug kernel config has BUG KASAN PROVE_LOCKING PROVE_RCU DEBUG_ATOMIC_SLEEP DEBUG_OBJECTS_RCU_HEAD DEBUG_NET ($(basename "$kdir"))"
else
  ktap_fail "canary: debug kernel config ($kdir/.config) lacks: ${missing[*]}"
fi
# A module built against another (non-KASAN) kernel would load and corrupt memory, not report.
undefined=$("$LLVM_BIN/llvm-nm" -u "$ko" 2>/dev/null || true)   # (no grep -q in a pipe: pipefail + SIGPIPE)
if grep -qE '__(k)?asan_' <<<"$undefined"; then
  ktap_pass "module $(basename "$ko") is KASAN-instrumented (built against the debug kernel)"
else
  ktap_fail "module $ko is not KASAN-instrumented: build it with scripts/build-module --kernel debug"
  ktap_finish || exit
fi

# log_buf_len: reports are long; kasan_multi_shot: report every bug, not the first of the boot
# only (the canary's would hide the module's); acpi=noirq: the debug kernel's AML interpreter is
# so slow under TCG that the PCI _PRT methods hit ACPI's 30 s loop timeout (7 times: boot took
# 490 s instead of 46 s); oops=panic: after an oops the guest is corrupted and tends to hang
# until the VM timeout, so end it there (the host still reports from the console).
cmdline="log_buf_len=8M kasan_multi_shot acpi=noirq oops=panic ${IPVS_GUE_CMDLINE:-}"
log "kernel $kdir; module $ko; scenarios '$scenarios'; VM timeout ${tmo}s; out $out"
t0=$(date +%s)
rc=0
# IPVS_GUE_SPLAT_SCAN=0: run-vm's own console scan cannot tell the canaries' deliberate reports
# from real ones; this script scans the console itself, outside the canary markers (below).
IPVS_GUE_MEM=${IPVS_GUE_MEM:-1G} IPVS_GUE_CMDLINE=$cmdline IPVS_GUE_SPLAT_SCAN=0 \
"$TOP/qemu/run-vm" --kernel "$kdir/arch/x86/boot/bzImage" --out "$out" --timeout "$tmo" \
  --file "$ko:/extra/ipvs_gue.ko" --file "$canary_dir/ipvs_gue_canary.ko:/extra/ipvs_gue_canary.ko" \
  "$TOP/tests/guest/debug.sh" KO=/extra/ipvs_gue.ko CANARY=/extra/ipvs_gue_canary.ko "SCENARIOS=$scenarios" \
  "CYCLES=$cycles" "NS_ROUNDS=$ns_rounds" "NS_PER_ROUND=$ns_per_round" "KMEMLEAK_EXPECTED=$kmemleak" || rc=$?
secs=$(( $(date +%s) - t0 ))

# The guest's TAP lines, from the second serial port (kernel messages cannot split them there).
ktap_relay "$out/results.txt"

# Where the console complaints came from, and (when the guest died) the report nobody printed.
complaint_report() {
  local last first sev
  cut -f1 "$out/console-complaints.txt" | uniq -c \
    | awk '{c = $1; sub(/^ *[0-9]+ /, ""); printf "  in %s: %d lines\n", $0, c}' | head -n 10 || true
  [ "$rc" != 0 ] && [ "$rc" != 1 ] || return 0
  # the guest died: nobody printed the report of the part it died in, so print it here
  last=$(tail -n1 "$out/console-complaints.txt" | cut -f1)
  echo "  distinct complaints in $last:"
  awk -F'\t' -v r="$last" '$1 == r {print $2}' "$out/console-complaints.txt" \
    | sed 's/^\[[ 0-9.]*\] //; s/+0x[0-9a-f]*\/0x[0-9a-f]*//g' | sort | uniq -c | sort -rn | head -n 10 | sed 's/^/  | /' || true
  # the most severe kind of report there decides which one to show
  first=$pat
  sev='KASAN|KFENCE|general protection|unable to handle|kernel BUG|refcount_t|list_(add|del) corruption|Kernel panic'
  grep -qE "$sev" <<<"$(awk -F'\t' -v r="$last" '$1 == r' "$out/console-complaints.txt")" && first=$sev
  echo "  first report in $last:"
  awk -v m="ipvs-gue-debug: $last begin" -v p="$first" 'index($0, m) {on = 1; next}
      on && !s && $0 ~ p && !/^(# |ok |not ok )/ {s = 1}
      s && !/^(# |ok |not ok )/ {print; if (++n == 20) exit}' "$out/console.log" | sed 's/^/  | /'
  echo "  console tail:"
  grep -vE '^(# |ok |not ok )' "$out/console.log" | tail -n 6 | sed 's/^/  | /'
}
# Cross-check on the console, which also holds what a guest that died could not report: kernel
# complaints outside the canaries' begin/end markers, attributed to the scenario marker before them.
pat='BUG:|WARNING:|KASAN|general protection|Oops|suspicious RCU usage|possible circular locking|possible recursive locking|inconsistent lock state|sleeping function called from invalid context|scheduling while atomic|UBSAN|kernel BUG|list_add corruption|list_del corruption|refcount_t|ODEBUG: .*object type|ODEBUG disabled|Kernel panic'
awk '/ipvs-gue-debug: canary begin/ {c = 1; next}
     /ipvs-gue-debug: canary end/ {c = 0; next}
     /ipvs-gue-debug: .* begin/ {r = $0; sub(/.*ipvs-gue-debug: /, "", r); sub(/ begin.*/, "", r); next}
     c || /^(# |ok |not ok |\[init\]|IPVS_GUE_EXIT)/ {next}
     {print (r == "" ? "boot" : r) "\t" $0}' "$out/console.log" 2>/dev/null \
  | grep -E "$pat" > "$out/console-complaints.txt" || true
if [ ! -s "$out/console-complaints.txt" ]; then
  ktap_pass "console: no kernel complaint outside the canaries"
else
  ktap_fail "console: $(wc -l < "$out/console-complaints.txt") kernel complaint lines outside the canaries ($out/console-complaints.txt)"
  ktap_diag_from complaint_report
fi
# /init's own kmemleak scan after the script (reported only: the guest's check after the final
# rmmod is the assertion)
leakline=$(grep -o 'kmemleak scan done: .*' "$out/console.log" 2>/dev/null | tail -n1 || true)
[ -z "$leakline" ] || ktap_diag "/init $leakline"
ktap_vm_run "$rc" "VM run, ${secs} s of ${tmo} s" "$out/console.log"
ktap_finish
