//! The partitioned (IVF) path of unit indexes: rows grouped into lists by
//! a coarse quantizer over their first 64 bits, so that a search reads the
//! lists near its query instead of every row.
//!
//! The lists are the flat store's own storage (`FlatStore::lists`): a
//! partitioned store keeps each row once, in the list of its nearest
//! centroid, so partitioning costs no memory per row beyond the centroids.
//! A search probes the `nprobe` lists whose centroids are nearest to the
//! query's first word and scans them with the exact-scan kernels, which read
//! a row's later words only while the row can still make the top-k: the
//! first-word column acts as the prefix filter, the rest as the re-rank.
//!
//! Mixed lengths stay exact: the distance of a row is NPHD over the words
//! the query and the row share, computed in full for every row of a probed
//! list, whatever its length. The quantizer only decides which rows are
//! looked at; every row of every list is reached when `nprobe` covers all
//! lists, and then the result is the full scan's.
//!
//! Files: `quantizer.rs` (centroids, training, probing).

mod quantizer;

pub(crate) use quantizer::Quantizer;
