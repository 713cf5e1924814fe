# Background guest tools (sourced; needs topology.sh and tap.sh).
# bg_start NS OUT CMD...: runs CMD in NS, stderr to OUT.err, waits for "listening on" or
# "capturing on" there; BG_PID is its pid.
bg_start() {
  local ns out i
  ns=$1 out=$2; shift 2
  rm -f "$out" "$out.err"
  nsx "$ns" "$@" > "$out" 2> "$out.err" &
  BG_PID=$!
  i=0
  until grep -qE 'listening on|capturing on' "$out.err" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -ge 60 ] || ! kill -0 $BG_PID 2>/dev/null; then
      diag "background $* in $ns did not start: $(head -c 300 "$out.err")"; return 1
    fi
    sleep 0.1
  done
}
