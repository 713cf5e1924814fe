// SPDX-License-Identifier: GPL-2.0
/* One-line C helpers for macros and sk_buff bitfields; see shim.h. */
#include <linux/capability.h>
#include <linux/seq_file_net.h>
#include <linux/proc_fs.h>
#include <net/ip.h>
#include <net/ip_tunnels.h>
#include <net/ip6_route.h>
#include <net/route.h>
#include <net/ipv6.h>
#include <net/genetlink.h>
#include "shim.h"

unsigned int ipvs_gue_dst_ll_reserved_space(const struct dst_entry *dst)
{
	return LL_RESERVED_SPACE(dst->dev);
}

bool ipvs_gue_skb_from_device(const struct sk_buff *skb)
{
	return skb->dev;
}

int ipvs_gue_skb_header_unclone(struct sk_buff *skb)
{
	return skb_header_unclone(skb, GFP_ATOMIC);
}

struct sk_buff *ipvs_gue_skb_realloc_headroom(struct sk_buff *skb, unsigned int headroom)
{
	return skb_realloc_headroom(skb, headroom);
}

bool ipvs_gue_skb_ipvs_property(const struct sk_buff *skb)
{
	return skb->ipvs_property;
}

void ipvs_gue_skb_set_ipvs_property(struct sk_buff *skb)
{
	skb->ipvs_property = 1;
}

void ipvs_gue_skb_set_encapsulation(struct sk_buff *skb, bool on)
{
	skb->encapsulation = on;
}

bool ipvs_gue_skb_encapsulation(const struct sk_buff *skb)
{
	return skb->encapsulation;
}

void ipvs_gue_skb_set_ignore_df(struct sk_buff *skb)
{
	skb->ignore_df = 1;
}

unsigned int ipvs_gue_skb_ip_summed(const struct sk_buff *skb)
{
	return skb->ip_summed;
}

void ipvs_gue_skb_set_ip_summed(struct sk_buff *skb, unsigned int ip_summed)
{
	skb->ip_summed = ip_summed;
}

void ipvs_gue_skb_set_inner_ipproto(struct sk_buff *skb, u8 ipproto)
{
	skb_set_inner_ipproto(skb, ipproto);
}

unsigned short ipvs_gue_skb_gso_segs(const struct sk_buff *skb)
{
	return skb_shinfo(skb)->gso_segs;
}

void ipvs_gue_skb_add_gso_type(struct sk_buff *skb, unsigned int gso_type)
{
	skb_shinfo(skb)->gso_type |= gso_type;
}

unsigned short ipvs_gue_skb_csum_offset(const struct sk_buff *skb)
{
	return skb->csum_offset;
}

void ipvs_gue_skb_set_csum_start_offset(struct sk_buff *skb, unsigned short start, unsigned short offset)
{
	skb->csum_start = start;
	skb->csum_offset = offset;
}

void ipvs_gue_rcu_read_lock(void)
{
	rcu_read_lock();
}

void ipvs_gue_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

void *ipvs_gue_seq_pde_data(struct seq_file *seq)
{
	return pde_data(file_inode(seq->file));
}

struct sock *ipvs_gue_skb_sk(const struct sk_buff *skb)
{
	return skb->sk;
}

void ipvs_gue_skb_set_dev(struct sk_buff *skb, struct net_device *dev)
{
	skb->dev = dev;
}

u16 ipvs_gue_skb_frag_max_size(const struct sk_buff *skb, bool v6)
{
	return v6 ? IP6CB(skb)->frag_max_size : IPCB(skb)->frag_max_size;
}

void ipvs_gue_skb_set_frag_max_size(struct sk_buff *skb, bool v6, u16 size)
{
	*(v6 ? &IP6CB(skb)->frag_max_size : &IPCB(skb)->frag_max_size) = size;
}

bool ipvs_gue_dst_dev_is_loopback(const struct dst_entry *dst)
{
	return dst->dev && (dst->dev->flags & IFF_LOOPBACK);
}

unsigned short ipvs_gue_dst_family(const struct dst_entry *dst)
{
	return dst->ops->family;
}

/*
 * The outer packet this CPU is sending (compared, never dereferenced); see skb.rs `send`.
 * Never set on PREEMPT_RT, where a task with bottom halves off can be preempted by another
 * that passes LOCAL_OUT meanwhile: there every packet is classified (correct, only slower).
 */
static DEFINE_PER_CPU(const struct sk_buff *, ipvs_gue_own_output);

const struct sk_buff *ipvs_gue_swap_own_output(const struct sk_buff *skb)
{
	return IS_ENABLED(CONFIG_PREEMPT_RT) ? NULL : this_cpu_xchg(ipvs_gue_own_output, skb);
}

bool ipvs_gue_is_own_output(const struct sk_buff *skb)
{
	return this_cpu_read(ipvs_gue_own_output) == skb;
}

size_t ipvs_gue_genlmsg_default_size(void)
{
	return GENLMSG_DEFAULT_SIZE;
}

u32 ipvs_gue_netlink_cb_portid(const struct sk_buff *skb)
{
	return NETLINK_CB(skb).portid;
}

struct net *ipvs_gue_sock_net_of(const struct sk_buff *skb)
{
	return sock_net(skb->sk);
}

void ipvs_gue_extack_set(struct netlink_ext_ack *extack, const struct nlattr *attr, const char *msg, size_t len)
{
	NL_SET_ERR_MSG_FMT(extack, "%.*s", (int)len, msg);
	NL_SET_BAD_ATTR(extack, attr);
}

void ipvs_gue_extack_missing(struct netlink_ext_ack *extack, const struct nlattr *nest, int type, const char *msg, size_t len)
{
	NL_SET_ERR_MSG_FMT(extack, "%.*s", (int)len, msg);
	NL_SET_ERR_ATTR_MISS(extack, nest, type);
}

void __percpu *ipvs_gue_alloc_percpu(size_t size, size_t align)
{
	return __alloc_percpu_gfp(size, align, GFP_KERNEL_ACCOUNT);
}

void *ipvs_gue_per_cpu_ptr(void __percpu *ptr, int cpu)
{
	return per_cpu_ptr(ptr, cpu);
}

void *ipvs_gue_raw_cpu_ptr(void __percpu *ptr)
{
	return raw_cpu_ptr(ptr);
}

int ipvs_gue_next_possible_cpu(int cpu)
{
	unsigned int next = cpumask_next(cpu, cpu_possible_mask);

	return next < nr_cpu_ids ? next : -1;
}
