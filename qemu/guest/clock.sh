# Time since boot, for step timings in guest scripts (busybox date has no %N).
now() { cut -d' ' -f1 /proc/uptime; }
# Seconds since T0 (a `now` value), to 0.1 s.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
# Milliseconds since boot, to 10 ms.
uptime_ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }
