//! A flat store partitioned into lists (see `index::ivf`): building one
//! from another, and choosing the lists a query probes.

use std::sync::Arc;

use rayon::prelude::*;

use super::{FlatStore, Group, List, ScanQuery, Words};
use crate::index::ivf::Quantizer;

impl FlatStore {
    /// This store's rows partitioned by `quantizer`: each whole-word row
    /// in the list of the centroid nearest its first word (byte-granular
    /// rows stay as they are, scanned by every search). The columns of the
    /// original are read, not changed: a snapshot may be partitioned
    /// beside searches and writes. The key map is built on first use.
    pub(crate) fn partitioned(&self, quantizer: Arc<Quantizer>) -> FlatStore {
        let nlist = quantizer.lists();
        let mut lists: Vec<List> = (0..nlist).map(|_| List::default()).collect();
        for g in 0..4 {
            if let Some(groups) = self.group_partitioned(g, &quantizer) {
                for (list, group) in lists.iter_mut().zip(groups) {
                    list.groups[g] = group;
                }
            }
        }
        FlatStore {
            odd: self.odd.clone(),
            ..FlatStore::of_lists(lists, Some(quantizer))
        }
    }

    /// Group `g` of every list of a store partitioned by `quantizer`
    /// (`None` when the group is empty).
    fn group_partitioned(&self, g: usize, quantizer: &Quantizer) -> Option<Vec<Group>> {
        let nlist = quantizer.lists();
        // The group's rows over all current lists, one column at a time in
        // one contiguous vector.
        let column = |c: Option<usize>| -> Vec<u64> {
            let mut out = Vec::with_capacity(self.len_of_group(g));
            for list in &self.lists {
                let group = &list.groups[g];
                let words = match c {
                    None => group.keys(),
                    Some(c) => &group.cols()[c],
                };
                for run in words.runs() {
                    out.extend_from_slice(run);
                }
            }
            out
        };
        let firsts = column(Some(0));
        if firsts.is_empty() {
            return None;
        }
        let assigned: Vec<u32> = firsts
            .par_chunks(4096)
            .flat_map_iter(|chunk| {
                let mut scratch = vec![0u32; nlist];
                chunk
                    .iter()
                    .map(|&x| quantizer.nearest_with(x, &mut scratch).0 as u32)
                    .collect::<Vec<_>>()
            })
            .collect();
        drop(firsts);
        // Counting sort of row positions by list (stable: rows keep their
        // order within a list).
        let mut starts = vec![0usize; nlist + 1];
        for &l in &assigned {
            starts[l as usize + 1] += 1;
        }
        let mut sum = 0;
        for start in starts.iter_mut() {
            sum += *start;
            *start = sum;
        }
        let mut order = vec![0u32; assigned.len()];
        let mut next = starts.clone();
        for (pos, &l) in assigned.iter().enumerate() {
            order[next[l as usize]] = pos as u32;
            next[l as usize] += 1;
        }
        drop(assigned);
        // One column's words, list by list, in the sorted order.
        let gather = |source: &[u64]| -> Vec<Words> {
            (0..nlist)
                .into_par_iter()
                .map(|l| {
                    order[starts[l]..starts[l + 1]]
                        .iter()
                        .map(|&p| source[p as usize])
                        .collect::<Words>()
                })
                .collect()
        };
        let mut groups: Vec<(Words, Vec<Words>)> = gather(&column(None))
            .into_iter()
            .map(|keys| (keys, Vec::with_capacity(g + 1)))
            .collect();
        for c in 0..=g {
            for ((_, cols), col) in groups.iter_mut().zip(gather(&column(Some(c)))) {
                cols.push(col);
            }
        }
        Some(
            groups
                .into_iter()
                .map(|(keys, cols)| Group::with(keys, cols))
                .collect(),
        )
    }

    /// This store's rows in one list (not partitioned).
    pub(crate) fn unpartitioned(&self) -> FlatStore {
        let mut list = List::default();
        for (g, group) in list.groups.iter_mut().enumerate() {
            let concat = |words: &dyn Fn(&Group) -> &Words| -> Words {
                self.lists
                    .iter()
                    .flat_map(|l| words(&l.groups[g]).iter())
                    .collect()
            };
            let keys = concat(&|grp| grp.keys());
            let cols = (0..=g).map(|c| concat(&|grp| &grp.cols()[c])).collect();
            *group = Group::with(keys, cols);
        }
        FlatStore {
            odd: self.odd.clone(),
            ..FlatStore::of_lists(vec![list], None)
        }
    }

    /// Lists of the partition (1 when not partitioned) and the lists a
    /// search probes by default.
    pub(crate) fn layout(&self) -> (usize, usize) {
        self.quantizer
            .as_ref()
            .map_or((1, 1), |q| (q.lists(), q.nprobe()))
    }

    /// The lists a query scans to probe `nprobe` lists: the nearest to its
    /// first word, nearest first (every list when `nprobe` reaches them
    /// all); `None` when the store is not partitioned.
    pub(crate) fn probe(&self, query: &ScanQuery, nprobe: usize) -> Option<Vec<u32>> {
        let quantizer = self.quantizer.as_ref()?;
        Some(
            quantizer
                .probe(query.words[0], nprobe)
                .into_iter()
                .map(|(list, _)| list)
                .collect(),
        )
    }

    /// Rows in the given lists (byte-granular rows included: every search
    /// reads them).
    pub(crate) fn rows_in(&self, lists: &[u32]) -> usize {
        lists
            .iter()
            .filter_map(|&l| self.lists.get(l as usize))
            .map(List::len)
            .sum::<usize>()
            + self.odd.len()
    }
}
