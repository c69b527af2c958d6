//! Unit types: MainType-SubType-Version, the key that groups units into one
//! similarity index (`CONTENT-TEXT-V0` units of every length share one index).

use std::fmt;
use std::str::FromStr;

use super::error::CodecError;
use super::header::{subtype_name, subtype_names, MainType};

/// A unit type (MainType, SubType, Version), named like `CONTENT-TEXT-V0`.
///
/// Only combinations defined by ISO 24138 (as iscc-core 1.5 knows them) can
/// be constructed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitType {
    main_type: MainType,
    sub_type: u8,
    version: u8,
}

impl UnitType {
    /// `META-NONE-V0`.
    pub const META: UnitType = UnitType::known(MainType::Meta, 0);
    /// `CONTENT-TEXT-V0`.
    pub const CONTENT_TEXT: UnitType = UnitType::known(MainType::Content, 0);
    /// `CONTENT-IMAGE-V0`.
    pub const CONTENT_IMAGE: UnitType = UnitType::known(MainType::Content, 1);
    /// `CONTENT-AUDIO-V0`.
    pub const CONTENT_AUDIO: UnitType = UnitType::known(MainType::Content, 2);
    /// `CONTENT-VIDEO-V0`.
    pub const CONTENT_VIDEO: UnitType = UnitType::known(MainType::Content, 3);
    /// `CONTENT-MIXED-V0`.
    pub const CONTENT_MIXED: UnitType = UnitType::known(MainType::Content, 4);
    /// `DATA-NONE-V0`.
    pub const DATA: UnitType = UnitType::known(MainType::Data, 0);
    /// `INSTANCE-NONE-V0`.
    pub const INSTANCE: UnitType = UnitType::known(MainType::Instance, 0);

    const fn known(main_type: MainType, sub_type: u8) -> UnitType {
        UnitType {
            main_type,
            sub_type,
            version: 0,
        }
    }

    /// The unit type of these header fields, if the combination is defined.
    pub fn new(main_type: MainType, sub_type: u8, version: u8) -> Option<UnitType> {
        subtype_name(main_type, sub_type, version)?;
        Some(UnitType {
            main_type,
            sub_type,
            version,
        })
    }

    /// Every defined unit type, in code order.
    pub fn all() -> Vec<UnitType> {
        let mut out = Vec::new();
        for mt in MainType::ALL {
            for version in 0..=1u8 {
                if let Some(names) = subtype_names(mt, version) {
                    for st in 0..names.len() as u8 {
                        out.push(UnitType {
                            main_type: mt,
                            sub_type: st,
                            version,
                        });
                    }
                }
            }
        }
        out
    }

    /// MainType.
    pub fn main_type(self) -> MainType {
        self.main_type
    }

    /// SubType number (its name depends on the MainType; see [`UnitType::sub_type_name`]).
    pub fn sub_type(self) -> u8 {
        self.sub_type
    }

    /// Version.
    pub fn version(self) -> u8 {
        self.version
    }

    /// The SubType's name in context (`TEXT`, `NONE`, `REALM_1`, `SUM`, ...).
    pub fn sub_type_name(self) -> &'static str {
        // Construction guarantees the combination is defined.
        subtype_name(self.main_type, self.sub_type, self.version).unwrap_or("?")
    }

    /// The first 12 header bits: `(maintype << 8) | (subtype << 4) | version`.
    pub fn code(self) -> u16 {
        (u16::from(self.main_type.code()) << 8)
            | (u16::from(self.sub_type) << 4)
            | u16::from(self.version)
    }

    /// The canonical name, e.g. `CONTENT-TEXT-V0`.
    pub fn name(self) -> String {
        self.to_string()
    }

    /// The directory name of this unit type's index, e.g. `content-text-v0`.
    pub fn dir_name(self) -> String {
        self.to_string().to_ascii_lowercase()
    }

    /// True for unit types searched by NPHD similarity: META, SEMANTIC-*,
    /// CONTENT-* and DATA.
    pub fn is_similarity(self) -> bool {
        matches!(
            self.main_type,
            MainType::Meta | MainType::Semantic | MainType::Content | MainType::Data
        ) && self.version == 0
    }

    /// True for INSTANCE-NONE-V0, matched exactly or by prefix.
    pub fn is_instance(self) -> bool {
        self == UnitType::INSTANCE
    }
}

impl fmt::Display for UnitType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-V{}",
            self.main_type.name(),
            self.sub_type_name(),
            self.version
        )
    }
}

impl FromStr for UnitType {
    type Err = CodecError;

    /// Parse `CONTENT-TEXT-V0` or the directory form `content-text-v0`.
    fn from_str(s: &str) -> Result<UnitType, CodecError> {
        let unknown = || CodecError::UnitTypeName(super::error::quote(s));
        // SubType names may contain `_` but never `-`, so the name splits cleanly.
        let mut parts = s.split('-');
        let (Some(mt), Some(st), Some(vs), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(unknown());
        };
        let main_type = MainType::from_name(mt).ok_or_else(unknown)?;
        let version = vs
            .strip_prefix(['V', 'v'])
            .and_then(|v| v.parse::<u8>().ok())
            .ok_or_else(unknown)?;
        let names = subtype_names(main_type, version).ok_or_else(unknown)?;
        let sub_type = names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(st))
            .ok_or_else(unknown)?;
        Ok(UnitType {
            main_type,
            sub_type: sub_type as u8,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_for_every_unit_type() {
        let all = UnitType::all();
        assert_eq!(all.len(), 1 + 5 + 5 + 1 + 1 + 8 + 4 + 2 + 1);
        for ut in all {
            assert_eq!(ut.name().parse::<UnitType>().unwrap(), ut);
            assert_eq!(ut.dir_name().parse::<UnitType>().unwrap(), ut);
        }
        assert_eq!(UnitType::CONTENT_TEXT.name(), "CONTENT-TEXT-V0");
        assert_eq!(UnitType::CONTENT_TEXT.dir_name(), "content-text-v0");
        assert_eq!(UnitType::META.name(), "META-NONE-V0");
        assert_eq!(UnitType::INSTANCE.name(), "INSTANCE-NONE-V0");
    }

    #[test]
    fn rejects_unknown_names() {
        for bad in [
            "",
            "CONTENT",
            "CONTENT-TEXT",
            "CONTENT-TEXT-V1",
            "CONTENT-NONE-V0",
            "META-NONE-V0-64",
            "ID-REALM_2-V1",
            "FOO-NONE-V0",
        ] {
            assert!(bad.parse::<UnitType>().is_err(), "{bad}");
        }
    }

    #[test]
    fn similarity_and_instance_classes() {
        assert!(UnitType::META.is_similarity());
        assert!(UnitType::DATA.is_similarity());
        assert!(!UnitType::INSTANCE.is_similarity());
        assert!(UnitType::INSTANCE.is_instance());
        let id: UnitType = "ID-REALM_0-V1".parse().unwrap();
        assert!(!id.is_similarity() && !id.is_instance());
    }
}
