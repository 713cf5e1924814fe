# Guest side of scripts/bench (busybox sh, run by /init): the benchmark matrix in one boot.
#   KO           module to insmod (loaded for the whole boot)
#   TABLE_SIZES  real servers configured, e.g. "1 1000 100000": the module's table (for its
#                cells) and IPVS (a second service with SIZE-1 destinations, for every cell)
#   ROUNDS       rounds per table size; each runs every cell of CELLS once, the order rotated
#   CELLS        VARIANT:CLIENT_FAMILY:OUTER_FAMILY:CSUM ... (variants dr, c-gue, rust; rs1)
#   IPERF_SECS   seconds per iperf3 upload (1 and 4 streams)
#   SMALL_REQUESTS  64-byte request/response exchanges over 4 connections
#   LAT_REQUESTS    requests per latency size, e.g. 64K=32,1M=8 (one connection: one at a time)
#   METRICS      which measurements a cell makes: any of iperf small latency (default all three)
# Records, one JSON line each on /dev/ttyS1: {"bench":1, table_size, round, variant,
# client_family, outer_family, csum, metric, unit, value, cpu_ms, packets, bytes, wall_ms}.
# cpu_ms: the guest's system + irq + softirq time during the measurement (all its CPUs; the
# client and the real server share them with the director, alike for every variant); packets:
# frames the director sent on the real servers' link. small_xmit_p50: the median time IPVS's
# transmit function took per packet during the 64-byte exchanges (see xmit_probes).
# Correctness (drops, integrity) is make test's job: a measurement that fails is reported as a
# TAP failure and no record.
. /guest/lib.sh
TABLE_SIZES=${TABLE_SIZES:-1}
ROUNDS=${ROUNDS:-1}
CELLS=${CELLS:-rust:4:4:nocsum}
IPERF_SECS=${IPERF_SECS:-5}
SMALL_REQUESTS=${SMALL_REQUESTS:-2000}
LAT_REQUESTS=${LAT_REQUESTS:-64K=32,1M=8}
METRICS=${METRICS:-iperf small latency}
DUMMY_VIP=10.99.0.1

if [ -n "${KO:-}" ]; then tap_check "insmod $(basename "$KO")" module_insert "$KO"; fi
topo_setup 1600 || { tap_fail "topology setup"; tap_done; exit 1; }
tap_ok "topology setup"
topo_wait_servers || true

# IPVS and the module hold SIZE servers: SIZE-1 dummies (10.200.0.1 on, up to 2^18) plus,
# during a cell, its own.
# IPVS: one more service with SIZE-1 destinations, kept for every cell of this size; the
# module: /tmp/bench-dummies, restored with each rust cell's server (ipvs-gue-ctl -R).
scale_to() { # SIZE
  local n=$(($1 - 1)) t0
  t0=$(now)
  nsx director ipvsadm -C
  nsx director ipvs-gue-ctl -C
  awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++)
    printf "-a -r 10.%d.%d.%d --gue-port 5501\n", 200 + int(i / 65536), int(i / 256) % 256, i % 256 }' > /tmp/bench-dummies
  if [ "$n" -gt 0 ]; then
    { echo "-A -t $DUMMY_VIP:80 -s rr"
      awk -v n="$n" -v vip="$DUMMY_VIP" 'BEGIN { for (i = 1; i <= n; i++)
        printf "-a -t %s:80 -r 10.%d.%d.%d:80 -g\n", vip, 200 + int(i / 65536), int(i / 256) % 256, i % 256 }'
    } > /tmp/bench-ipvs
    nsx director ipvsadm -R < /tmp/bench-ipvs || return 1
  fi
  diag "table size $1: $n dummy IPVS destinations configured in $(since "$t0") s"
}

# The cell's services (and, for rust, the module's table: the dummies plus the cell's server).
cell_up() { # VARIANT CF OF CSUM
  local mode
  if [ "$1" = rust ]; then
    case "$4" in nocsum) mode=none ;; csum) mode=udp ;; *) mode=remcsum ;; esac
    { cat /tmp/bench-dummies
      echo "-a -r $(rs_addr rs1 "$2") --gue-port $GUE_PORT --csum $mode --outer $(rs_addr rs1 "$3")"
    } > /tmp/bench-table
    IPVS_GUE_CTL_ADD="ipvs-gue-ctl -R < /tmp/bench-table" cell_service "$1" "$2" "$3" "$4" rs1
  else
    cell_service "$1" "$2" "$3" "$4" rs1
  fi
}
# Removes the cell's services, keeps the dummy one; empties the module's table.
cell_down() { # CF
  local p
  for p in $IPVS_PORTS; do nsx director ipvsadm -D -t "$(hostport "$(vip_of "$1")" "$p")" 2>/dev/null; done
  nsx director ipvs-gue-ctl -C 2>/dev/null || true
}

cpu_jiffies() { awk '/^cpu / {print $4 + $7 + $8}' /proc/stat; }
tx_frames() { nsx director cat /sys/class/net/eth-b/statistics/tx_packets; }
measure_start() { M_J0=$(cpu_jiffies); M_P0=$(tx_frames); M_T0=$(uptime_ms); }
measure_stop() {
  M_CPU_MS=$(( ($(cpu_jiffies) - M_J0) * 1000 / $(getconf CLK_TCK 2>/dev/null || echo 100) ))
  M_PKTS=$(( $(tx_frames) - M_P0 )); M_WALL_MS=$(( $(uptime_ms) - M_T0 ))
}

# METRIC UNIT VALUE BYTES: one record for the current cell (CELL_* set by run_cell).
record() {
  printf '{"bench":1,"table_size":%s,"round":%s,"variant":"%s","client_family":%s,"outer_family":%s,"csum":"%s","metric":"%s","unit":"%s","value":%s,"cpu_ms":%s,"packets":%s,"bytes":%s,"wall_ms":%s}\n' \
    "$CELL_SIZE" "$CELL_ROUND" "$CELL_V" "$CELL_CF" "$CELL_OF" "$CELL_CS" "$1" "$2" "$3" "$M_CPU_MS" "$M_PKTS" "$4" "$M_WALL_MS" \
    > /dev/ttyS1
}

bench_iperf() { # STREAMS
  local out
  measure_start
  nsx client iperf3 -c "$(vip_of "$CELL_CF")" -p 5201 -t "$IPERF_SECS" -P "$1" -J > /tmp/bench-iperf.json 2>&1 || {
    tap_fail "$CELL_NAME iperf3 -P $1"; tail -n 3 /tmp/bench-iperf.json | sed 's/^/#   /'; return; }
  measure_stop
  out=$(jq -r '"\(.end.sum_received.bits_per_second / 1e6 * 10 | round / 10) \(.end.sum_received.bytes)"' /tmp/bench-iperf.json)
  set -- "$1" $out
  record "iperf_p$1" Mbit/s "$2" "$3"
}

# gue-traffic requests of SIZE over CONNS connections; prints "ok requests elapsed_ms p50 p99 bytes_ok".
traffic() { # SIZE REQUESTS CONNS
  nsx client gue-traffic run --connect "$(hostport "$(vip_of "$CELL_CF")" 8080)" --sizes "$1" --requests "$2" \
    --connections "$3" --timeout-ms 60000 --json /tmp/bench-run.json 2>/tmp/bench-run.err || return 1
  jq -r '.sizes[0] | "\(.ok) \(.requests) \(.elapsed_ms) \(.p50_ms) \(.p99_ms) \(.bytes_ok)"' /tmp/bench-run.json
}

# The director's transmit time per packet: IPVS's transmit function from call to return, the
# kernel's C GUE path in ip_vs_tunnel_xmit[_v6], plain DR and ours in ip_vs_dr_xmit[_v6] (our
# hook runs inside it, at the LOCAL_OUT of the packet it sends), timed by a kprobe/kretprobe
# pair per function. Unlike the /proc/stat figures it leaves out the client's and the real
# server's work; the probes' own cost (the same for every variant) is in it.
XMIT_INST=$TRACEFS/instances/bench_xmit
XMIT_FUNCS="ip_vs_dr_xmit ip_vs_dr_xmit_v6 ip_vs_tunnel_xmit ip_vs_tunnel_xmit_v6"
xmit_probes() {
  local f
  [ -d $TRACEFS/events ] || mount -t tracefs tracefs $TRACEFS 2>/dev/null
  for f in $XMIT_FUNCS; do
    grep -q "bench_xmit/${f}_in " $TRACEFS/kprobe_events 2>/dev/null && continue
    echo "p:bench_xmit/${f}_in $f" >> $TRACEFS/kprobe_events || return 1
    echo "r:bench_xmit/${f}_out $f" >> $TRACEFS/kprobe_events || return 1
  done
  [ -d $XMIT_INST ] || mkdir $XMIT_INST || return 1
  echo 0 > $XMIT_INST/tracing_on
  echo 8192 > $XMIT_INST/buffer_size_kb
}
xmit_start() {
  [ -d $XMIT_INST/events/bench_xmit ] || return 0
  : > $XMIT_INST/trace; echo 1 > $XMIT_INST/events/bench_xmit/enable; echo 1 > $XMIT_INST/tracing_on
}
xmit_stop() {
  [ -d $XMIT_INST/events/bench_xmit ] || return 0
  echo 0 > $XMIT_INST/tracing_on; echo 0 > $XMIT_INST/events/bench_xmit/enable
}
# Median microseconds from entry to return over the traced calls (paired per CPU: softirqs
# do not nest), "-" if none.
xmit_median_us() {
  awk '{ cpu = ""; ts = ""; ev = ""
         for (i = 1; i <= NF; i++) {
           if ($i ~ /^\[[0-9]+\]$/) cpu = $i
           else if (ts == "" && $i ~ /^[0-9]+\.[0-9]+:$/) { ts = substr($i, 1, length($i) - 1); ev = $(i + 1) }
         }
         if (ev ~ /_in:$/) start[cpu] = ts
         else if (ev ~ /_out:$/ && (cpu in start)) { printf "%d\n", (ts - start[cpu]) * 1e6 + 0.5; delete start[cpu] } }' \
    $XMIT_INST/trace 2>/dev/null | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'
}

bench_small() {
  local out xmit
  xmit_start
  measure_start
  out=$(traffic 64 "$SMALL_REQUESTS" 4) || { xmit_stop; tap_fail "$CELL_NAME 64-byte requests"; tail -n 3 /tmp/bench-run.err | sed 's/^/#   /'; return; }
  measure_stop
  xmit_stop
  set -- $out
  record small_rps req/s "$(awk -v ok="$1" -v ms="$3" 'BEGIN {printf "%.1f", ok * 1000 / ms}')" "$6"
  xmit=$(xmit_median_us)
  if [ "$xmit" = - ]; then tap_fail "$CELL_NAME: no transmit calls traced"; else record small_xmit_p50 us/packet "$xmit" "$6"; fi
}

bench_latency() { # SIZE REQUESTS
  local out metric
  metric=lat$(echo "$1" | tr 'KM' 'km')
  measure_start
  out=$(traffic "$1" "$2" 1) || { tap_fail "$CELL_NAME $1 requests"; tail -n 3 /tmp/bench-run.err | sed 's/^/#   /'; return; }
  measure_stop
  set -- $out
  record "${metric}_p50" ms "$4" "$6"
  record "${metric}_p99" ms "$5" "$6"
}

run_cell() { # SIZE ROUND SPEC
  local s
  CELL_SIZE=$1 CELL_ROUND=$2
  IFS=: read -r CELL_V CELL_CF CELL_OF CELL_CS <<EOF
$3
EOF
  CELL_NAME="size $1 round $2 $CELL_V-c$CELL_CF-o$CELL_OF-$CELL_CS"
  cell_up "$CELL_V" "$CELL_CF" "$CELL_OF" "$CELL_CS" || { tap_fail "$CELL_NAME: service setup"; cell_down "$CELL_CF"; return; }
  case " $METRICS " in *" iperf "*) bench_iperf 1; bench_iperf 4 ;; esac
  case " $METRICS " in *" small "*) bench_small ;; esac
  case " $METRICS " in *" latency "*)
    for s in $(echo "$LAT_REQUESTS" | tr ',' ' '); do bench_latency "${s%%=*}" "${s#*=}"; done ;;
  esac
  cell_down "$CELL_CF"
  tap_ok "$CELL_NAME"
}

# Rotate SPECS by R places: round R starts at its R-th cell.
rotated() { # R SPECS...
  local r=$1
  shift
  awk -v r="$r" 'BEGIN { n = ARGC - 1; for (i = 0; i < n; i++) printf "%s ", ARGV[1 + (i + r) % n] }' "$@"
}

case " $METRICS " in *" small "*)
  tap_check "kprobes on IPVS's transmit functions ($XMIT_FUNCS)" xmit_probes ;;
esac
for size in $TABLE_SIZES; do
  scale_to "$size" || { tap_fail "table size $size: dummy IPVS destinations"; continue; }
  round=1
  while [ "$round" -le "$ROUNDS" ]; do
    for spec in $(rotated $((round - 1)) $CELLS); do run_cell "$size" "$round" "$spec"; done
    round=$((round + 1))
  done
done
nsx director ipvsadm -C
tap_done
