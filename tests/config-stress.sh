#!/usr/bin/env bash
# Configuration stress and permission suite: boots the VM with the module, runs
# tests/guest/config-stress.sh (`gue-traffic config-stress`: K concurrent writers, one netlink
# socket each, N requests to the ipvs_gue generic netlink family, valid and malformed, checked
# against a model, plus its self-test; CAP_NET_ADMIN and namespace isolation checks over
# netlink with ipvs-gue-ctl; kernel log clean): KTAP, ending with "N passed, M failed".
#   tests/config-stress.sh [options] [MODULE.ko]
#     MODULE.ko         module under test (default: $IPVS_GUE_KO, else ./ipvs_gue.ko; with
#                       --debug: target/module-debug/ipvs_gue.ko)
#     --kernel BZIMAGE  guest kernel (default: $IPVS_GUE_BZIMAGE, else qemu/run-vm's stock kernel)
#     --debug           the debug kernel (`scripts/build-kernel debug`; while another kernel build
#                       runs, the newest finished one); its module: `scripts/build-module --kernel debug`
#     --writers K       concurrent writers (default 4)
#     --writes N        netlink writes in all (default 10000; 3000 on a debug kernel, which
#                       takes ~4x longer per request under TCG)
#     --seed S          generator seed (default 1)
#     --timeout SECS    hard limit for the VM (default 420; the stress itself gets SECS - 170)
#     --out DIR         console.log, results.txt (default target/config-stress)
#     -h, --help
#   Env: IPVS_GUE_MEM (guest memory; default 1G, 2G on a debug kernel), IPVS_GUE_CMDLINE
#   (appended; acpi=noirq is added on a debug kernel, whose ACPI IRQ routing takes minutes
#   under TCG).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

main() {
  local ko=${IPVS_GUE_KO:-} ko_arg= kernel=${IPVS_GUE_BZIMAGE:-} debug=0
  local writers=4 writes= seed=1 tmo=420 out="$TOP/target/config-stress"
  while [ $# -gt 0 ]; do
    case "$1" in
      --kernel) need_value "$1" $#; kernel=$2; shift 2 ;;
      --debug) debug=1; shift ;;
      --writers) need_value "$1" $#; writers=$2; shift 2 ;;
      --writes) need_value "$1" $#; writes=$2; shift 2 ;;
      --seed) need_value "$1" $#; seed=$2; shift 2 ;;
      --timeout) need_value "$1" $#; tmo=$2; shift 2 ;;
      --out) need_value "$1" $#; out=$2; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      -*) usage_error "unknown option $1" ;;
      *) [ -z "$ko_arg" ] || usage_error "more than one module given"; ko_arg=$1; shift ;;
    esac
  done
  local v
  for v in "$writers" "${writes:-0}" "$seed" "$tmo"; do
    [[ "$v" =~ ^[0-9]+$ ]] || usage_error "'$v' is not a number"
  done
  [ "$writers" -ge 1 ] && [ "$writers" -le 16 ] || usage_error "--writers: 1-16"
  [ -z "$writes" ] || [ "$writes" -ge 100 ] || usage_error "--writes: at least 100"
  [ "$tmo" -ge 240 ] || usage_error "--timeout: at least 240"

  if [ "$debug" = 1 ]; then
    [ -n "$kernel" ] || kernel="$(kernel_dir debug)/arch/x86/boot/bzImage"
    [ -n "$ko_arg" ] || ko_arg="$TOP/target/module-debug/ipvs_gue.ko"
  fi
  [ -z "$ko_arg" ] || ko=$ko_arg
  [ -n "$ko" ] || ko="$TOP/ipvs_gue.ko"
  [ -f "$ko" ] || usage_error "no such module $ko (build it: scripts/build-module$([ "$debug" = 1 ] && echo " --kernel debug"))"
  local kargs=() extra_cmdline=
  if [ -n "$kernel" ]; then
    [ -f "$kernel" ] || usage_error "no such kernel image $kernel"
    kargs=(--kernel "$kernel")
    case "$kernel" in
      */debug-*)
        export IPVS_GUE_MEM=${IPVS_GUE_MEM:-2G}
        # The debug kernel's AML interpreter is so slow under TCG that every PCI _PRT
        # evaluation hits the 30 s ACPI loop timeout (~7 min of boot); route IRQs without
        # ACPI (virtio uses MSI-X anyway): init is reached in under a minute.
        extra_cmdline="acpi=noirq"
        writes=${writes:-3000} ;;
    esac
  fi

  writes=${writes:-10000}
  # The guest runs the initramfs's gue-traffic and ipvs-gue-ctl: they must be current (the
  # stress drives the family through ipvs-gue-ctl's client library).
  local dir="$TOP/target/x86_64-unknown-linux-gnu/release" src
  local stale=0
  for src in "$TOP/crates/gue-traffic/src/config_stress.rs" "$TOP"/crates/ipvs-gue-ctl/src/*.rs; do
    [ "$dir/gue-traffic" -nt "$src" ] && [ "$dir/ipvs-gue-ctl" -nt "$src" ] || stale=1
  done
  if [ "$stale" = 1 ] || ! "$dir/gue-traffic" config-stress --help 2>/dev/null | grep -q config-stress; then
    log "building the static tools (gue-traffic or ipvs-gue-ctl older than their sources)"
    "$TOP/scripts/build-tools" >/dev/null
  fi

  [ -z "$extra_cmdline" ] || export IPVS_GUE_CMDLINE="${IPVS_GUE_CMDLINE:+$IPVS_GUE_CMDLINE }$extra_cmdline"
  require_tools qemu-system-x86_64
  rm -rf "$out"; mkdir -p "$out"
  local rc=0
  "$TOP/qemu/run-vm" --out "$out" --timeout "$tmo" "${kargs[@]}" --file "$ko" \
    "$TOP/tests/guest/config-stress.sh" "KO=/extra/$(basename "$ko")" "WRITERS=$writers" \
    "WRITES=$writes" "SEED=$seed" "STRESS_TIMEOUT=$((tmo - 170))" || rc=$?
  # TAP from the results channel (only the guest script writes there), renumbered.
  local src="$out/results.txt"
  [ -s "$src" ] || src="$out/console.log"
  ktap_relay "$src"
  ktap_vm_run "$rc" "VM run" "$out/console.log"
  ktap_finish
}

main "$@"
