//! ObjectId text form: strict parsing, lowercase formatting.

use std::collections::HashSet;

use helios_object_id::{ObjectId, ObjectIdError};

const HEX: &str = "65f1a2b3c4d5e6f708091a2b";

#[test]
fn hex_round_trips_through_parse_and_display() {
    let id: ObjectId = HEX.parse().expect("valid id");
    assert_eq!(id.to_string(), HEX);
    assert_eq!(id.to_hex(), HEX);
    assert_eq!(ObjectId::parse_hex(&id.to_string()), Ok(id));
}

#[test]
fn parsing_accepts_upper_case_and_formats_lower_case() {
    let id: ObjectId = HEX.to_ascii_uppercase().parse().expect("valid id");
    assert_eq!(id.to_string(), HEX);
}

#[test]
fn parts_round_trip_through_text() {
    let id = ObjectId::from_parts(1_796_066_503, [1, 2, 3, 4, 5], 0x00AB_CDEF).unwrap();
    let parsed: ObjectId = id.to_string().parse().unwrap();
    assert_eq!(parsed.timestamp_secs(), 1_796_066_503);
    assert_eq!(parsed.node_id(), [1, 2, 3, 4, 5]);
    assert_eq!(parsed.counter(), 0x00AB_CDEF);
}

#[test]
fn wrong_lengths_are_rejected_with_the_length() {
    assert_eq!(
        HEX[..23].parse::<ObjectId>(),
        Err(ObjectIdError::InvalidLength { len: 23 })
    );
    assert_eq!(
        format!("{HEX}0").parse::<ObjectId>(),
        Err(ObjectIdError::InvalidLength { len: 25 })
    );
    assert_eq!(
        "".parse::<ObjectId>(),
        Err(ObjectIdError::InvalidLength { len: 0 })
    );
}

#[test]
fn non_hex_characters_are_rejected_with_their_position() {
    let bad = format!("{}g{}", &HEX[..5], &HEX[6..]);
    assert_eq!(
        bad.parse::<ObjectId>(),
        Err(ObjectIdError::InvalidChar {
            index: 5,
            found: 'g'
        })
    );
}

#[test]
fn whitespace_signs_and_prefixes_are_not_trimmed() {
    for bad in [
        format!(" {}", &HEX[1..]),
        format!("{} ", &HEX[..23]),
        format!("0x{}", &HEX[2..]),
        format!("+{}", &HEX[1..]),
    ] {
        assert!(
            matches!(
                bad.parse::<ObjectId>(),
                Err(ObjectIdError::InvalidChar { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn non_ascii_input_is_an_error_not_a_panic() {
    // 22 hex digits + one 2-byte char = 24 bytes.
    let bad = format!("{}é", &HEX[..22]);
    assert_eq!(bad.len(), 24);
    assert_eq!(
        bad.parse::<ObjectId>(),
        Err(ObjectIdError::InvalidChar {
            index: 22,
            found: 'é'
        })
    );
}

#[test]
fn errors_explain_what_was_expected() {
    let message = "abc".parse::<ObjectId>().unwrap_err().to_string();
    assert!(message.contains("24 hex digits"), "{message}");
    assert!(message.contains('3'), "{message}");
}

#[test]
fn ids_are_hashable_and_copy() {
    let id: ObjectId = HEX.parse().unwrap();
    let copy = id;
    let set: HashSet<ObjectId> = [id, copy].into_iter().collect();
    assert_eq!(set.len(), 1);
}
