use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fields(b: &Block) -> Vec<(&str, &str)> {
    b.fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

impl Decoder {
    fn dynamic(&self) -> Vec<(String, String)> {
        self.table
            .iter()
            .map(|s| match s {
                Slot::Known { name, value, .. } => (name.to_string(), value.to_string()),
                Slot::Unknown { .. } => ("?".into(), "?".into()),
            })
            .collect()
    }
}

const BIG: usize = 1 << 20;

fn requests(blocks: [&str; 3]) {
    let mut d = Decoder::new();
    let b = d.decode(&hex(blocks[0]), BIG);
    assert!(b.complete());
    assert_eq!(
        fields(&b),
        [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com")
        ]
    );
    assert_eq!(d.bytes, 57);
    let b = d.decode(&hex(blocks[1]), BIG);
    assert_eq!(fields(&b)[4], ("cache-control", "no-cache"));
    assert_eq!(d.bytes, 110);
    let b = d.decode(&hex(blocks[2]), BIG);
    assert_eq!(
        fields(&b),
        [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value")
        ]
    );
    assert_eq!(d.bytes, 164);
    assert_eq!(d.dynamic()[0], ("custom-key".into(), "custom-value".into()));
}

#[test]
fn rfc7541_c3_requests_without_huffman() {
    requests([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]);
}

#[test]
fn rfc7541_c4_requests_with_huffman() {
    requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]);
}

fn responses(blocks: [&str; 3]) {
    let mut d = Decoder::new();
    d.set_limit(256);
    let b = d.decode(&hex(blocks[0]), BIG);
    assert!(b.complete());
    assert_eq!(
        fields(&b),
        [
            (":status", "302"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("location", "https://www.example.com")
        ]
    );
    assert_eq!(d.bytes, 222);
    let b = d.decode(&hex(blocks[1]), BIG);
    assert_eq!(fields(&b)[0], (":status", "307"));
    assert_eq!(fields(&b)[3], ("location", "https://www.example.com"));
    assert_eq!(d.bytes, 222);
    assert_eq!(d.dynamic()[3], ("cache-control".into(), "private".into()));
    let b = d.decode(&hex(blocks[2]), BIG);
    assert!(b.complete());
    assert_eq!(
        fields(&b),
        [
            (":status", "200"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
            ("location", "https://www.example.com"),
            ("content-encoding", "gzip"),
            (
                "set-cookie",
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
            )
        ]
    );
    assert_eq!(d.bytes, 215);
    assert_eq!(
        d.dynamic(),
        [
            (
                "set-cookie".to_string(),
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1".to_string()
            ),
            ("content-encoding".into(), "gzip".into()),
            ("date".into(), "Mon, 21 Oct 2013 20:13:22 GMT".into()),
        ]
    );
}

#[test]
fn rfc7541_c5_responses_with_eviction() {
    responses([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
         6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d \
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 \
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
    ]);
}

#[test]
fn rfc7541_c6_responses_with_huffman() {
    responses([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ]);
}

#[test]
fn rfc7541_c2_literals() {
    // C.2.1 literal with indexing, C.2.2 without, C.2.3 never indexed, C.2.4 indexed.
    let mut d = Decoder::new();
    let b = d.decode(
        &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
        BIG,
    );
    assert_eq!(fields(&b), [("custom-key", "custom-header")]);
    assert_eq!(d.bytes, 55);
    let b = d.decode(&hex("040c 2f73 616d 706c 652f 7061 7468"), BIG);
    assert_eq!(fields(&b), [(":path", "/sample/path")]);
    let b = d.decode(&hex("1008 7061 7373 776f 7264 0673 6563 7265 74"), BIG);
    assert_eq!(fields(&b), [("password", "secret")]);
    assert_eq!(d.bytes, 55, "neither is added to the table");
    let b = d.decode(&hex("82"), BIG);
    assert_eq!(fields(&b), [(":method", "GET")]);
}

#[test]
fn unknown_state_counts_what_it_cannot_decode_and_recovers() {
    let mut d = Decoder::unknown();
    // Indexed static, indexed dynamic (unknown), literal with unknown dynamic name
    // inserted, literal with a new name inserted.
    let mut block = hex("82 be");
    block.extend(hex("7f00 03 616263")); // literal, incremental, name index 62+1-1? (63)
    block.extend(hex(
        "400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ));
    let b = d.decode(&block, BIG);
    assert_eq!(b.unknown, 2);
    assert!(b.error.is_none());
    assert_eq!(
        fields(&b),
        [(":method", "GET"), ("custom-key", "custom-value")]
    );
    // The newest entry (index 62) is known, the one before it (63) is not, older
    // ones neither.
    let b = d.decode(&hex("be bf c0"), BIG);
    assert_eq!(fields(&b), [("custom-key", "custom-value")]);
    assert_eq!(b.unknown, 2);
    assert!(d.is_uncertain());
    // A size update to 0 empties the table: the state is fully known again.
    let b = d.decode(&hex("20 3fe1 1f 82"), BIG);
    assert!(b.complete());
    assert!(!d.is_uncertain());
    let b = d.decode(&hex("be"), BIG);
    assert_eq!(b.error, Some(HpackError::BadIndex));
}

#[test]
fn known_entries_filling_the_table_push_out_the_unknown_tail() {
    let mut d = Decoder::unknown();
    // A size update makes the size known; then 4 entries of 32+1+31=64 bytes fill 256.
    d.decode(&hex("3fe1 01"), BIG); // size update to 256
    assert!(d.is_uncertain());
    for c in b'a'..=b'd' {
        let mut block = vec![0x40, 0x01, c, 0x1f];
        block.extend(std::iter::repeat_n(b'x', 31));
        d.decode(&block, BIG);
    }
    assert!(!d.is_uncertain(), "no room is left for an older entry");
    let b = d.decode(&hex("c1"), BIG);
    assert_eq!(fields(&b)[0].0, "a");
}

#[test]
fn errors_and_limits() {
    let mut d = Decoder::new();
    assert_eq!(d.decode(&hex("3f"), BIG).error, Some(HpackError::Truncated));
    let mut d = Decoder::new();
    assert_eq!(
        d.decode(&hex("ff ff ff ff ff ff ff 01"), BIG).error,
        Some(HpackError::IntegerOverflow)
    );
    let mut d = Decoder::new();
    assert_eq!(d.decode(&hex("80"), BIG).error, Some(HpackError::BadIndex));
    assert!(d.is_uncertain(), "a broken block leaves the table unknown");
    let mut d = Decoder::new();
    assert_eq!(
        d.decode(&hex("4081 00 00"), BIG).error,
        Some(HpackError::BadHuffman)
    );
    // Kept fields stop at the limit; the table still learns them.
    let mut d = Decoder::new();
    let b = d.decode(
        &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
        30,
    );
    assert_eq!(b.fields.len(), 3);
    assert_eq!(b.dropped, 1);
    assert_eq!(d.bytes, 57);
    // A size update above SETTINGS is flagged (and followed).
    let mut d = Decoder::new();
    d.set_limit(100);
    assert!(d.decode(&hex("3f 9a 0a"), BIG).bad_size_update);
}

#[test]
fn first_field_tells_requests_from_responses() {
    assert_eq!(first_field_sender(&hex("8286")), Some(Sender::Client));
    assert_eq!(first_field_sender(&hex("88")), Some(Sender::Server));
    assert_eq!(
        first_field_sender(&hex("40 07 3a737461747573 03 323030")),
        Some(Sender::Server)
    );
    assert_eq!(first_field_sender(&hex("20 83")), Some(Sender::Client));
    assert_eq!(first_field_sender(&hex("be")), None);
    assert_eq!(first_field_sender(&hex("")), None);
}

proptest::proptest! {
    #[test]
    fn random_blocks_never_panic(
        blocks in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..64), 1..8),
        unknown in proptest::bool::ANY,
    ) {
        let mut d = if unknown { Decoder::unknown() } else { Decoder::new() };
        for b in &blocks {
            let out = d.decode(b, 256);
            proptest::prop_assert!(out.fields.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>() <= 256);
            let _ = first_field_sender(b);
        }
        proptest::prop_assert!(d.bytes <= MAX_TRACKED_TABLE_BYTES);
    }
}
