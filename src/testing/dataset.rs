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
        let g = Generator::new(n, seed);
        Dataset {
            codes: if with_codes {
                (0..n as u64).map(|j| g.code(j)).collect()
            } else {
                Vec::new()
            },
            queries: (0..q as u64).map(|j| g.query(j)).collect(),
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

/// The dataset of size N one code at a time: what [`Dataset::generate`]
/// holds, for sizes whose codes do not fit in memory as separate vectors
/// (100M codes take ~14 GB that way; the generator holds the clusters'
/// centres, 33 bytes per 10 codes).
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    centres: Vec<[u8; 32]>,
    lengths: Vec<u8>,
}

impl Generator {
    /// The generator of the dataset of size `n` with `seed`.
    pub fn new(n: usize, seed: u64) -> Generator {
        let clusters = (n / 10).max(1) as u64;
        let centres = (0..clusters)
            .map(|c| {
                let mut centre = [0u8; 32];
                for (b, byte) in centre.iter_mut().enumerate() {
                    let word = r(seed, 1, 4 * c + (b / 8) as u64);
                    *byte = (word >> (8 * (b % 8))) as u8;
                }
                centre
            })
            .collect();
        let lengths = (0..clusters)
            .map(|c| 8 * (1 + (r(seed, 2, c) % 4) as u8))
            .collect();
        Generator {
            seed,
            centres,
            lengths,
        }
    }

    /// Code `j` (key `j`).
    pub fn code(&self, j: u64) -> Vec<u8> {
        self.draw(3, 4, j)
    }

    /// Query `j`.
    pub fn query(&self, j: u64) -> Vec<u8> {
        self.draw(5, 6, j)
    }

    fn draw(&self, cluster_stream: u64, draw_stream: u64, j: u64) -> Vec<u8> {
        let seed = self.seed;
        let c = (r(seed, cluster_stream, j) % self.centres.len() as u64) as usize;
        let d: [u64; 32] = std::array::from_fn(|t| r(seed, draw_stream, 32 * j + t as u64));
        let flips = (d[0] % 26) as usize;
        let mut code = self.centres[c];
        let mut mask = [0u8; 32];
        for t in 0..flips {
            let pos = (d[3 + t] % 256) as usize;
            mask[pos / 8] |= 1 << (7 - pos % 8);
        }
        for (byte, m) in code.iter_mut().zip(mask) {
            *byte ^= m;
        }
        let lc = usize::from(self.lengths[c]);
        let len = if d[1].is_multiple_of(4) && lc > 8 {
            8 * (1 + (d[2] % (lc as u64 / 8 - 1)) as usize)
        } else {
            lc
        };
        code[..len].to_vec()
    }
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

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_generator_gives_the_specs_codes_queries_and_digest() {
        use sha2::{Digest, Sha256};
        let g = Generator::new(100_000, 42);
        assert_eq!(hex(&g.code(0)), "71180e75c5ef72e2");
        assert_eq!(hex(&g.code(1)), "1e20d923a8927eb1");
        assert_eq!(
            hex(&g.query(0)),
            "d1a41b755cceeb4547f57cd0c886484a8baee8c3486f975dc0de93d2fd09dc81"
        );
        let mut sha = Sha256::new();
        for j in 0..100_000 {
            sha.update(g.code(j));
        }
        for j in 0..1_000 {
            sha.update(g.query(j));
        }
        assert_eq!(
            hex(&sha.finalize()),
            "64bf323cf8397c7a17e9da6c92fef2d274b6f8604b7be25c67751335a83a002e"
        );
        // The held dataset is the generator's.
        let d = Dataset::generate(1_000, 10, 42);
        let g = Generator::new(1_000, 42);
        assert!(d
            .codes
            .iter()
            .enumerate()
            .all(|(j, c)| *c == g.code(j as u64)));
        assert!(d
            .queries
            .iter()
            .enumerate()
            .all(|(j, q)| *q == g.query(j as u64)));
    }
}
