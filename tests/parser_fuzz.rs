//! Property tests: arbitrary and mutated input never panics the parser, and
//! whatever it accepts is self-consistent (canonical form re-parses to the
//! same components; units re-encode to what was parsed).

use iscc_vdb::codec::{compose, text, Iscc, IsccId, Kind, Unit};
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    "ISCC:KACTIEESNL5A75D7RNWFELTAR72HUWPJ2X7CILQW4GAZR3AEPJ7WMVA",
    "ISCC:K4AFT2OV7YSC4FXB2PEINBSANXLZXAMY5QCHU73GKQ5KKU4UWRKUUPA",
    "ISCC:KUAFT2OV7YSC4FXBQGMOYBD2P5TFI",
    "ISCC:KYCDIEESNL5A75D7LHU5L7REFYLODAMY5QCHU73GKQ",
    "ISCC:AAATIEESNL5A75D7EAAYW3CSFZQI75D2GAAVT2OV7YSC4FXBIAAYDGHMAR5H6ZSU",
    "ISCC:MAIGGGMBUD3TAUAR",
    "ISCC:MMA5XIXKHP7AU7OGAM",
    "ISCC:EAEBA2D7OJ7UDXWS2WX4DY6JCZ6E6ZNTBWUYYLK2V3BD5DOWLUZUMNW6XUHP75TGSKW7G",
    "ISCC:CQDSG2DCBZ6PGY6J5K2ZO7PUYUVHJ6YSBDD6LD3TF2CPSSJD2XQRO3I",
    "z2Yr3A3ivx8438MkXiVr3camSR3sLbeavKgm6inNNt9V9htAPMV",
];

/// Everything accepted must be internally consistent.
fn check_consistent(input: &str) {
    let Ok(iscc) = Iscc::parse(input) else {
        // Rejection is fine; it must just not panic. Other entry points too:
        let _ = IsccId::parse(input);
        let _ = Unit::parse(input);
        return;
    };
    for c in iscc.components() {
        let again = Iscc::parse(&c.to_string()).expect("a component's canonical form parses");
        assert_eq!(again.components(), std::slice::from_ref(c));
        let _ = c.type_id();
        let _ = iscc_vdb::codec::explain_string(c);
    }
    for u in iscc.units() {
        assert_eq!(Unit::parse(&u.to_string()).unwrap(), u);
        let _ = u.index_body();
    }
    if let Some(canonical) = iscc.canonical() {
        Iscc::parse(&canonical).expect("canonical form parses");
    }
    if iscc.kind() == Kind::Code {
        // Every accepted code is canonical: it re-composes exactly.
        let wide = iscc.first().unit_type().sub_type() == 7;
        assert_eq!(compose(&iscc.units(), wide).unwrap(), *iscc.first());
    }
    let _ = iscc_vdb::codec::explain(input, &iscc);
    let _ = IsccId::parse(input);
}

fn mutate(seed: &str, ops: &[(u8, usize, char)]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for &(op, pos, ch) in ops {
        let n = chars.len();
        match op % 4 {
            0 if n > 0 => chars[pos % n] = ch,
            1 => chars.insert(pos % (n + 1), ch),
            2 if n > 0 => {
                chars.remove(pos % n);
            }
            _ => chars.truncate(pos % (n + 1)),
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        check_consistent(&s);
    }

    #[test]
    fn base32_alphabet_strings_never_panic(s in "(ISCC:|iscc:)?[A-Z2-7a-z-]{0,120}") {
        check_consistent(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = Iscc::from_bytes(&bytes);
        check_consistent(&text::encode(&bytes));
    }

    #[test]
    fn mutated_valid_codes_never_panic(
        seed in 0..SEEDS.len(),
        ops in proptest::collection::vec(
            (any::<u8>(), any::<usize>(), prop_oneof![
                proptest::char::range('A', 'Z'),
                proptest::char::range('2', '7'),
                Just('-'), Just(':'), Just('1'), Just('a'), Just('é')
            ]),
            1..4,
        ),
    ) {
        check_consistent(&mutate(SEEDS[seed], &ops));
    }

    #[test]
    fn mutated_header_bytes_never_panic(
        seed in 0..SEEDS.len() - 1,
        pos in 0usize..4,
        value in any::<u8>(),
        cut in 0usize..8,
    ) {
        let mut bytes = text::decode(SEEDS[seed]).unwrap();
        let i = pos % bytes.len();
        bytes[i] = value;
        bytes.truncate(bytes.len().saturating_sub(cut % 3));
        let _ = Iscc::from_bytes(&bytes);
        check_consistent(&text::encode(&bytes));
    }
}
