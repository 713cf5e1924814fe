#!/usr/bin/env bash
# Smoke test: boot the VM, insmod the module, check it hooks a netns created after load, run
# configuration errors are refused (tests/guest/config.sh), traffic client -> rs1 by plain routing,
# rmmod, dmesg clean.  TAP + "N passed, N failed".
#   tests/smoke.sh [MODULE.ko]   (or env IPVS_GUE_KO; NETNS_PATTERN / NETNS_CHECK: see tests/guest/smoke.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
ko=${1:-${IPVS_GUE_KO:-}}
out="$top/target/smoke"
files=(); env=()
if [ -n "$ko" ]; then
  [ -f "$ko" ] || { echo "smoke: no such module $ko" >&2; exit 2; }
  files=(--file "$ko"); env=("KO=/extra/$(basename "$ko")")
fi
for k in NETNS_PATTERN NETNS_CHECK; do [ -z "${!k:-}" ] || env+=("$k=${!k}"); done
rm -rf "$out"
set +e
"$top/qemu/run-vm" --out "$out" --timeout "${SMOKE_TIMEOUT:-300}" "${files[@]}" \
  --file "$here/guest/config.sh:/guest/config.sh" "$here/guest/smoke.sh" "${env[@]}"
rc=$?
set -e
n=0; pass=0; fail=0
while IFS= read -r l; do
  case "$l" in
    "ok "*) n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - ${l#ok * - }" ;;
    "not ok "*) n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - ${l#not ok * - }" ;;
    "# "*) echo "$l" ;;
  esac
done < <(grep -E '^(not )?ok [0-9]+ - |^# ' "$out/console.log" || true)
n=$((n + 1))
if [ "$rc" = 0 ]; then pass=$((pass + 1)); echo "ok $n - VM run (guest exit 0)"
else fail=$((fail + 1)); echo "not ok $n - VM run (rc $rc; log $out/console.log)"; fi
echo "1..$n"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
