//! Cross-check against the official `iscc-lib` crate on generated inputs:
//! our header decode, decompose, compose and ISCC-ID agree with it.

use iscc_lib::codec as lib;
use iscc_vdb::codec::{compose, Iscc, IsccId, Kind, Realm, Unit, UnitType};
use proptest::prelude::*;

/// iscc-lib's header fields of a base32 string as plain integers.
fn lib_header(iscc: &str) -> (u8, u8, u8, u32) {
    let clean = iscc.trim_start_matches("ISCC:");
    let raw = lib::decode_base32(clean).expect("iscc-lib decodes base32");
    let (mt, st, vs, ln, _) = lib::decode_header(&raw).expect("iscc-lib decodes header");
    let version = match vs {
        lib::Version::V0 => 0,
        lib::Version::V1 => 1,
        _ => u8::MAX,
    };
    (mt as u8, st as u8, version, ln)
}

fn our_header(iscc: &str) -> (u8, u8, u8, u32) {
    let h = Iscc::parse(iscc).expect("we parse").first().header();
    (h.main_type.code(), h.sub_type, h.version, h.length)
}

fn with_prefix(s: String) -> String {
    if s.starts_with("ISCC:") {
        s
    } else {
        format!("ISCC:{s}")
    }
}

/// A unit of a similarity or instance type: (MainType, SubType).
fn unit_kind() -> impl Strategy<Value = (u8, u8)> {
    prop_oneof![
        Just((0u8, 0u8)),
        (0u8..5).prop_map(|st| (1, st)),
        (0u8..5).prop_map(|st| (2, st)),
        Just((3, 0)),
        Just((4, 0)),
        Just((7, 0)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Single units of every type and length 32..=320 bits.
    #[test]
    fn units_agree(
        (mt, st) in unit_kind(),
        words in 1usize..=10,
        digest in proptest::collection::vec(any::<u8>(), 40),
    ) {
        let bits = (words * 32) as u32;
        let theirs = with_prefix(iscc_lib::encode_component(mt, st, 0, bits, &digest).unwrap());
        prop_assert_eq!(our_header(&theirs), lib_header(&theirs));
        let iscc = Iscc::parse(&theirs).unwrap();
        prop_assert_eq!(iscc.first().to_string(), theirs.clone());
        let ours: Vec<String> = iscc.units().iter().map(|u| u.to_string()).collect();
        let lib_units: Vec<String> =
            iscc_lib::iscc_decompose(&theirs).unwrap().into_iter().map(with_prefix).collect();
        prop_assert_eq!(ours, lib_units);
        // Building the unit from its parts gives the same string.
        let ut = UnitType::new(iscc.first().header().main_type, st, 0).unwrap();
        let unit = Unit::new(ut, &digest[..bits as usize / 8]).unwrap();
        prop_assert_eq!(unit.to_string(), theirs);
    }

    /// ISCC-CODEs from every combination of optional units, any unit
    /// lengths, standard and WIDE.
    #[test]
    fn codes_agree(
        meta in any::<bool>(),
        semantic in any::<bool>(),
        content in any::<bool>(),
        content_st in 0u8..5,
        words in proptest::collection::vec(2usize..=8, 5),
        wide in any::<bool>(),
        digest in proptest::collection::vec(any::<u8>(), 32),
    ) {
        let mut strings = Vec::new();
        let mut units = Vec::new();
        let mut push = |mt: u8, st: u8, w: usize| {
            let bits = (w * 32) as u32;
            let s = with_prefix(iscc_lib::encode_component(mt, st, 0, bits, &digest).unwrap());
            units.push(Unit::parse(&s).unwrap());
            strings.push(s);
        };
        if meta { push(0, 0, words[0]); }
        if semantic { push(1, content_st, words[1]); }
        if content { push(2, content_st, words[2]); }
        push(3, 0, words[3]);
        push(4, 0, words[4]);
        // Order must not matter: reverse the input for both.
        strings.reverse();
        units.reverse();
        let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
        let theirs = iscc_lib::gen_iscc_code_v0(&refs, wide).unwrap().iscc;
        let ours = compose(&units, wide).unwrap().to_string();
        prop_assert_eq!(&ours, &theirs);
        prop_assert_eq!(our_header(&theirs), lib_header(&theirs));
        let parsed = Iscc::parse(&theirs).unwrap();
        prop_assert_eq!(parsed.kind(), Kind::Code);
        let decomposed: Vec<String> = parsed.units().iter().map(|u| u.to_string()).collect();
        let lib_units: Vec<String> =
            iscc_lib::iscc_decompose(&theirs).unwrap().into_iter().map(with_prefix).collect();
        prop_assert_eq!(&decomposed, &lib_units);
        // The decomposed units written back to back (bytes, then base32)
        // normalise to the code, as in iscc-lib.
        let bytes: Vec<u8> = parsed
            .units()
            .iter()
            .flat_map(|u| u.to_component().to_bytes())
            .collect();
        let seq = Iscc::parse(&iscc_vdb::codec::text::encode(&bytes)).unwrap();
        prop_assert_eq!(seq.kind(), if decomposed.len() > 1 { Kind::Sequence } else { Kind::Unit });
        if !theirs.starts_with("ISCC:K4") {
            prop_assert_eq!(seq.canonical(), Some(theirs.clone()));
        }
    }

    /// Codes from iscc-lib's real generators at every index length.
    #[test]
    fn generated_content_codes_agree(
        text in "[a-z ]{20,200}",
        data in proptest::collection::vec(any::<u8>(), 1..3000),
        pixels in proptest::collection::vec(any::<u8>(), 1024),
        bits in prop_oneof![Just(64u32), Just(128), Just(192), Just(256)],
        wide in any::<bool>(),
    ) {
        let codes = [
            iscc_lib::gen_text_code_v0(&text, bits).unwrap().iscc,
            iscc_lib::gen_image_code_v0(&pixels, bits).unwrap().iscc,
            iscc_lib::gen_data_code_v0(&data, bits).unwrap().iscc,
            iscc_lib::gen_instance_code_v0(&data, bits).unwrap().iscc,
        ];
        for code in &codes {
            prop_assert_eq!(our_header(code), lib_header(code));
            let unit = Unit::parse(code).unwrap();
            prop_assert_eq!(unit.bit_length() as u32, bits);
            prop_assert!(unit.index_body().is_ok());
        }
        for chosen in [&[0usize, 2, 3][..], &[1, 2, 3], &[2, 3]] {
            let refs: Vec<&str> = chosen.iter().map(|&i| codes[i].as_str()).collect();
            let units: Vec<Unit> = refs.iter().map(|s| Unit::parse(s).unwrap()).collect();
            let theirs = iscc_lib::gen_iscc_code_v0(&refs, wide).unwrap().iscc;
            prop_assert_eq!(compose(&units, wide).unwrap().to_string(), theirs.clone());
            let ours: Vec<String> = iscc_vdb::codec::decompose(&theirs)
                .unwrap()
                .iter()
                .map(|u| u.to_string())
                .collect();
            let lib_units: Vec<String> =
                iscc_lib::iscc_decompose(&theirs).unwrap().into_iter().map(with_prefix).collect();
            prop_assert_eq!(ours, lib_units);
        }
    }

    /// ISCC-ID v1 from (timestamp, hub, realm).
    #[test]
    fn iscc_ids_agree(ts in 0u64..(1 << 52), hub in 0u16..4096, realm in 0u8..2) {
        let theirs = iscc_lib::gen_iscc_id_v1(ts, hub, realm).unwrap().iscc;
        let ours = IsccId::from_parts(ts, hub, Realm::new(realm).unwrap()).unwrap();
        prop_assert_eq!(ours.to_string(), theirs.clone());
        prop_assert_eq!(our_header(&theirs), lib_header(&theirs));
        let parsed = IsccId::parse(&theirs).unwrap();
        prop_assert_eq!(parsed, ours);
        prop_assert_eq!((parsed.timestamp_us(), parsed.hub_id()), (ts, hub));
    }
}
