//! Decoding of the `ipvs_gue` netlink family's server attributes (what the module runs).

use gue_core::addr::InetAddr;
use gue_core::config::*;
use gue_core::netlink::*;

const A1: [u8; 4] = [10, 8, 0, 1];
const B1: [u8; 16] = [0xfd, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

fn decode(op: ServerOp, attrs: &[(u16, &[u8])]) -> Result<Command, WireFault> {
    decode_server(op, attrs.iter().map(|&(ty, payload)| (ty, payload)))
}

fn fault(attr: Option<usize>, error: WireError) -> Result<Command, WireFault> {
    Err(WireFault { attr, error })
}

#[test]
fn add_defaults_to_no_checksum_and_the_address_as_outer() {
    let got = decode(ServerOp::Add, &[(server_attr::ADDRESS, &A1), (server_attr::PORT, &5501u16.to_ne_bytes())]);
    let addr = InetAddr::v4(A1);
    assert_eq!(got, Ok(Command::Add(addr, RealServerConfig { outer: addr, port: 5501, csum: ChecksumMode::None, flow_label: FlowLabelMode::Zero })));
}

#[test]
fn add_takes_every_setting_of_either_family() {
    let got = decode(
        ServerOp::Add,
        &[(server_attr::ADDRESS, &B1), (server_attr::PORT, &6080u16.to_ne_bytes()), (server_attr::CSUM, &[2]), (server_attr::OUTER, &A1)],
    );
    let config = RealServerConfig { outer: InetAddr::v4(A1), port: 6080, csum: ChecksumMode::RemoteOffload, flow_label: FlowLabelMode::Zero };
    assert_eq!(got, Ok(Command::Add(InetAddr::v6(B1), config)));
    let got = decode(
        ServerOp::Add,
        &[(server_attr::ADDRESS, &B1), (server_attr::PORT, &6080u16.to_ne_bytes()), (server_attr::FLOWLABEL, &[1])],
    );
    let config = RealServerConfig { outer: InetAddr::v6(B1), port: 6080, csum: ChecksumMode::None, flow_label: FlowLabelMode::Hash };
    assert_eq!(got, Ok(Command::Add(InetAddr::v6(B1), config)));
}

#[test]
fn refusals_name_the_attribute_at_fault() {
    assert_eq!(
        decode(ServerOp::Add, &[(server_attr::PORT, &[0, 1]), (server_attr::ADDRESS, &[1, 2, 3, 4, 5])]),
        fault(Some(1), WireError::BadAddressLength)
    );
    assert_eq!(decode(ServerOp::Add, &[(server_attr::ADDRESS, &A1), (server_attr::PORT, &[0, 0])]), fault(Some(1), WireError::ZeroPort));
    assert_eq!(decode(ServerOp::Add, &[(server_attr::ADDRESS, &A1), (server_attr::PORT, &[1])]), fault(Some(1), WireError::Truncated));
    assert_eq!(decode(ServerOp::Edit, &[(server_attr::ADDRESS, &A1), (server_attr::CSUM, &[3])]), fault(Some(1), WireError::BadChecksumMode));
    assert_eq!(decode(ServerOp::Edit, &[(server_attr::ADDRESS, &A1), (server_attr::FLOWLABEL, &[2])]), fault(Some(1), WireError::BadFlowLabelMode));
    assert_eq!(decode(ServerOp::Edit, &[(server_attr::ADDRESS, &A1), (server_attr::FLOWLABEL, &[])]), fault(Some(1), WireError::Truncated));
    assert_eq!(decode(ServerOp::Delete, &[(server_attr::ADDRESS, &A1), (server_attr::FLOWLABEL, &[1])]), fault(Some(1), WireError::Unexpected));
    assert_eq!(decode(ServerOp::Add, &[(server_attr::ADDRESS, &A1), (server_attr::STATS, &[])]), fault(Some(1), WireError::Unexpected));
    assert_eq!(decode(ServerOp::Delete, &[(server_attr::ADDRESS, &A1), (server_attr::PORT, &[0, 1])]), fault(Some(1), WireError::Unexpected));
}

#[test]
fn missing_attributes_are_named_without_an_index() {
    assert_eq!(decode(ServerOp::Add, &[(server_attr::PORT, &[0, 1])]), fault(None, WireError::MissingAddress));
    assert_eq!(decode(ServerOp::Add, &[(server_attr::ADDRESS, &A1)]), fault(None, WireError::MissingPort));
    assert_eq!(decode(ServerOp::Edit, &[(server_attr::ADDRESS, &A1)]), fault(None, WireError::NothingToEdit));
    assert_eq!(decode(ServerOp::Delete, &[]), fault(None, WireError::MissingAddress));
}

#[test]
fn edit_changes_only_what_it_names_and_the_last_repeat_counts() {
    let got = decode(ServerOp::Edit, &[(server_attr::ADDRESS, &A1), (server_attr::CSUM, &[0]), (server_attr::CSUM, &[1])]);
    let edit = EditFields { csum: Some(ChecksumMode::Udp), ..EditFields::default() };
    assert_eq!(got, Ok(Command::Edit(InetAddr::v4(A1), edit)));
    let got = decode(ServerOp::Edit, &[(server_attr::ADDRESS, &A1), (server_attr::FLOWLABEL, &[1])]);
    let edit = EditFields { flow_label: Some(FlowLabelMode::Hash), ..EditFields::default() };
    assert_eq!(got, Ok(Command::Edit(InetAddr::v4(A1), edit)));
}

#[test]
fn checksum_modes_round_trip_and_the_policy_maximum_is_the_last() {
    for mode in [ChecksumMode::None, ChecksumMode::Udp, ChecksumMode::RemoteOffload] {
        assert_eq!(csum_from_wire(csum_to_wire(mode)), Some(mode));
        assert!(csum_to_wire(mode) <= CSUM_WIRE_MAX);
    }
    assert_eq!(csum_from_wire(CSUM_WIRE_MAX + 1), None);
}

#[test]
fn flow_label_modes_round_trip_and_the_policy_maximum_is_the_last() {
    for mode in [FlowLabelMode::Zero, FlowLabelMode::Hash] {
        assert_eq!(flow_label_from_wire(flow_label_to_wire(mode)), Some(mode));
        assert!(flow_label_to_wire(mode) <= FLOWLABEL_WIRE_MAX);
    }
    assert_eq!(flow_label_to_wire(FlowLabelMode::default()), 0, "the spec's default is the wire's 0");
    assert_eq!(flow_label_from_wire(FLOWLABEL_WIRE_MAX + 1), None);
}

#[test]
fn every_message_fits_an_extack() {
    for error in [
        WireError::BadAddressLength, WireError::Truncated, WireError::BadChecksumMode, WireError::BadFlowLabelMode,
        WireError::ZeroPort,
        WireError::MissingAddress, WireError::MissingPort, WireError::NothingToEdit, WireError::Unexpected,
    ] {
        assert!(error.message().len() < 80, "{error:?}");
    }
}
