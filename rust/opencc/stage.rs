//! One OpenCC conversion (or the max-match segmentation) over one dictionary tree: the
//! per-position matching loop of OpenCC's `Conversion::AppendConverted` and
//! `MaxMatchSegmentation::Segment`.
//!
//! At each position the dictionary tree gives the longest match under its group policies
//! (short-circuit: first member with any match; union: longest, earliest on a tie). Matched
//! keys are replaced by their value (or become a segment); an unmatched position copies one
//! character, or a whole ideographic description sequence when one starts there. Characters that
//! start no key are skipped in bulk, which gives the same result as failed lookups.

use std::sync::Mutex;

use rustc_hash::FxHashMap;

use super::config::{DictSpec, Policy};
use super::dict::{leaf, Leaf};
use super::utf8::{ascii_run_len, decode, ids_arity, ids_len, IDS_OPERATORS};

/// A dictionary tree; union subtrees made only of files are merged into one leaf.
enum Node {
    /// Index into `Stage::leaves`.
    Leaf(usize),
    Group(Policy, Vec<Node>),
}

/// Row value of a code point that starts no key but is an IDS operator.
const IDS_ONLY: u32 = u32::MAX;

/// A compiled conversion stage.
pub(crate) struct Stage {
    root: Node,
    leaves: Vec<&'static Leaf>,
    /// BMP code point -> 1-based row in `rows` when some key starts with it, [`IDS_ONLY`] for an
    /// IDS operator that starts no key, 0 otherwise.
    bmp: Box<[u32]>,
    /// The same for code points outside the BMP (absent = 0).
    non_bmp: FxHashMap<u32, u32>,
    /// Per row, per leaf: the leaf's trie node for that first character (0 = none).
    rows: Vec<u32>,
    /// Whether some key starts with an ASCII character (else ASCII runs are skipped in bulk).
    any_ascii: bool,
}

fn flattenable(spec: &DictSpec) -> bool {
    match spec {
        DictSpec::File(..) => true,
        DictSpec::Group(Policy::Union, members) => members.iter().all(flattenable),
        DictSpec::Group(Policy::ShortCircuit, _) => false,
    }
}

fn collect_files(spec: &DictSpec, out: &mut Vec<(&'static str, &'static str)>) {
    match spec {
        DictSpec::File(name, text) => out.push((name, text)),
        DictSpec::Group(_, members) => members.iter().for_each(|m| collect_files(m, out)),
    }
}

fn build_node(spec: &DictSpec, leaves: &mut Vec<&'static Leaf>) -> Node {
    match spec {
        DictSpec::Group(_, members) if members.len() == 1 => build_node(&members[0], leaves),
        DictSpec::Group(policy, members) if !flattenable(spec) => Node::Group(
            *policy,
            members.iter().map(|m| build_node(m, leaves)).collect(),
        ),
        _ => {
            let mut files = Vec::new();
            collect_files(spec, &mut files);
            leaves.push(leaf(&files));
            Node::Leaf(leaves.len() - 1)
        }
    }
}

/// The stage for `spec`, built once per process (configs share most of their stages).
pub(crate) fn stage(spec: &DictSpec) -> &'static Stage {
    static CACHE: Mutex<Vec<(DictSpec, &'static Stage)>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, stage)) = cache.iter().find(|(s, _)| s == spec) {
        return stage;
    }
    let stage: &'static Stage = Box::leak(Box::new(Stage::new(spec)));
    cache.push((spec.clone(), stage));
    stage
}

impl Stage {
    pub(crate) fn new(spec: &DictSpec) -> Stage {
        let mut leaves = Vec::new();
        let root = build_node(spec, &mut leaves);
        let n = leaves.len();
        let mut bmp = vec![0u32; 0x10000].into_boxed_slice();
        let mut non_bmp = FxHashMap::default();
        let mut rows: Vec<u32> = Vec::new();
        for (i, leaf) in leaves.iter().enumerate() {
            for (&c, &node) in &leaf.first {
                let slot = match usize::try_from(c) {
                    Ok(c) if c < bmp.len() => &mut bmp[c],
                    _ => non_bmp.entry(c).or_insert(0),
                };
                if *slot == 0 {
                    rows.resize(rows.len() + n, 0);
                    *slot = (rows.len() / n) as u32;
                }
                rows[(*slot as usize - 1) * n + i] = node;
            }
        }
        for c in IDS_OPERATORS.filter(|&c| ids_arity(c) > 0) {
            if bmp[c as usize] == 0 {
                bmp[c as usize] = IDS_ONLY;
            }
        }
        Stage {
            root,
            leaves,
            any_ascii: bmp[..0x80].iter().any(|&r| r != 0),
            bmp,
            non_bmp,
            rows,
        }
    }

    /// Converts `text`, appending to `out`.
    pub(crate) fn convert(&self, text: &str, out: &mut String) {
        let mut copied = 0;
        self.scan(text, |start, end, value| {
            out.push_str(&text[copied..start]);
            out.push_str(value);
            copied = end;
        });
        out.push_str(&text[copied..]);
    }

    /// Max-match segmentation: calls `emit(segment, value)` for each segment in order, where a
    /// segment is either one matched key (with its value in this stage's dictionary) or a
    /// maximal run of unmatched text (value `None`).
    pub(crate) fn segment<'t>(
        &self,
        text: &'t str,
        mut emit: impl FnMut(&'t str, Option<&'static str>),
    ) {
        let mut seg_start = 0;
        self.scan(text, |start, end, value| {
            if start > seg_start {
                emit(&text[seg_start..start], None);
            }
            emit(&text[start..end], Some(value));
            seg_start = end;
        });
        if seg_start < text.len() {
            emit(&text[seg_start..], None);
        }
    }

    /// The dictionary this stage consults first at every position, if there is one (a lone
    /// dictionary, or the first member of short-circuit groups).
    pub(crate) fn first_leaf(&self) -> Option<&'static Leaf> {
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(i) => return Some(self.leaves[*i]),
                Node::Group(Policy::ShortCircuit, members) => node = members.first()?,
                Node::Group(Policy::Union, _) => return None,
            }
        }
    }

    /// Whether this stage is one dictionary (no group).
    pub(crate) fn is_single_leaf(&self) -> bool {
        matches!(self.root, Node::Leaf(_))
    }

    /// Walks `text`, calling `on_match(start, end, value)` for each dictionary match.
    #[inline]
    fn scan(&self, text: &str, mut on_match: impl FnMut(usize, usize, &'static str)) {
        let bytes = text.as_bytes();
        let mut pos = 0;
        while pos < bytes.len() {
            if bytes[pos] < 0x80 && !self.any_ascii {
                pos += ascii_run_len(&bytes[pos..]);
                continue;
            }
            let (c, len) = decode(bytes, pos);
            let row = match self.bmp.get(c as usize) {
                Some(&row) => row,
                None if self.non_bmp.is_empty() => 0,
                None => self.non_bmp.get(&c).copied().unwrap_or(0),
            };
            if row == 0 {
                pos += len;
                continue;
            }
            let found = if row == IDS_ONLY {
                None
            } else {
                let n = self.leaves.len();
                let start = (row as usize - 1) * n;
                self.match_node(&self.root, text, pos, &self.rows[start..start + n])
            };
            match found {
                Some((end, value)) => {
                    on_match(pos, end, value);
                    pos = end;
                }
                None => {
                    let ids = if IDS_OPERATORS.contains(&c) {
                        ids_len(&bytes[pos..])
                    } else {
                        0
                    };
                    pos += if ids > 0 { ids } else { len };
                }
            }
        }
    }

    /// The match of `node` at `text[pos..]`; `row` holds each leaf's node for the first char.
    fn match_node(
        &self,
        node: &Node,
        text: &str,
        pos: usize,
        row: &[u32],
    ) -> Option<(usize, &'static str)> {
        match node {
            Node::Leaf(i) => match row[*i] {
                0 => None,
                first => self.leaves[*i].longest(text, pos, first),
            },
            Node::Group(Policy::ShortCircuit, members) => members
                .iter()
                .find_map(|m| self.match_node(m, text, pos, row)),
            Node::Group(Policy::Union, members) => {
                let mut best: Option<(usize, &'static str)> = None;
                for m in members {
                    if let Some(found) = self.match_node(m, text, pos, row) {
                        match best {
                            Some(b) if b.0 >= found.0 => {}
                            _ => best = Some(found),
                        }
                    }
                }
                best
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a() -> DictSpec {
        DictSpec::File("test-A", "ab\tA\nb\tB\n")
    }

    fn b() -> DictSpec {
        DictSpec::File("test-B", "abc\tC\na\tX\n")
    }

    fn convert(spec: &DictSpec, text: &str) -> String {
        let mut out = String::new();
        Stage::new(spec).convert(text, &mut out);
        out
    }

    #[test]
    fn short_circuit_takes_first_member_with_any_match() {
        let spec = DictSpec::Group(Policy::ShortCircuit, vec![a(), b()]);
        // A matches "ab" although B has the longer "abc".
        assert_eq!(convert(&spec, "abcz"), "Acz");
        // Nothing in A starts with "a" alone, but B's "a" is used when A has no match.
        assert_eq!(convert(&spec, "ac"), "Xc");
    }

    #[test]
    fn union_takes_longest() {
        let spec = DictSpec::Group(Policy::Union, vec![a(), b()]);
        assert_eq!(convert(&spec, "abcz"), "Cz");
        assert_eq!(convert(&spec, "abz"), "Az");
    }

    #[test]
    fn segments_are_matches_and_unmatched_runs() {
        let stage = Stage::new(&a());
        let mut segs = Vec::new();
        stage.segment("xxabyyb", |s, v| segs.push((s, v)));
        let expected = [
            ("xx", None),
            ("ab", Some("A")),
            ("yy", None),
            ("b", Some("B")),
        ];
        assert_eq!(segs, expected);
    }

    #[test]
    fn first_leaf_and_single_leaf() {
        let leaf_of = |spec: DictSpec| stage(&spec).first_leaf().unwrap();
        assert!(stage(&a()).is_single_leaf());
        // A union of files is one merged dictionary.
        let union = stage(&DictSpec::Group(Policy::Union, vec![a(), b()]));
        assert!(union.is_single_leaf());
        assert!(union.first_leaf().is_some());
        let short = stage(&DictSpec::Group(Policy::ShortCircuit, vec![b(), a()]));
        assert!(!short.is_single_leaf());
        assert!(std::ptr::eq(short.first_leaf().unwrap(), leaf_of(b())));
        // Stages and leaves are shared.
        assert!(std::ptr::eq(stage(&a()), stage(&a())));
        assert!(std::ptr::eq(
            leaf_of(a()),
            Stage::new(&a()).first_leaf().unwrap()
        ));
        let nested = DictSpec::Group(
            Policy::Union,
            vec![DictSpec::Group(Policy::ShortCircuit, vec![a(), b()]), b()],
        );
        assert!(stage(&nested).first_leaf().is_none());
    }

    #[test]
    fn union_over_groups_takes_longest_and_earliest_on_ties() {
        let nested = DictSpec::Group(
            Policy::Union,
            vec![DictSpec::Group(Policy::ShortCircuit, vec![a(), b()]), b()],
        );
        // The short-circuit member gives "ab" -> A, the plain b() gives the longer "abc" -> C.
        assert_eq!(convert(&nested, "abc"), "C");
        // Equal lengths: the earlier member wins ("ab" -> A, not Z).
        let tie = DictSpec::Group(
            Policy::Union,
            vec![
                DictSpec::Group(Policy::ShortCircuit, vec![a(), b()]),
                DictSpec::File("test-Z", "ab\tZ\n"),
            ],
        );
        assert_eq!(convert(&tie, "abz"), "Az");
    }

    #[test]
    fn ids_sequence_is_copied_whole() {
        static D: &str = "氵\tW\n";
        let spec = DictSpec::File("test-D", D);
        assert_eq!(convert(&spec, "氵⿰氵工氵"), "W⿰氵工W");
        // An incomplete sequence is not grouped.
        assert_eq!(convert(&spec, "⿰氵"), "⿰W");
    }
}
