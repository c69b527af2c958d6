//! The index Milvus keeps on the unit collections' vectors: BIN_FLAT (every
//! search exact, the default) or BIN_IVF_FLAT (approximate: a search probes
//! `nprobe` of `nlist` lists). Chosen by the URI when the index is created
//! (`?index=ivf&nlist=N`) and stored with it; an `nprobe` may be given on
//! any open (`?nprobe=N`). A search with `exact` probes every list, which is
//! exact again.

use serde_json::{json, Value};

use super::super::EngineError;

/// Lists of a BIN_IVF_FLAT index when the URI names none: Milvus's own
/// guide is about 4·sqrt(rows) per segment; its segments hold up to ~1M
/// rows of these sizes.
pub(crate) const DEFAULT_NLIST: usize = 1024;

/// Most lists (Milvus's limit for IVF indexes).
pub(crate) const MAX_NLIST: usize = 65_536;

/// Lists a search probes when the URI names no `nprobe`: a sixteenth of
/// them (at least one).
pub(crate) fn default_nprobe(nlist: usize) -> usize {
    (nlist / 16).max(1)
}

/// The index on the unit collections' vector fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ann {
    /// BIN_FLAT: exact.
    Flat,
    /// BIN_IVF_FLAT of this many lists.
    Ivf { nlist: usize },
}

impl Ann {
    /// The value of the URI's `index` option (with its `nlist`), or why not.
    pub(crate) fn parse(index: &str, nlist: Option<usize>) -> Result<Ann, String> {
        match (index, nlist) {
            ("flat", None) => Ok(Ann::Flat),
            ("flat", Some(_)) => Err("nlist applies to index=ivf only".into()),
            ("ivf", n) => Ok(Ann::Ivf {
                nlist: n.unwrap_or(DEFAULT_NLIST),
            }),
            (other, _) => Err(format!("index={other:?} (flat or ivf)")),
        }
    }

    /// As stored in the index's metadata.
    pub(crate) fn to_json(self) -> Value {
        match self {
            Ann::Flat => json!({"index": "flat"}),
            Ann::Ivf { nlist } => json!({"index": "ivf", "nlist": nlist}),
        }
    }

    /// From the index's metadata (`None`: an index created before this was
    /// stored, which is BIN_FLAT).
    pub(crate) fn from_json(v: Option<&Value>) -> Result<Ann, EngineError> {
        let Some(v) = v else {
            return Ok(Ann::Flat);
        };
        let nlist = v.get("nlist").and_then(Value::as_u64).map(|n| n as usize);
        v.get("index")
            .and_then(Value::as_str)
            .ok_or_else(|| "no index kind".to_string())
            .and_then(|i| Ann::parse(i, nlist))
            .map_err(|why| EngineError::Invalid(format!("stored vector index {v}: {why}")))
    }

    /// As the URI spells it (for messages).
    pub(crate) fn spelled(self) -> String {
        match self {
            Ann::Flat => "index=flat".into(),
            Ann::Ivf { nlist } => format!("index=ivf&nlist={nlist}"),
        }
    }

    /// Milvus's name and build parameters of the index.
    pub(crate) fn milvus(self) -> (milvus::index::IndexType, Vec<(String, String)>) {
        use milvus::index::IndexType;
        match self {
            Ann::Flat => (IndexType::BinFlat, Vec::new()),
            Ann::Ivf { nlist } => (
                IndexType::BinIvfFlat,
                vec![("nlist".into(), nlist.to_string())],
            ),
        }
    }

    /// The `nprobe` of a search (`None`: the index has no lists): every
    /// list for an exact one, else `nprobe`.
    pub(crate) fn probes(self, nprobe: usize, exact: bool) -> Option<usize> {
        match self {
            Ann::Flat => None,
            Ann::Ivf { nlist } if exact => Some(nlist),
            Ann::Ivf { nlist } => Some(nprobe.clamp(1, nlist)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stores_and_probes() {
        assert_eq!(Ann::parse("flat", None), Ok(Ann::Flat));
        assert_eq!(
            Ann::parse("ivf", None),
            Ok(Ann::Ivf {
                nlist: DEFAULT_NLIST
            })
        );
        assert_eq!(Ann::parse("ivf", Some(64)), Ok(Ann::Ivf { nlist: 64 }));
        assert!(Ann::parse("flat", Some(64)).unwrap_err().contains("nlist"));
        assert!(Ann::parse("hnsw", None)
            .unwrap_err()
            .contains("flat or ivf"));
        for a in [Ann::Flat, Ann::Ivf { nlist: 77 }] {
            assert_eq!(Ann::from_json(Some(&a.to_json())).unwrap(), a);
        }
        assert_eq!(Ann::from_json(None).unwrap(), Ann::Flat);
        assert!(Ann::from_json(Some(&json!({"index": "x"}))).is_err());
        let ivf = Ann::Ivf { nlist: 100 };
        assert_eq!(ivf.probes(8, false), Some(8));
        assert_eq!(ivf.probes(8, true), Some(100));
        assert_eq!(ivf.probes(500, false), Some(100));
        assert_eq!(Ann::Flat.probes(8, true), None);
    }
}
