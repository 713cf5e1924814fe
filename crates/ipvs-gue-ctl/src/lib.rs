// SPDX-License-Identifier: GPL-2.0

//! The `ipvs_gue` generic netlink client behind `ipvs-gue-ctl`: the family's messages as bytes
//! ([`wire`]), the connection that sends them and collects their answers ([`netlink`]), and
//! the kernel's refusals with their extended acks ([`extack`]). A library so that other tools
//! (the harness's configuration stress) drive the module through this same client.

pub mod extack;
pub mod netlink;
pub mod wire;
