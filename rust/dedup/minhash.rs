//! MinHash signatures of shingle sets, batch-shaped and parallel.
//!
//! Permutation scheme (chosen for speed): permutation `i` maps a shingle hash `h` to
//! `((a_i · x + b_i) mod 2^64) >> 32`, where `x` is the low 32 bits of `h` (xxh3 output, so
//! uniformly mixed) and `a_i`, `b_i` are 64-bit values drawn from a splitmix64 stream seeded by
//! `seed`. For 32-bit keys this is Dietzfelbinger's multiply-add-shift family, which is strongly
//! universal (2-independent) — unlike rensa's 64-bit-key multiply-shift — and it costs one 64-bit
//! multiply, an add and a shift per (shingle, permutation), against datasketch's
//! `(a·h + b) mod (2^61 − 1)`, which needs 128-bit arithmetic. The kernel computes it as two
//! 32-bit multiplies so that it vectorizes (16 permutations a block; AVX2 or AVX-512 picked at run
//! time on x86-64): ~0.13 ns per (shingle, permutation) on one AVX-512 core, against ~0.8 scalar. Values are 32-bit, so a signature
//! of 128 permutations is 512 bytes. Folding shingle hashes to 32 bits makes two distinct
//! shingles look equal with probability 2^-32 per pair: negligible for texts of a few thousand
//! shingles. The estimate's accuracy is checked against exact Jaccard in the tests.
//!
//! Signatures are deterministic given (`seed`, shingle params) and independent of thread count.

use rayon::prelude::*;

use super::oph::{self, Sketch};
use super::shingle::{ShingleParams, Shingler, TextKind};
use crate::error::{Error, Result};

/// Default number of permutations.
pub const DEFAULT_NUM_PERM: usize = 128;

const PERM_SALT: u64 = 0x6a09_e667_f3bc_c909;

/// One step of splitmix64: a tiny, good, deterministic generator.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `num_perm` hash functions of a MinHash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permutations {
    a: Vec<u64>,
    b: Vec<u64>,
    /// `a` split into its low and high 32-bit halves, for the vectorized kernel.
    a_lo: Vec<u32>,
    a_hi: Vec<u32>,
}

impl Permutations {
    pub fn new(num_perm: usize, seed: u64) -> Self {
        let mut state = seed ^ PERM_SALT;
        let mut a = Vec::with_capacity(num_perm);
        let mut b = Vec::with_capacity(num_perm);
        for _ in 0..num_perm {
            a.push(splitmix64(&mut state));
            b.push(splitmix64(&mut state));
        }
        let a_lo = a.iter().map(|&v| v as u32).collect();
        let a_hi = a.iter().map(|&v| (v >> 32) as u32).collect();
        Self { a, b, a_lo, a_hi }
    }

    pub fn len(&self) -> usize {
        self.a.len()
    }

    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }

    /// Writes the signature of the shingle hashes `hashes` into `out` (`out.len()` must equal
    /// `self.len()`). An empty set gives all `u32::MAX`.
    pub fn sign(&self, hashes: &[u64], out: &mut [u32]) {
        let keys: Vec<u32> = hashes.iter().map(|&h| h as u32).collect();
        self.sign_keys(&keys, out);
    }

    /// [`Self::sign`] on the shingle hashes already folded to their low 32 bits.
    pub fn sign_keys(&self, keys: &[u32], out: &mut [u32]) {
        assert_eq!(out.len(), self.a.len(), "signature length != num_perm");
        let blocks = out.len() / BLOCK * BLOCK;
        let (head, tail) = out.split_at_mut(blocks);
        kernel::sign_blocks(
            &self.a_lo[..blocks],
            &self.a_hi[..blocks],
            &self.b[..blocks],
            keys,
            head,
        );
        for ((o, &a), &b) in tail
            .iter_mut()
            .zip(&self.a[blocks..])
            .zip(&self.b[blocks..])
        {
            *o = keys
                .iter()
                .map(|&x| permute(a, b, u64::from(x)))
                .fold(u32::MAX, u32::min);
        }
    }
}

/// Permutations per block: their minima stay in vector registers while the keys stream by.
const BLOCK: usize = 16;

/// Multiply-add-shift of a 32-bit key `x`.
#[inline(always)]
fn permute(a: u64, b: u64, x: u64) -> u32 {
    (a.wrapping_mul(x).wrapping_add(b) >> 32) as u32
}

/// The block kernel. `(a·x + b) mod 2^64 >> 32` equals `((a_lo·x + b) mod 2^64 >> 32) +
/// a_hi·x (mod 2^32)` for a 32-bit `x` (`a_hi·x·2^32` leaves the low half alone), so each lane
/// needs one 32×32→64 multiply (`pmuludq`) and one 32-bit multiply (`pmulld`) instead of a 64-bit
/// one, which x86 has no vector form of before AVX-512. The results are bit-identical to
/// [`permute`]. On x86-64 the same code is compiled a second time for AVX2 and chosen at run time.
mod kernel {
    use super::BLOCK;

    #[inline(always)]
    fn blocks_generic(a_lo: &[u32], a_hi: &[u32], b: &[u64], keys: &[u32], out: &mut [u32]) {
        for (((o, lo), hi), b) in out
            .chunks_exact_mut(BLOCK)
            .zip(a_lo.chunks_exact(BLOCK))
            .zip(a_hi.chunks_exact(BLOCK))
            .zip(b.chunks_exact(BLOCK))
        {
            let mut m = [u32::MAX; BLOCK];
            for &x in keys {
                for j in 0..BLOCK {
                    let low = ((u64::from(lo[j]) * u64::from(x)).wrapping_add(b[j]) >> 32) as u32;
                    m[j] = m[j].min(low.wrapping_add(hi[j].wrapping_mul(x)));
                }
            }
            o.copy_from_slice(&m);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn blocks_avx2(a_lo: &[u32], a_hi: &[u32], b: &[u64], keys: &[u32], out: &mut [u32]) {
        blocks_generic(a_lo, a_hi, b, keys, out);
    }

    /// The AVX-512 kernel, written out: LLVM's own vectorization of `blocks_generic` runs along
    /// the keys and spills. Per key and 16 permutations: two `vpmuludq` (a_lo·x, 64-bit lanes),
    /// two `vpaddq` (+ b), one `vpermt2d` gathering the 16 high halves, one `vpmulld` (a_hi·x),
    /// one `vpaddd` and one `vpminud`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[allow(unsafe_code)]
    fn blocks_avx512(a_lo: &[u32], a_hi: &[u32], b: &[u64], keys: &[u32], out: &mut [u32]) {
        use std::arch::x86_64::*;
        assert!(a_lo.len() == out.len() && a_hi.len() == out.len() && b.len() == out.len());
        assert!(out.len().is_multiple_of(BLOCK) && BLOCK == 16);
        // Odd 32-bit elements of two vectors of 8 u64: the high halves, in order.
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        for k in (0..out.len()).step_by(BLOCK) {
            // SAFETY: k + 16 ≤ len for every slice (asserted above); unaligned loads and stores.
            let (lo, hi, b0, b1) = unsafe {
                (
                    _mm512_loadu_si512(a_lo.as_ptr().add(k).cast()),
                    _mm512_loadu_si512(a_hi.as_ptr().add(k).cast()),
                    _mm512_loadu_si512(b.as_ptr().add(k).cast()),
                    _mm512_loadu_si512(b.as_ptr().add(k + 8).cast()),
                )
            };
            // a_lo of permutations 0..8 and 8..16 in the low halves of 64-bit lanes.
            let lo0 = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(lo));
            let lo1 = _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(lo));
            let mut m = _mm512_set1_epi32(-1);
            for &x in keys {
                let x64 = _mm512_set1_epi64(i64::from(x));
                let p0 = _mm512_add_epi64(_mm512_mul_epu32(lo0, x64), b0);
                let p1 = _mm512_add_epi64(_mm512_mul_epu32(lo1, x64), b1);
                let high = _mm512_permutex2var_epi32(p0, odd, p1);
                let v = _mm512_add_epi32(high, _mm512_mullo_epi32(hi, _mm512_set1_epi32(x as i32)));
                m = _mm512_min_epu32(m, v);
            }
            // SAFETY: as above.
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(k).cast(), m) };
        }
    }

    #[derive(Clone, Copy)]
    enum Kernel {
        Generic,
        #[cfg(target_arch = "x86_64")]
        Avx2,
        #[cfg(target_arch = "x86_64")]
        Avx512,
    }

    /// The best kernel the CPU has, chosen once (`CSFT_NO_AVX512=1` skips AVX-512, to compare).
    fn kernel() -> Kernel {
        static CHOICE: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *CHOICE.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if std::env::var_os("CSFT_NO_AVX512").is_none()
                    && std::arch::is_x86_feature_detected!("avx512f")
                {
                    return Kernel::Avx512;
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    return Kernel::Avx2;
                }
            }
            Kernel::Generic
        })
    }

    /// Signs `out.len()` (a multiple of [`BLOCK`]) permutations with the best kernel the CPU has.
    #[allow(unsafe_code)]
    pub(super) fn sign_blocks(
        a_lo: &[u32],
        a_hi: &[u32],
        b: &[u64],
        keys: &[u32],
        out: &mut [u32],
    ) {
        match kernel() {
            Kernel::Generic => blocks_generic(a_lo, a_hi, b, keys, out),
            // SAFETY: `kernel()` picked it because the CPU has AVX-512F.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { blocks_avx512(a_lo, a_hi, b, keys, out) },
            // SAFETY: `kernel()` picked it because the CPU has AVX2.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { blocks_avx2(a_lo, a_hi, b, keys, out) },
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Every kernel this CPU can run gives the scalar multiply-add-shift minima.
        #[test]
        #[allow(unsafe_code)]
        fn kernels_agree_with_the_scalar_formula() {
            let perms = crate::dedup::minhash::Permutations::new(2 * BLOCK, 7);
            let keys: Vec<u32> = (0..300u32)
                .map(|i| i.wrapping_mul(0x85eb_ca6b) ^ 0x5bd1)
                .collect();
            let want: Vec<u32> = (0..2 * BLOCK)
                .map(|i| {
                    keys.iter()
                        .map(|&x| super::super::permute(perms.a[i], perms.b[i], u64::from(x)))
                        .min()
                        .unwrap()
                })
                .collect();
            let run = |f: &dyn Fn(&mut [u32])| {
                let mut out = vec![0u32; 2 * BLOCK];
                f(&mut out);
                assert_eq!(out, want);
            };
            run(&|o| blocks_generic(&perms.a_lo, &perms.a_hi, &perms.b, &keys, o));
            run(&|o| sign_blocks(&perms.a_lo, &perms.a_hi, &perms.b, &keys, o));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is present.
                run(&|o| unsafe { blocks_avx2(&perms.a_lo, &perms.a_hi, &perms.b, &keys, o) });
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F is present.
                run(&|o| unsafe { blocks_avx512(&perms.a_lo, &perms.a_hi, &perms.b, &keys, o) });
            }
        }
    }
}

/// MinHash parameters: shingling, number of permutations and their seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinHashParams {
    pub shingle: ShingleParams,
    /// Signature length (permutations, or bins for [`Sketch::Oph`]).
    pub num_perm: usize,
    pub seed: u64,
    pub sketch: Sketch,
}

impl Default for MinHashParams {
    fn default() -> Self {
        Self {
            shingle: ShingleParams::default(),
            num_perm: DEFAULT_NUM_PERM,
            seed: 0,
            sketch: Sketch::MinHash,
        }
    }
}

impl MinHashParams {
    pub fn validate(&self) -> Result<()> {
        self.shingle.validate()?;
        if self.num_perm == 0 {
            return Err(Error::config("num_perm must be at least 1"));
        }
        Ok(())
    }
}

/// The signatures of a batch: a row-major `len × num_perm` matrix and each text's kind. Rows of
/// short and empty texts are all `u32::MAX` and must not be indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signatures {
    num_perm: usize,
    values: Vec<u32>,
    kinds: Vec<TextKind>,
}

impl Signatures {
    pub fn num_perm(&self) -> usize {
        self.num_perm
    }

    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The flat row-major matrix.
    pub fn values(&self) -> &[u32] {
        &self.values
    }

    pub fn kinds(&self) -> &[TextKind] {
        &self.kinds
    }

    pub fn row(&self, i: usize) -> &[u32] {
        &self.values[i * self.num_perm..(i + 1) * self.num_perm]
    }

    pub fn kind(&self, i: usize) -> TextKind {
        self.kinds[i]
    }

    /// Whether text `i` has shingles (may enter LSH).
    pub fn is_indexable(&self, i: usize) -> bool {
        self.kinds[i] == TextKind::Normal
    }

    /// (num_perm, row-major values, kinds), e.g. to hand the matrix over without a copy.
    pub fn into_parts(self) -> (usize, Vec<u32>, Vec<TextKind>) {
        (self.num_perm, self.values, self.kinds)
    }

    /// Estimated Jaccard similarity of texts `i` and `j`.
    pub fn estimate(&self, i: usize, j: usize) -> f64 {
        estimate_jaccard(self.row(i), self.row(j))
    }
}

/// Signatures of a batch of texts, in parallel.
pub fn signatures(texts: &[&str], params: &MinHashParams) -> Result<Signatures> {
    Ok(signatures_and_sets(texts, params, false)?.0)
}

/// [`signatures`] and, with `sets`, each normal text's shingle set from the same shingling:
/// hashes folded to 32 bits, sorted and deduplicated, as verification compares them (empty
/// for other kinds, and for every text without `sets`).
pub fn signatures_and_sets(
    texts: &[&str],
    params: &MinHashParams,
    sets: bool,
) -> Result<(Signatures, Vec<Vec<u32>>)> {
    params.validate()?;
    let k = params.num_perm;
    let perms = Permutations::new(k, params.seed);
    let mut values = vec![0u32; texts.len() * k];
    let mut kinds = vec![TextKind::Normal; texts.len()];
    let mut folded: Vec<Vec<u32>> = vec![Vec::new(); texts.len()];
    values
        .par_chunks_mut(k)
        .zip(kinds.par_iter_mut())
        .zip(folded.par_iter_mut())
        .zip(texts.par_iter())
        .for_each_init(
            || {
                (
                    Shingler::new(params.shingle),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                )
            },
            |(shingler, buf, keys, filled), (((row, kind), set), text)| {
                *kind = shingler.shingle_unsorted(text, buf);
                match params.sketch {
                    Sketch::MinHash => {
                        keys.clear();
                        keys.extend(buf.iter().map(|&h| h as u32));
                        perms.sign_keys(keys, row);
                    }
                    Sketch::Oph => oph::sign(buf, params.seed, row, filled),
                }
                if sets && *kind == TextKind::Normal {
                    set.extend(buf.iter().map(|&h| h as u32));
                    set.sort_unstable();
                    set.dedup();
                }
            },
        );
    let sigs = Signatures {
        num_perm: k,
        values,
        kinds,
    };
    Ok((sigs, folded))
}

/// Exact Jaccard similarity of two sorted, deduplicated hash sets (two empty sets: 1.0).
pub fn jaccard<T: Ord>(a: &[T], b: &[T]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// Whether sets of these sizes can have a Jaccard similarity of at least `t` (the smaller one
/// wholly inside the larger); when it is not, [`jaccard_at_least`] is false.
pub fn sizes_may_reach(a: usize, b: usize, t: f64) -> bool {
    let shortest = a.min(b);
    shortest > 0 && shortest as f64 / (a + b - shortest) as f64 >= t
}

/// Whether the Jaccard similarity of two sorted, deduplicated sets is at least `t`, as
/// `jaccard(a, b) >= t` decides it, stopping as soon as the overlap still possible falls short
/// (and at once when the sizes alone rule it out).
pub fn jaccard_at_least(a: &[u32], b: &[u32], t: f64) -> bool {
    overlap_needed(a.len(), b.len(), t).is_some_and(|need| overlap_reaches(a, b, need))
}

/// The least overlap at which sets of sizes `a` and `b` reach Jaccard `t`; `None` when the
/// sizes alone rule it out.
fn overlap_needed(a: usize, b: usize, t: f64) -> Option<usize> {
    if !sizes_may_reach(a, b, t) {
        return None;
    }
    let total = a + b;
    let reaches = |overlap: usize| overlap as f64 / (total - overlap) as f64 >= t;
    // The least overlap that reaches `t` (the formula is increasing in the overlap).
    let shortest = a.min(b);
    let mut need = ((t * total as f64 / (1.0 + t)).floor() as usize).min(shortest);
    while need > 0 && reaches(need - 1) {
        need -= 1;
    }
    while !reaches(need) {
        need += 1;
    }
    Some(need)
}

/// Whether sorted, deduplicated `a` and `b` share at least `need` elements: blocks of four
/// compared all against all with SSE2 (each element of a block of `a` against each of `b`'s:
/// at most one match each, the sets being strictly increasing), then a branch-free merge for
/// the rest; stopping as soon as the overlap still possible falls short.
#[allow(unsafe_code)]
fn overlap_reaches(a: &[u32], b: &[u32], need: usize) -> bool {
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        while i + 4 <= a.len() && j + 4 <= b.len() {
            if inter + (a.len() - i).min(b.len() - j) < need {
                return false;
            }
            // SAFETY: SSE2 is part of x86_64; the loads read `a[i..i + 4]` and `b[j..j + 4]`,
            // in bounds by the loop condition (unaligned loads).
            let matched = unsafe {
                let va = _mm_loadu_si128(a.as_ptr().add(i).cast());
                let vb = _mm_loadu_si128(b.as_ptr().add(j).cast());
                let r1 = _mm_shuffle_epi32::<0b00_11_10_01>(vb);
                let r2 = _mm_shuffle_epi32::<0b01_00_11_10>(vb);
                let r3 = _mm_shuffle_epi32::<0b10_01_00_11>(vb);
                let eq = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi32(va, vb), _mm_cmpeq_epi32(va, r1)),
                    _mm_or_si128(_mm_cmpeq_epi32(va, r2), _mm_cmpeq_epi32(va, r3)),
                );
                _mm_movemask_ps(_mm_castsi128_ps(eq)).count_ones() as usize
            };
            inter += matched;
            let (x, y) = (a[i + 3], b[j + 3]);
            i += 4 * usize::from(x <= y);
            j += 4 * usize::from(y <= x);
        }
    }
    // A branch-free merge (the comparisons of hashed shingles are unpredictable), checked
    // every 16 steps for whether the overlap can still reach `need`.
    while i < a.len() && j < b.len() {
        if inter + (a.len() - i).min(b.len() - j) < need {
            return false;
        }
        for _ in 0..16 {
            if i >= a.len() || j >= b.len() {
                break;
            }
            let (x, y) = (a[i], b[j]);
            inter += usize::from(x == y);
            i += usize::from(x <= y);
            j += usize::from(y <= x);
        }
    }
    inter >= need
}

/// Jaccard estimate from two signatures: the share of equal positions.
pub fn estimate_jaccard(a: &[u32], b: &[u32]) -> f64 {
    assert_eq!(a.len(), b.len(), "signatures of different lengths");
    if a.is_empty() {
        return 0.0;
    }
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
    equal as f64 / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::shingle::shingle_set;

    #[test]
    fn identical_sets_identical_signatures_and_seed_matters() {
        let p = MinHashParams::default();
        let s = signatures(&["头痛发热咳嗽三天了", "头痛发热咳嗽三天了", "短"], &p).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.row(0), s.row(1));
        assert_eq!(s.estimate(0, 1), 1.0);
        assert_eq!(s.kind(2), TextKind::Short);
        assert!(s.row(2).iter().all(|&v| v == u32::MAX));
        let q = MinHashParams { seed: 9, ..p };
        let t = signatures(&["头痛发热咳嗽三天了"], &q).unwrap();
        assert_ne!(t.row(0), s.row(0));
    }

    #[test]
    fn sign_matches_naive_minimum() {
        let perms = Permutations::new(21, 3);
        let hashes: Vec<u64> = (0..37u64)
            .map(|i| i.wrapping_mul(0x1234_5678_9abc_def1))
            .collect();
        let mut got = vec![0; 21];
        perms.sign(&hashes, &mut got);
        for (i, g) in got.iter().enumerate() {
            let want = hashes
                .iter()
                .map(|&h| {
                    (perms.a[i]
                        .wrapping_mul(h & 0xffff_ffff)
                        .wrapping_add(perms.b[i])
                        >> 32) as u32
                })
                .min()
                .unwrap();
            assert_eq!(*g, want);
        }
    }

    #[test]
    fn exact_jaccard() {
        assert_eq!(jaccard(&[1, 2, 3, 4], &[3, 4, 5, 6]), 2.0 / 6.0);
        assert_eq!(jaccard::<u64>(&[], &[]), 1.0);
        assert_eq!(jaccard::<u64>(&[1], &[]), 0.0);
        let sp = ShingleParams::default();
        let a = shingle_set("患者头痛发热咳嗽三天，伴有咽痛", &sp).1;
        assert_eq!(jaccard(&a, &a), 1.0);
    }

    /// Kernel speed alone, best of 7 (`cargo test --release --lib minhash -- --ignored
    /// --nocapture`; `CSFT_NO_AVX512=1` to time the AVX2 kernel on an AVX-512 machine).
    #[test]
    #[ignore = "speed measurement: run with --release -- --ignored --nocapture"]
    #[allow(clippy::print_stdout)]
    fn bench_sign_kernel() {
        let perms = Permutations::new(128, 1);
        let keys: Vec<u32> = (0..226u32).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
        let mut out = vec![0u32; 128];
        let n = 20_000;
        let best = (0..7)
            .map(|_| {
                let t = std::time::Instant::now();
                for _ in 0..n {
                    perms.sign_keys(std::hint::black_box(&keys), &mut out);
                }
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        println!(
            "sign: {:.2} us per 226-shingle record, {:.3} ns per (shingle, permutation)",
            best / n as f64 * 1e6,
            best / (n * 226 * 128) as f64 * 1e9
        );
    }

    #[test]
    fn bad_params_are_rejected() {
        let p = MinHashParams {
            num_perm: 0,
            ..MinHashParams::default()
        };
        assert!(signatures(&["x"], &p).is_err());
    }
}
