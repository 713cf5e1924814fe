# TAP helpers for guest test scripts (sourced).  tap_ok/tap_fail NAME [# directive];
# tap_check NAME CMD... runs CMD; tap_done prints "N passed, N failed" and returns 1 on failure.
# Results channel: result LINE writes one machine-readable line to /dev/ttyS1 (-> host results.txt).
TAP_N=0; TAP_PASS=0; TAP_FAIL=0
tap_ok()   { TAP_N=$((TAP_N + 1)); TAP_PASS=$((TAP_PASS + 1)); echo "ok $TAP_N - $*"; }
tap_fail() { TAP_N=$((TAP_N + 1)); TAP_FAIL=$((TAP_FAIL + 1)); echo "not ok $TAP_N - $*"; }
tap_check() {  # (its own variable name: callers keep using $name after it)
  local tap_check_name
  tap_check_name=$1; shift
  if "$@"; then tap_ok "$tap_check_name"; else tap_fail "$tap_check_name"; fi
}
tap_done() {
  echo "1..$TAP_N"
  echo "$TAP_PASS passed, $TAP_FAIL failed"
  result "{\"tap_passed\":$TAP_PASS,\"tap_failed\":$TAP_FAIL}"
  [ "$TAP_FAIL" -eq 0 ]
}
result() { printf '%s\n' "$*" > /dev/ttyS1; }
diag() { echo "# $*"; }
