# Director IPVS services (sourced; needs topology.sh).  Every service is on VIP:8080 (gue-traffic)
# and VIP:5201 (iperf3) with one real server.  FAMILY = 4|6 is the service (VIP) family; the real
# server's address family is the outer family.  DR needs the same family; tunnel mode may mix.
IPVS_PORTS="8080 5201"

ipvs_service_dr() { # FAMILY RS_ADDR
  local vip p
  vip=$(vip_of "$1")
  for p in $IPVS_PORTS; do
    nsx director ipvsadm -A -t "$(hostport "$vip" "$p")" -s rr || return 1
    nsx director ipvsadm -a -t "$(hostport "$vip" "$p")" -r "$(hostport "$2" "$p")" -g || return 1
  done
}

ipvs_service_c_gue() { # FAMILY RS_ADDR CSUM(nocsum|csum|remcsum)
  local vip p
  vip=$(vip_of "$1")
  case "$3" in nocsum|csum|remcsum) ;; *) echo "ipvs_service_c_gue: bad csum '$3'" >&2; return 1 ;; esac
  for p in $IPVS_PORTS; do
    nsx director ipvsadm -A -t "$(hostport "$vip" "$p")" -s rr || return 1
    nsx director ipvsadm -a -t "$(hostport "$vip" "$p")" -r "$(hostport "$2" "$p")" \
      -i --tun-type gue --tun-port "$GUE_PORT" "--tun-$3" || return 1
  done
}

# HOOK for the Rust module: an IPVS service (DR by default: RUST_IPVS_METHOD=-g; -i for tunnel
# mode) to RS_ADDR plus the module's per-real-server GUE config via ipvs-gue-ctl.  RS_ADDR is the
# IPVS destination (same family as the service for DR); OUTER_DST is the tunnel's outer
# destination (its family is the outer family).  CSUM uses the harness names nocsum|csum|remcsum,
# mapped to ipvs-gue-ctl's none|udp|remcsum.  IPVS_GUE_CTL_ADD (a shell command run in the
# director netns) / IPVS_GUE_CTL_CLEAR override the ctl invocations.
ipvs_service_rust() { # FAMILY RS_ADDR CSUM OUTER_DST
  local vip mode p
  vip=$(vip_of "$1")
  case "$3" in nocsum) mode=none ;; csum) mode=udp ;; remcsum) mode=remcsum ;;
    *) echo "ipvs_service_rust: bad csum '$3'" >&2; return 1 ;; esac
  for p in $IPVS_PORTS; do
    nsx director ipvsadm -A -t "$(hostport "$vip" "$p")" -s rr || return 1
    nsx director ipvsadm -a -t "$(hostport "$vip" "$p")" -r "$(hostport "$2" "$p")" \
      ${RUST_IPVS_METHOD:--g} || return 1
  done
  if [ -n "${IPVS_GUE_CTL_ADD:-}" ]; then
    nsx director sh -c "$IPVS_GUE_CTL_ADD" || return 1
  else
    [ -x /bin/ipvs-gue-ctl ] || { echo "# /bin/ipvs-gue-ctl missing" >&2; return 1; }
    nsx director ipvs-gue-ctl -a -r "$2" --gue-port "$GUE_PORT" --csum "$mode" --outer "$4" || return 1
  fi
}

ipvs_clear() {
  nsx director ipvsadm -C
  if [ -n "${IPVS_GUE_CTL_CLEAR:-}" ]; then nsx director sh -c "$IPVS_GUE_CTL_CLEAR" || true
  elif [ -x /bin/ipvs-gue-ctl ] && grep -q '^ipvs_gue ' /proc/modules 2>/dev/null; then
    nsx director ipvs-gue-ctl -C 2>/dev/null || true
  fi
}

# Configure the director for one cell.  rust / rust-bug: DR service + the module's GUE config.
cell_service() { # VARIANT CF OF CSUM RS
  local rsaddr
  rsaddr=$(rs_addr "$5" "$3") || return 1
  case "$1" in
    dr)    [ "$2" = "$3" ] || { echo "# dr needs client family = outer family" >&2; return 1; }
           ipvs_service_dr "$2" "$rsaddr" ;;
    c-gue) ipvs_service_c_gue "$2" "$rsaddr" "$4" ;;
    rust|rust-bug)  # IPVS dest in the client family, outer destination in the outer family
           ipvs_service_rust "$2" "$(rs_addr "$5" "$2")" "$4" "$rsaddr" ;;
    *) echo "# unknown variant $1" >&2; return 1 ;;
  esac
}

# The module's counters summed over its real servers: "packets gso_packets drop_pmtu other_drops".
module_counters() {
  nsx director awk '!/^#/ {p += $5; g += $7; m += $8; o += $9 + $10 + $11} END {print p + 0, g + 0, m + 0, o + 0}' \
    /proc/net/ipvs_gue 2>/dev/null || echo "0 0 0 0"
}

ipvs_show() { nsx director ipvsadm -Ln --stats; }
