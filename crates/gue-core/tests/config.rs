//! The configuration model: edits, refusals and their errnos.

use gue_core::addr::InetAddr;
use gue_core::config::*;

fn a(s: &str) -> InetAddr {
    InetAddr::parse(s).unwrap()
}

#[test]
fn an_edit_changes_only_what_it_names() {
    let config = RealServerConfig { outer: a("10.0.0.1"), port: 5501, csum: ChecksumMode::None, flow_label: FlowLabelMode::Zero };
    let edit = EditFields { csum: Some(ChecksumMode::Udp), ..EditFields::default() };
    assert!(!edit.is_empty());
    assert_eq!(edit.apply_to(&config), RealServerConfig { csum: ChecksumMode::Udp, ..config });
    let edit = EditFields { flow_label: Some(FlowLabelMode::Hash), ..EditFields::default() };
    assert!(!edit.is_empty());
    assert_eq!(edit.apply_to(&config), RealServerConfig { flow_label: FlowLabelMode::Hash, ..config });
    assert!(EditFields::default().is_empty());
    assert_eq!(EditFields::default().apply_to(&config), config);
}

#[test]
fn refusals_carry_their_errno_and_name_the_server() {
    assert_eq!(ConfigError::AlreadyExists(a("1.2.3.4")).errno(), EEXIST);
    assert_eq!(ConfigError::NotFound(a("1.2.3.4")).errno(), ENOENT);
    assert_eq!(ConfigError::TableFull.errno(), ENOSPC);
    assert_eq!(ConfigError::AlreadyExists(a("fd00::1")).to_string(), "real server fd00::1 already exists; use edit");
    assert_eq!(ConfigError::NotFound(a("1.2.3.4")).to_string(), "real server 1.2.3.4 does not exist");
    assert_eq!(ConfigError::TableFull.to_string(), "table full: at most 1048576 real servers");
}

#[test]
fn checksum_modes_are_listed_by_their_names() {
    let names: Vec<_> = [ChecksumMode::None, ChecksumMode::Udp, ChecksumMode::RemoteOffload]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["none", "udp", "remcsum"]);
    assert_eq!(ChecksumMode::default(), ChecksumMode::None);
}

#[test]
fn flow_label_modes_are_listed_by_their_names_and_default_to_zero() {
    assert_eq!(FlowLabelMode::Zero.to_string(), "zero");
    assert_eq!(FlowLabelMode::Hash.to_string(), "hash");
    assert_eq!(FlowLabelMode::default(), FlowLabelMode::Zero, "the C path's behaviour");
}

#[test]
fn the_edit_from_a_config_sets_every_setting() {
    let config = RealServerConfig { outer: a("fd00::9"), port: 6080, csum: ChecksumMode::Udp, flow_label: FlowLabelMode::Hash };
    let other = RealServerConfig { outer: a("10.0.0.1"), port: 1, csum: ChecksumMode::None, flow_label: FlowLabelMode::Zero };
    assert_eq!(EditFields::from(config).apply_to(&other), config);
}
