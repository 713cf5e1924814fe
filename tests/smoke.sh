#!/usr/bin/env bash
# Smoke test: boot the VM, insmod the module, check it hooks a netns created after load, run
# configuration errors are refused (tests/guest/config.sh), the netlink family against its spec
# with the kernel's YNL client (tests/guest/netlink.sh), traffic client -> rs1 by plain routing,
# rmmod, dmesg clean.  KTAP, ending with "N passed, N failed".
#   tests/smoke.sh [MODULE.ko]   (or env IPVS_GUE_KO; NETNS_PATTERN / NETNS_CHECK: see tests/guest/smoke.sh)
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
ko=${IPVS_GUE_KO:-}
case "${1-}" in
  -h|--help) usage; exit 0 ;;
  -*) usage_error "unknown option $1" ;;
  ?*) ko=$1; [ $# -eq 1 ] || usage_error "more than one module given" ;;
esac
require_tools qemu-system-x86_64
out="$TOP/target/smoke"
files=(); env=()
if [ -n "$ko" ]; then
  [ -f "$ko" ] || usage_error "no such module $ko"
  files=(--file "$ko"); env=("KO=/extra/$(basename "$ko")")
fi
for k in NETNS_PATTERN NETNS_CHECK; do [ -z "${!k:-}" ] || env+=("$k=${!k}"); done
for f in config.sh netlink.sh ynl-check.py ynl-listen.py; do files+=(--file "$TOP/tests/guest/$f:/guest/$f"); done
ynl=$(ynl_guest_files)
mapfile -t -O "${#files[@]}" files <<< "$ynl"
rm -rf "$out"
rc=0
"$TOP/qemu/run-vm" --out "$out" --timeout "${SMOKE_TIMEOUT:-600}" "${files[@]}" "$TOP/tests/guest/smoke.sh" "${env[@]}" || rc=$?
ktap_relay "$out/console.log"
ktap_vm_run "$rc" "VM run" "$out/console.log"
ktap_finish
