//! Exact deduplication on caller-built keys (e.g. the normalized instruction, input and output
//! joined with `\u{1f}`).
//!
//! Keys are hashed with xxh3-128 in parallel and grouped with a parallel sort on
//! (label, hash, index); inside a group of equal hashes every key is still compared with its
//! group's first by string equality, so a 128-bit collision can never merge distinct keys.
//! Each record gets `None` (first occurrence) or `Some(index of the first occurrence)`.

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_128;

use crate::error::Result;

/// The 128-bit hash of a key.
pub fn key_hash(key: &str) -> u128 {
    xxh3_128(key.as_bytes())
}

/// Hashes of a batch of keys, in parallel.
pub fn key_hashes(keys: &[&str]) -> Vec<u128> {
    keys.par_iter().map(|k| key_hash(k)).collect()
}

/// For each record: `None` when it is the first with its key, else `Some(first index)`.
pub fn exact_duplicates(keys: &[&str]) -> Vec<Option<u32>> {
    let hashes = key_hashes(keys);
    let all: Vec<u32> = (0..keys.len() as u32).collect();
    exact_duplicates_among(keys, &hashes, &all, None)
}

/// Exact duplicates among the records `subset` (ascending global indices) of `keys`, whose
/// hashes are `hashes`; records with different `labels` never match. `result[k]` belongs to
/// `subset[k]` and holds a global index.
pub fn exact_duplicates_among(
    keys: &[&str],
    hashes: &[u128],
    subset: &[u32],
    labels: Option<&[u32]>,
) -> Vec<Option<u32>> {
    assert_eq!(keys.len(), hashes.len(), "one hash per key");
    let same = |a: u32, b: u32| Ok(keys[a as usize] == keys[b as usize]);
    exact_duplicates_by(hashes, subset, labels, same).expect("in-memory keys cannot fail")
}

/// [`exact_duplicates_among`] with the key comparison supplied: `same(a, b)` says whether records
/// `a` and `b` have equal keys (asked only inside runs of equal hashes, so it may read the keys
/// from disk).
pub fn exact_duplicates_by(
    hashes: &[u128],
    subset: &[u32],
    labels: Option<&[u32]>,
    mut same: impl FnMut(u32, u32) -> Result<bool>,
) -> Result<Vec<Option<u32>>> {
    // (label, hash, position in subset)
    let mut order: Vec<(u32, u128, u32)> = subset
        .par_iter()
        .enumerate()
        .map(|(k, &i)| {
            let label = labels.map_or(0, |l| l[i as usize]);
            (label, hashes[i as usize], k as u32)
        })
        .collect();
    order.par_sort_unstable();
    let mut out = vec![None; subset.len()];
    for run in order.chunk_by(|x, y| x.0 == y.0 && x.1 == y.1) {
        if run.len() < 2 {
            continue;
        }
        // Distinct keys seen in this run (more than one only on a 128-bit collision), each with
        // its first occurrence; positions ascend within the run.
        let mut firsts: Vec<u32> = Vec::with_capacity(1);
        for &(_, _, k) in run {
            let i = subset[k as usize];
            let mut found = None;
            for &f in &firsts {
                if same(f, i)? {
                    found = Some(f);
                    break;
                }
            }
            match found {
                Some(f) => out[k as usize] = Some(f),
                None => firsts.push(i),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_first_occurrences() {
        let keys = ["a", "b", "a", "c", "b", "a", ""];
        assert_eq!(
            exact_duplicates(&keys),
            vec![None, None, Some(0), None, Some(1), Some(0), None]
        );
    }

    #[test]
    fn labels_and_subsets_separate_groups() {
        let keys = ["x", "x", "x", "y", "x"];
        let hashes = key_hashes(&keys);
        let labels = [0, 1, 0, 0, 1];
        let got = exact_duplicates_among(&keys, &hashes, &[0, 1, 2, 3, 4], Some(&labels));
        assert_eq!(got, vec![None, None, Some(0), None, Some(1)]);
        let got = exact_duplicates_among(&keys, &hashes, &[1, 3, 4], None);
        assert_eq!(got, vec![None, None, Some(1)]);
    }

    #[test]
    fn hash_collisions_do_not_merge_distinct_keys() {
        // Forge a collision: give two different keys the same "hash".
        let keys = ["p", "q", "p", "q"];
        let hashes = vec![7u128; 4];
        let got = exact_duplicates_among(&keys, &hashes, &[0, 1, 2, 3], None);
        assert_eq!(got, vec![None, None, Some(0), Some(1)]);
    }
}
