// SPDX-License-Identifier: GPL-2.0
//! Independent reference implementations the wire tests check the shipped code against.

pub mod checksum;
pub mod fou;
