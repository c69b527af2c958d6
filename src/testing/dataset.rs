//! The benchmark dataset "nphd-clusters" of `shared/spec/bench-dataset.md`:
//! N variable-length codes (64–256 bits) in near-duplicate clusters and Q
//! fresh queries, defined bit-exactly so every implementation measures the
//! same data. Code `j` has key `j`.

/// splitmix64's finaliser (the bloom filter's hash mixer).
pub fn mix64(z: u64) -> u64 {
    crate::index::bloom::mix64(z)
}

/// The dataset's random function `R(s, i)` for a seed.
pub fn r(seed: u64, s: u64, i: u64) -> u64 {
    mix64(
        ((seed << 16) | s)
            .wrapping_mul(0xD1B5_4A32_D192_ED03)
            .wrapping_add((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    )
}

/// The generated codes and queries.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Code bodies (8, 16, 24 or 32 bytes); code `j` has key `j`.
    pub codes: Vec<Vec<u8>>,
    /// Query bodies.
    pub queries: Vec<Vec<u8>>,
}

impl Dataset {
    /// Generate N codes and Q queries with `seed` (the spec uses 42).
    pub fn generate(n: usize, q: usize, seed: u64) -> Dataset {
        Dataset::build(n, q, seed, true)
    }

    /// Only the Q queries of the dataset of size N (no codes kept).
    pub fn queries(n: usize, q: usize, seed: u64) -> Vec<Vec<u8>> {
        Dataset::build(n, q, seed, false).queries
    }

    fn build(n: usize, q: usize, seed: u64, with_codes: bool) -> Dataset {
        let clusters = (n / 10).max(1) as u64;
        let centres: Vec<[u8; 32]> = (0..clusters)
            .map(|c| {
                let mut centre = [0u8; 32];
                for (b, byte) in centre.iter_mut().enumerate() {
                    let word = r(seed, 1, 4 * c + (b / 8) as u64);
                    *byte = (word >> (8 * (b % 8))) as u8;
                }
                centre
            })
            .collect();
        let lengths: Vec<usize> = (0..clusters)
            .map(|c| 8 * (1 + (r(seed, 2, c) % 4) as usize))
            .collect();
        let draw = |cluster_stream: u64, draw_stream: u64, j: u64| -> Vec<u8> {
            let c = (r(seed, cluster_stream, j) % clusters) as usize;
            let d: Vec<u64> = (0..32).map(|t| r(seed, draw_stream, 32 * j + t)).collect();
            let flips = (d[0] % 26) as usize;
            let mut code = centres[c];
            let mut mask = [0u8; 32];
            for t in 0..flips {
                let pos = (d[3 + t] % 256) as usize;
                mask[pos / 8] |= 1 << (7 - pos % 8);
            }
            for (byte, m) in code.iter_mut().zip(mask) {
                *byte ^= m;
            }
            let lc = lengths[c];
            let len = if d[1].is_multiple_of(4) && lc > 8 {
                8 * (1 + (d[2] % (lc as u64 / 8 - 1)) as usize)
            } else {
                lc
            };
            code[..len].to_vec()
        };
        Dataset {
            codes: if with_codes {
                (0..n as u64).map(|j| draw(3, 4, j)).collect()
            } else {
                Vec::new()
            },
            queries: (0..q as u64).map(|j| draw(5, 6, j)).collect(),
        }
    }

    /// Every code's bytes then every query's, concatenated (what the
    /// dataset's SHA-256 is taken over).
    pub fn concatenated(&self) -> impl Iterator<Item = &[u8]> {
        self.codes
            .iter()
            .chain(self.queries.iter())
            .map(Vec::as_slice)
    }
}

/// Entries of the engine benchmark: CONTENT-TEXT and DATA bodies from two
/// bench datasets (clustered, mixed 64–256 bits), a 64-bit META body, and
/// a unique INSTANCE body of 64–256 bits; IDs increase with the index.
/// Queries: META, CONTENT-TEXT and DATA units of the datasets' queries,
/// half of them with the INSTANCE of a stored entry.
pub fn engine_entries(n: usize, q: usize) -> (Vec<serde_json::Value>, Vec<crate::engine::Query>) {
    use crate::codec::{IsccId, Realm, Unit, UnitType};
    let text = Dataset::generate(n, q, 42);
    let data = Dataset::generate(n, q, 43);
    let unit = |t: UnitType, body: &[u8]| Unit::new(t, body).expect("unit").to_string();
    let meta = |i: u64| (mix64(i ^ 0x4D45_5441) % 4096).to_le_bytes();
    let instance = |i: u64| {
        let len = 8 * (1 + (r(7, 0, i) % 4) as usize);
        (0..len / 8)
            .flat_map(|w| r(9, w as u64, i).to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let realm = Realm::new(0).expect("realm");
    let entries = (0..n)
        .map(|i| {
            let id = IsccId::from_parts(1_700_000_000_000_000 + i as u64, 0, realm).expect("id");
            serde_json::json!({
                "iscc_id": id.to_string(),
                "units": [
                    unit(UnitType::META, &meta(i as u64)),
                    unit(UnitType::CONTENT_TEXT, &text.codes[i]),
                    unit(UnitType::DATA, &data.codes[i]),
                    unit(UnitType::INSTANCE, &instance(i as u64)),
                ],
                "title": format!("entry {i}"),
            })
        })
        .collect();
    let queries = (0..q)
        .map(|j| {
            let mut units = vec![
                unit(UnitType::META, &meta(j as u64 * 7)),
                unit(UnitType::CONTENT_TEXT, &text.queries[j]),
                unit(UnitType::DATA, &data.queries[j]),
            ];
            if j % 2 == 0 {
                // Half the queries carry the INSTANCE of a stored entry.
                units.push(unit(UnitType::INSTANCE, &instance((j * 31 % n) as u64)));
            }
            crate::engine::Query::units(units)
        })
        .collect();
    (entries, queries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values_of_the_spec() {
        assert_eq!(r(42, 1, 0), 0xd30710094a11ea37);
        assert_eq!(r(42, 1, 1), 0x5bf964b8c3f4d1f1);
        assert_eq!(r(42, 3, 0), 0x443050b196d9a216);
        assert_eq!(r(42, 4, 0), 0x1db4088dac9e9d51);
    }
}
