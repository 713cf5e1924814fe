# Scale-out topology (sourced after lib.sh; the VM booted with qemu/run-vm --topology scaleout):
# two directors behind an ECMP edge router, real servers on-link and behind a router whose two
# links to rs2 are a second ECMP hop (the fabric).  Call so_setup AFTER any module that hooks per
# netns is loaded.
#   link A  (hub 1): client eth-a 10.1.0.1 fd01::1      <->  edge eth-a 10.1.0.2 fd01::2
#   link D1 (hub 4): edge eth-d1 10.11.0.1 fd11::1      <->  d1 eth-a 10.11.0.2 fd11::2
#   link D2 (hub 5): edge eth-d2 10.12.0.1 fd12::1      <->  d2 eth-a 10.12.0.2 fd12::2
#   link B  (hub 2, MTU 1600): d1 .1, rs1 .2, router .3, d2 .4, edge .5 (10.2.0.x, fd02::x)
#   link C  (hub 3): router eth-c 10.3.0.1 fd03::1       <->  rs2 eth-c 10.3.0.2 fd03::2
#   link C2 (hub 6): router eth-c2 10.4.0.1 fd04::1      <->  rs2 eth-c2 10.4.0.2 fd04::2
# The VIPs are on vip0 in d1 and d2 and on lo of rs1 and rs2; rs2's address as a real server
# (and tunnel endpoint) is 10.30.0.2 / fd30::2 on its lo, reachable over both C links.
# The edge sends VIP traffic over nexthop groups (ids 10 and 16) with L4 hashing; replies from
# the real servers return through the edge (direct server return), never through a director.
SO_NS="client edge d1 d2 router rs1 rs2"
SO_DIRECTORS="d1 d2"
SO_RS2_4=10.30.0.2
SO_RS2_6=fd30::2

# The real server address of RS (rs1|rs2) in FAMILY, as IPVS and the module know it.
so_rs_addr() { # RS FAMILY
  case "$1$2" in rs14) echo 10.2.0.2 ;; rs16) echo fd02::2 ;; rs24) echo $SO_RS2_4 ;; rs26) echo $SO_RS2_6 ;;
    *) echo "so_rs_addr: bad $1 $2" >&2; return 1 ;; esac
}

# An ECMP route in NS: DEST over nexthop group GROUP of nexthops ID1 (via GW1 dev DEV1) and ID2.
# Nexthop objects, so that a group's members change in one atomic `ip nexthop replace`.
so_ecmp() { # NS FAMILY(4|6) DEST GROUP ID1 GW1 DEV1 ID2 GW2 DEV2
  $IP -n "$1" -"$2" nexthop add id "$5" via "$6" dev "$7"
  $IP -n "$1" -"$2" nexthop add id "$8" via "$9" dev "${10}"
  $IP -n "$1" nexthop add id "$4" group "$5/$8"
  $IP -n "$1" -"$2" route add "$3" nhid "$4"
}

so_setup() {
  local ns d i
  topo_netns $SO_NS
  topo_nic 52:54:00:00:01:01 client eth-a  1500 10.1.0.1/24  fd01::1/64 || return 1
  topo_nic 52:54:00:00:01:02 edge   eth-a  1500 10.1.0.2/24  fd01::2/64 || return 1
  topo_nic 52:54:00:00:04:01 edge   eth-d1 1500 10.11.0.1/24 fd11::1/64 || return 1
  topo_nic 52:54:00:00:04:02 d1     eth-a  1500 10.11.0.2/24 fd11::2/64 || return 1
  topo_nic 52:54:00:00:05:01 edge   eth-d2 1500 10.12.0.1/24 fd12::1/64 || return 1
  topo_nic 52:54:00:00:05:02 d2     eth-a  1500 10.12.0.2/24 fd12::2/64 || return 1
  topo_nic 52:54:00:00:02:01 d1     eth-b  1600 10.2.0.1/24  fd02::1/64 || return 1
  topo_nic 52:54:00:00:02:02 rs1    eth-b  1600 10.2.0.2/24  fd02::2/64 || return 1
  topo_nic 52:54:00:00:02:03 router eth-b  1600 10.2.0.3/24  fd02::3/64 || return 1
  topo_nic 52:54:00:00:02:04 d2     eth-b  1600 10.2.0.4/24  fd02::4/64 || return 1
  topo_nic 52:54:00:00:02:05 edge   eth-b  1600 10.2.0.5/24  fd02::5/64 || return 1
  topo_nic 52:54:00:00:03:01 router eth-c  1600 10.3.0.1/24  fd03::1/64 || return 1
  topo_nic 52:54:00:00:03:02 rs2    eth-c  1600 10.3.0.2/24  fd03::2/64 || return 1
  topo_nic 52:54:00:00:06:01 router eth-c2 1600 10.4.0.1/24  fd04::1/64 || return 1
  topo_nic 52:54:00:00:06:02 rs2    eth-c2 1600 10.4.0.2/24  fd04::2/64 || return 1

  # client: everything behind the edge
  $IP -n client route add default via 10.1.0.2
  $IP -n client -6 route add default via fd01::2

  # edge: the VIPs over both directors, hashed on the transport ports (policy 1)
  sysctl_ns edge net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1 \
    net.ipv4.conf.all.send_redirects=0
  so_ecmp edge 4 $VIP4/32 10 1 10.11.0.2 eth-d1 2 10.12.0.2 eth-d2
  so_ecmp edge 6 $VIP6/128 16 11 fd11::2 eth-d1 12 fd12::2 eth-d2
  $IP -n edge route add 10.30.0.0/24 via 10.2.0.3
  $IP -n edge -6 route add fd30::/64 via fd02::3

  # directors: the VIP on a dummy, no forwarding (IPVS transmits without it), sloppy TCP/SCTP so
  # a director takes over flows another one began; default route back to the edge
  for d in $SO_DIRECTORS; do
    i=${d#d}
    $IP -n "$d" link add vip0 type dummy
    $IP -n "$d" addr add $VIP4/32 dev vip0
    $IP -n "$d" addr add $VIP6/128 dev vip0 nodad
    $IP -n "$d" link set vip0 up
    $IP -n "$d" route add default via "10.1$i.0.1"
    $IP -n "$d" -6 route add default via "fd1$i::1"
    $IP -n "$d" route add 10.30.0.0/24 via 10.2.0.3
    $IP -n "$d" -6 route add fd30::/64 via fd02::3
    sysctl_ns "$d" net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 \
      net.ipv4.conf.all.send_redirects=0 net.ipv4.vs.sloppy_tcp=1 \
      net.ipv4.vs.sloppy_sctp=1 net.ipv4.vs.expire_nodest_conn=1
  done

  # router: link B to rs2's endpoint over both C links (the fabric's ECMP hop)
  sysctl_ns router net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1 \
    net.ipv4.conf.all.send_redirects=0
  $IP -n router route add 10.1.0.0/24 via 10.2.0.5
  $IP -n router -6 route add fd01::/64 via fd02::5
  so_ecmp router 4 $SO_RS2_4/32 20 21 10.3.0.2 eth-c 22 10.4.0.2 eth-c2
  so_ecmp router 6 $SO_RS2_6/128 26 27 fd03::2 eth-c 28 fd04::2 eth-c2

  # real servers: replies straight back through the edge
  $IP -n rs1 route add 10.1.0.0/24 via 10.2.0.5
  $IP -n rs1 -6 route add fd01::/64 via fd02::5
  $IP -n rs2 route add default via 10.3.0.1
  $IP -n rs2 -6 route add default via fd03::1
  $IP -n rs2 addr add $SO_RS2_4/32 dev lo
  $IP -n rs2 addr add $SO_RS2_6/128 dev lo nodad
  for ns in rs1 rs2; do topo_real_server "$ns"; done
}

# Preconditions, one TAP line each: GRO and no tunnel segmentation offload on the directors'
# NICs (the bug's path), both ECMP groups spreading flows, both real servers reachable.
so_preconditions() {
  local d gro tnl paths p
  for d in $SO_DIRECTORS; do
    gro=$(ethtool_feature "$d" eth-a generic-receive-offload)
    tnl=$(ethtool_feature "$d" eth-b tx-udp_tnl-segmentation)
    tap_check "precondition: $d: GRO on at eth-a (got '$gro'), tx-udp_tnl-segmentation off at eth-b (got '$tnl')" \
      [ "$gro" = on -a "$tnl" = off ]
  done
  # 16 client ports to the VIP: the edge's L4 hash must pick both directors.
  paths=$(for p in $(seq 40000 40015); do
    nsx edge $IP route get $VIP4 from 10.1.0.1 iif eth-a ipproto tcp sport "$p" dport 8080 2>/dev/null
  done | grep -o 'dev eth-d[12]' | sort -u | wc -l)
  tap_check "precondition: edge spreads 16 IPv4 flows to the VIP over both directors (got $paths of 2)" [ "$paths" = 2 ]
  paths=$(for p in $(seq 40000 40015); do
    nsx edge $IP -6 route get $VIP6 from fd01::1 iif eth-a ipproto tcp sport "$p" dport 8080 2>/dev/null
  done | grep -o 'dev eth-d[12]' | sort -u | wc -l)
  tap_check "precondition: edge spreads 16 IPv6 flows to the VIP over both directors (got $paths of 2)" [ "$paths" = 2 ]
  tap_check "precondition: client reaches rs1 (ping 10.2.0.2 via the edge)" quiet nsx client ping -c1 -W2 10.2.0.2
  tap_check "precondition: client reaches rs2 over IPv6 (ping $SO_RS2_6 via edge and router)" \
    quiet nsx client ping -6 -c1 -W2 $SO_RS2_6
  for d in $SO_DIRECTORS; do
    tap_check "precondition: $d reaches rs2 (ping $SO_RS2_4 via the router)" quiet nsx "$d" ping -c1 -W2 $SO_RS2_4
  done
}
