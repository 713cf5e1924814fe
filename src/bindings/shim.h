/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C for what bindgen cannot express: macros (LL_RESERVED_SPACE, GFP flags) and the
 * bitfields of sk_buff whose generated accessor names depend on bindgen's numbering.
 * Each helper is one line of C; the logic stays in Rust.
 */
#ifndef IPVS_GUE_SHIM_H
#define IPVS_GUE_SHIM_H

#include <linux/skbuff.h>
#include <linux/netdevice.h>
#include <net/dst.h>
#include <net/genetlink.h>

unsigned int ipvs_gue_dst_ll_reserved_space(const struct dst_entry *dst);
bool ipvs_gue_skb_from_device(const struct sk_buff *skb);
int ipvs_gue_skb_header_unclone(struct sk_buff *skb);
struct sk_buff *ipvs_gue_skb_realloc_headroom(struct sk_buff *skb, unsigned int headroom);
bool ipvs_gue_skb_ipvs_property(const struct sk_buff *skb);
void ipvs_gue_skb_set_ipvs_property(struct sk_buff *skb);
void ipvs_gue_skb_set_encapsulation(struct sk_buff *skb, bool on);
bool ipvs_gue_skb_encapsulation(const struct sk_buff *skb);
void ipvs_gue_skb_set_ignore_df(struct sk_buff *skb);
unsigned int ipvs_gue_skb_ip_summed(const struct sk_buff *skb);
void ipvs_gue_skb_set_ip_summed(struct sk_buff *skb, unsigned int ip_summed);
void ipvs_gue_skb_set_inner_ipproto(struct sk_buff *skb, u8 ipproto);
unsigned short ipvs_gue_skb_gso_segs(const struct sk_buff *skb);
void ipvs_gue_skb_add_gso_type(struct sk_buff *skb, unsigned int gso_type);
unsigned short ipvs_gue_skb_csum_offset(const struct sk_buff *skb);
void ipvs_gue_skb_set_csum_start_offset(struct sk_buff *skb, unsigned short start, unsigned short offset);
void ipvs_gue_rcu_read_lock(void);
void ipvs_gue_rcu_read_unlock(void);
void *ipvs_gue_seq_pde_data(struct seq_file *seq);
struct sock *ipvs_gue_skb_sk(const struct sk_buff *skb);
void ipvs_gue_skb_set_dev(struct sk_buff *skb, struct net_device *dev);
u16 ipvs_gue_skb_frag_max_size(const struct sk_buff *skb, bool v6);
void ipvs_gue_skb_set_frag_max_size(struct sk_buff *skb, bool v6, u16 size);
bool ipvs_gue_dst_dev_is_loopback(const struct dst_entry *dst);
void __percpu *ipvs_gue_alloc_percpu(size_t size, size_t align);
void *ipvs_gue_per_cpu_ptr(void __percpu *ptr, int cpu);
void *ipvs_gue_raw_cpu_ptr(void __percpu *ptr);
int ipvs_gue_next_possible_cpu(int cpu);
unsigned short ipvs_gue_dst_family(const struct dst_entry *dst);
const struct sk_buff *ipvs_gue_swap_own_output(const struct sk_buff *skb);
bool ipvs_gue_is_own_output(const struct sk_buff *skb);

size_t ipvs_gue_genlmsg_default_size(void);
u32 ipvs_gue_netlink_cb_portid(const struct sk_buff *skb);
struct net *ipvs_gue_sock_net_of(const struct sk_buff *skb);
void ipvs_gue_extack_set(struct netlink_ext_ack *extack, const struct nlattr *attr, const char *msg, size_t len);
void ipvs_gue_extack_missing(struct netlink_ext_ack *extack, const struct nlattr *nest, int type, const char *msg, size_t len);

#endif
