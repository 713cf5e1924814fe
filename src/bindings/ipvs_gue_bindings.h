/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel headers ipvs_gue's own bindgen run reads. 6.12's `kernel` crate does not
 * wrap networking (sk_buff internals, netfilter, routing, IPVS), so the module generates
 * raw bindings for exactly what it uses; src/bindings.rs is the only place they are named.
 */
#include <linux/skbuff.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/seq_file_net.h>
#include <linux/capability.h>
#include <linux/rcupdate.h>
#include <linux/bottom_half.h>
#include <linux/percpu.h>
#include <linux/random.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/icmp.h>
#include <net/route.h>
#include <net/ip6_route.h>
#include <net/udp.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>
#include <net/netfilter/nf_conntrack.h>
#include <net/ip_vs.h>
#include <net/netlink.h>
#include <net/genetlink.h>

#include "shim.h"
