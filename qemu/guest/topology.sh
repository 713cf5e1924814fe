# Test topology inside the one guest (sourced).  Call topo_setup [DIRECTOR_EGRESS_MTU] AFTER any
# module that hooks per netns is loaded.  Needs tap.sh for topo_preconditions.
#   link A (hub 1, MTU 1500): client eth-a 10.1.0.1 fd01::1  <->  director eth-a 10.1.0.2 fd01::2
#   link B (hub 2, MTU 1600): director eth-b 10.2.0.1 fd02::1, rs1 eth-b 10.2.0.2 fd02::2,
#                             router eth-b 10.2.0.3 fd02::3   (director egress MTU: parameter)
#   link C (hub 3, MTU 1600): router eth-c 10.3.0.1 fd03::1  <->  rs2 eth-c 10.3.0.2 fd03::2
#   VIP 10.10.10.10 / fd10::10 on director vip0 (dummy) and on each real server's lo (DSR).
IP=/usr/sbin/ip
VIP4=10.10.10.10
VIP6=fd10::10
GUE_PORT=5501
TOPO_NS="client director router rs1 rs2"

quiet() { "$@" >/dev/null 2>&1; }
nsx() { local ns; ns=$1; shift; $IP netns exec "$ns" "$@"; }
sysctl_ns() { # NS KEY=VALUE...
  local ns kv
  ns=$1; shift
  for kv in "$@"; do nsx "$ns" sysctl -q -w "$kv" >/dev/null || echo "# sysctl $kv failed in $ns"; done
}
rs_addr() { # RS(rs1|rs2) FAMILY(4|6)
  case "$1$2" in rs14) echo 10.2.0.2 ;; rs16) echo fd02::2 ;; rs24) echo 10.3.0.2 ;; rs26) echo fd03::2 ;;
    *) echo "rs_addr: bad $1 $2" >&2; return 1 ;; esac
}
vip_of() { [ "$1" = 6 ] && echo "$VIP6" || echo "$VIP4"; }
# ADDR:PORT in the form the tools expect ([v6]:port).
hostport() { case "$1" in *:*) echo "[$1]:$2" ;; *) echo "$1:$2" ;; esac; }
# The client's address in FAMILY (the same in the scale-out topology).
CLIENT4=10.1.0.1 CLIENT6=fd01::1
client_addr() { [ "$1" = 6 ] && echo "$CLIENT6" || echo "$CLIENT4"; }

# Move the NIC with MAC into NS as NAME, set MTU, add IPv4/IPv6 addresses (no DAD), bring it up.
topo_nic() { # MAC NS NAME MTU ADDR4 ADDR6
  local dev d
  dev=
  for d in /sys/class/net/*; do
    [ "$(cat "$d/address" 2>/dev/null)" = "$1" ] && dev=${d##*/}
  done
  [ -n "$dev" ] || { echo "# topology: no NIC with MAC $1" >&2; return 1; }
  $IP link set dev "$dev" netns "$2"
  $IP -n "$2" link set dev "$dev" name "$3"
  $IP -n "$2" link set dev "$3" mtu "$4"
  $IP -n "$2" addr add "$5" dev "$3"
  $IP -n "$2" addr add "$6" dev "$3" nodad
  $IP -n "$2" link set dev "$3" up
}

# Fresh namespaces NS...: loopback up, no DAD, no router advertisements, no reverse-path filter
# (addresses are static, and replies take other paths than requests on purpose).
topo_netns() { # NS...
  local ns
  for ns in "$@"; do
    $IP netns del "$ns" 2>/dev/null || true
    $IP netns add "$ns"
    $IP -n "$ns" link set lo up
    sysctl_ns "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.default.accept_ra=0 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  done
}

topo_setup() { # [DIRECTOR_EGRESS_MTU=1600]
  local egress_mtu rs
  egress_mtu=${1:-1600}
  topo_netns $TOPO_NS
  topo_nic 52:54:00:00:01:01 client   eth-a 1500 10.1.0.1/24 fd01::1/64 || return 1
  topo_nic 52:54:00:00:01:02 director eth-a 1500 10.1.0.2/24 fd01::2/64 || return 1
  topo_nic 52:54:00:00:02:01 director eth-b "$egress_mtu" 10.2.0.1/24 fd02::1/64 || return 1
  topo_nic 52:54:00:00:02:02 rs1      eth-b 1600 10.2.0.2/24 fd02::2/64 || return 1
  topo_nic 52:54:00:00:02:03 router   eth-b 1600 10.2.0.3/24 fd02::3/64 || return 1
  topo_nic 52:54:00:00:03:01 router   eth-c 1600 10.3.0.1/24 fd03::1/64 || return 1
  topo_nic 52:54:00:00:03:02 rs2      eth-c 1600 10.3.0.2/24 fd03::2/64 || return 1

  # client: the VIPs live behind the director
  $IP -n client route add $VIP4/32 via 10.1.0.2
  $IP -n client -6 route add $VIP6/128 via fd01::2
  $IP -n client route add default via 10.1.0.2
  $IP -n client -6 route add default via fd01::2

  # director: VIP on a dummy, forwarding, accept DSR replies sourced from its own VIP
  $IP -n director link add vip0 type dummy
  $IP -n director addr add $VIP4/32 dev vip0
  $IP -n director addr add $VIP6/128 dev vip0 nodad
  $IP -n director link set vip0 up
  $IP -n director route add 10.3.0.0/24 via 10.2.0.3
  $IP -n director -6 route add fd03::/64 via fd02::3
  sysctl_ns director net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv4.conf.eth-b.accept_local=1 net.ipv4.conf.eth-b.rp_filter=0 net.ipv4.conf.eth-a.rp_filter=0 \
    net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth-b.send_redirects=0 \
    net.ipv4.vs.expire_nodest_conn=1

  # router: forwards between link B and link C; the client net is behind the director
  sysctl_ns router net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth-b.send_redirects=0
  $IP -n router route add 10.1.0.0/24 via 10.2.0.1
  $IP -n router -6 route add fd01::/64 via fd02::1

  $IP -n rs1 route add 10.1.0.0/24 via 10.2.0.1
  $IP -n rs1 -6 route add fd01::/64 via fd02::1
  $IP -n rs2 route add default via 10.3.0.1
  $IP -n rs2 -6 route add default via fd03::1
  for rs in rs1 rs2; do topo_real_server "$rs"; done
}

# Real server: VIP on lo without ARP for it, stock fou GUE decapsulation, traffic sinks (the
# :8080 sink logs to /tmp/serve-NS.log; env SERVE_FLAGS adds serve options, e.g. --verbose for a
# line per connection).
topo_real_server() { # NS
  local rs dev
  rs=$1
  $IP -n "$rs" addr add $VIP4/32 dev lo
  $IP -n "$rs" addr add $VIP6/128 dev lo nodad
  sysctl_ns "$rs" net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  # fou sockets are per outer family; the inner packet is resubmitted to tunl0 / sit0 / ip6tnl0
  $IP -n "$rs" fou add port $GUE_PORT gue
  $IP -n "$rs" -6 fou add port $GUE_PORT gue
  $IP -n "$rs" link set tunl0 up 2>/dev/null || { $IP -n "$rs" tunnel add tunl0 mode ipip 2>/dev/null; $IP -n "$rs" link set tunl0 up; }
  $IP -n "$rs" link set sit0 up
  # the fallback ip6tnl0 only takes ip6ip6 by default; "any" also takes ip4ip6
  $IP -n "$rs" -6 tunnel change ip6tnl0 mode any 2>/dev/null || echo "# $rs: ip6tnl0 mode any failed"
  $IP -n "$rs" link set ip6tnl0 up
  for dev in tunl0 sit0 ip6tnl0 lo eth-b eth-c; do
    nsx "$rs" sh -c "[ -d /proc/sys/net/ipv4/conf/$dev ] && echo 0 > /proc/sys/net/ipv4/conf/$dev/rp_filter" 2>/dev/null || true
  done
  if [ -x /bin/gue-traffic ]; then
    nsx "$rs" setsid gue-traffic serve --listen "[::]:8080" ${SERVE_FLAGS:-} > "/tmp/serve-$rs.log" 2>&1 &
  else
    echo "# $rs: /bin/gue-traffic missing: no traffic sink on :8080"
  fi
  nsx "$rs" iperf3 -s -D -p 5201 --logfile "/tmp/iperf3-$rs.log" 2>/dev/null || echo "# $rs: iperf3 -s failed"
}

# Wait until every real server listens on :8080 and :5201 (up to ~5 s).
topo_wait_servers() {
  local rs i
  for rs in rs1 rs2; do
    i=0
    until nsx "$rs" sh -c 'cat /proc/net/tcp6 /proc/net/tcp' 2>/dev/null | grep -q ':1F90 .* 0A '; do
      i=$((i + 1)); [ $i -lt 50 ] || { echo "# $rs: nothing listening on :8080"; return 1; }
      sleep 0.1
    done
  done
}

ethtool_feature() { # NS DEV FEATURE -> on|off (with [fixed] stripped)
  nsx "$1" ethtool -k "$2" 2>/dev/null | awk -v f="$3:" '$1 == f {print $2}'
}

# Preconditions of the bug's path, one TAP line each.
topo_preconditions() {
  local gro tnl
  gro=$(ethtool_feature director eth-a generic-receive-offload)
  tap_check "precondition: GRO on at director link-A NIC (got '$gro')" [ "$gro" = on ]
  tnl=$(ethtool_feature director eth-b tx-udp_tnl-segmentation)
  tap_check "precondition: tx-udp_tnl-segmentation off at director link-B NIC (got '$tnl')" [ "$tnl" = off ]
  tap_check "precondition: client reaches rs1 (ping 10.2.0.2 via director)" \
    quiet nsx client ping -c1 -W2 10.2.0.2
  tap_check "precondition: client reaches rs2 over IPv6 (ping fd03::2 via director+router)" \
    quiet nsx client ping -6 -c1 -W2 fd03::2
}
