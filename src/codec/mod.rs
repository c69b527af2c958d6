//! The ISCC codec (ISO 24138): parsing and validation of ISCC strings,
//! headers, unit types, ISCC-CODE decompose/compose, and ISCC-ID v1 keys.
//!
//! The parser is strict: anything iscc-core would not emit is rejected with
//! a [`CodecError`] that names the input and the problem. It knows nothing of
//! the rest of the crate.
//!
//! ```
//! use iscc_vdb::codec::{Iscc, Kind, UnitType};
//!
//! let code = Iscc::parse("ISCC:KACTIEESNL5A75D7RNWFELTAR72HUWPJ2X7CILQW4GAZR3AEPJ7WMVA").unwrap();
//! assert_eq!(code.kind(), Kind::Code);
//! let units = code.units();
//! assert_eq!(units.len(), 4);
//! assert_eq!(units[1].unit_type(), UnitType::CONTENT_TEXT);
//! assert_eq!(units[1].to_string(), "ISCC:EAAYW3CSFZQI75D2");
//! ```

mod component;
mod error;
mod explain;
mod header;
mod id_gen;
mod iscc_id;
pub mod text;
mod unit_type;

pub use component::{compose, decompose, Component, Iscc, Kind, Unit, INDEX_BITS};
pub use error::{CodecError, Reason};
pub use explain::{explain, explain_string};
pub use header::{subtype_name, Header, MainType, MAX_VARNIBBLE};
pub use id_gen::{now_us, IdGenerator};
pub use iscc_id::{iso_time_us, IsccId, Realm, MAX_HUB_ID, MAX_TIMESTAMP_US};
pub use unit_type::UnitType;
