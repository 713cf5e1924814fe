#!/usr/bin/env bash
# Self-test of scripts/lib.sh's KTAP functions, which every suite's verdict passes through: the
# relay of guest results (directives, reasons containing " # "), the exit status of
# ktap_finish (0 pass, 1 failure or nothing run, 4 all skipped) and the closing line CI reads;
# and that scripts/test refuses a selection without a suite.
# Each case runs in a subshell on fake input.  KTAP, ending with "N passed, N failed".
#   tests/lib.sh-selftest.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
no_arguments "$@"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs BODY (a function) in a subshell with fresh KTAP state; passes if it exits with STATUS and
# every REGEX matches a line of its output.
check() { # NAME STATUS BODY REGEX...
  local name=$1 want=$2 body=$3 out rc=0 re; shift 3
  out=$( (KTAP_LINES=() KTAP_N=0 KTAP_PASS=0 KTAP_FAIL=0 KTAP_XFAIL=0 KTAP_SKIP=0; "$body") 2>&1) || rc=$?
  for re in "$@"; do
    grep -qE -- "$re" <<< "$out" || { ktap_fail "$name: no line matches /$re/ in: $(tr '\n' '|' <<< "$out")"; return; }
  done
  if [ "$rc" = "$want" ]; then ktap_pass "$name (exit $rc)"; else ktap_fail "$name: exit $rc, want $want"; fi
}

cat > "$work/guest.txt" <<'EOF'
ok 1 - plain
ok 2 - x # SKIP needs a # thing
ok 3 - bare # SKIP
ok 4 - bar # XFAIL bug seen
not ok 5 - baz # SKIP not a skip: failed
ok 6 - desc with # a hash
# diagnostic
noise that is not TAP
EOF
relay() { ktap_relay "$work/guest.txt" "[g] "; ktap_finish; }
check "relay: directives, reasons with ' # ', failures stay failures" 1 relay \
  '^TAP version 13$' '^1\.\.6$' '^ok 1 - \[g\] plain$' '^ok 2 - \[g\] x # SKIP needs a # thing$' \
  '^ok 3 - \[g\] bare # SKIP no reason given$' '^ok 4 - \[g\] bar # XFAIL bug seen$' \
  '^not ok 5 - \[g\] baz' '^ok 6 - \[g\] desc with # a hash$' '^# diagnostic$' \
  '^# Totals: pass:2 fail:1 xfail:1 xpass:0 skip:2 error:0$' '^3 passed, 1 failed, 2 skipped$'

all_pass() { ktap_pass a; ktap_xfail b "expected"; ktap_finish; }
check "finish: passes and expected failures exit 0" 0 all_pass '^2 passed, 0 failed$'
nothing() { ktap_diag "why nothing ran"; ktap_finish; }
check "finish: a suite that ran nothing fails, its diagnostics shown" 1 nothing '^1\.\.0$' '^# why nothing ran$' '^0 passed, 0 failed$'
all_skipped() { ktap_skip a "no tool"; ktap_finish; }
check "finish: everything skipped exits 4 (KSFT_SKIP)" 4 all_skipped '^ok 1 - a # SKIP no tool$' '^0 passed, 0 failed, 1 skipped$'
skip_all() { ktap_skip_all "missing host tools: x"; }
check "skip_all: plan 1..0 # SKIP, exit 4, counted as skipped" 4 skip_all '^1\.\.0 # SKIP missing host tools: x$' '^0 passed, 0 failed, 1 skipped$'
vm_died() { ktap_vm_run 3 "VM run" /x/console.log; ktap_finish; }
check "vm_run: a guest without an exit marker fails" 1 vm_died '^not ok 1 - VM run \(guest died without an exit marker'
# scripts/test's selection: a list without a suite name is a usage error, not "0 passed, 0 failed".
no_suite() { "$TOP/scripts/test" --only , ; }
check "scripts/test --only ',' is a usage error" 2 no_suite 'names no suite'
ktap_finish
