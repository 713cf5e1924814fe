use core::fmt::Write;

use gue_core::text::FixedText;

#[test]
fn keeps_what_fits() {
    let mut t = FixedText::<16>::new();
    let line = 3;
    write!(t, "line {line}: bad").unwrap();
    assert_eq!(t.as_str(), "line 3: bad");
}

#[test]
fn cuts_at_capacity_without_failing() {
    let mut t = FixedText::<8>::new();
    t.write_str("0123456789abcdef").unwrap();
    assert_eq!(t.as_str(), "01234567");
    t.write_str("more").unwrap();
    assert_eq!(t.as_str(), "01234567");
}

#[test]
fn never_splits_a_char() {
    let mut t = FixedText::<5>::new();
    t.write_str("abcé").unwrap(); // 'é' is 2 bytes ending at byte 5: fits exactly
    assert_eq!(t.as_str(), "abcé");
    let mut t = FixedText::<4>::new();
    t.write_str("abcé").unwrap();
    assert_eq!(t.as_str(), "abc");
}
