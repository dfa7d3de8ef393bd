//! Text dictionaries: parsing OpenCC's `key<TAB>value value…` format and the lookup structure
//! ([`Leaf`]) used for longest-prefix matching.
//!
//! A [`Leaf`] holds one dictionary file, or several merged as a flat union (OpenCC's
//! `LeafMatcher`): when a key occurs in several files, the earliest file's entry wins. Only the
//! first value of an entry is kept: OpenCC always outputs an entry's default (first) value.
//! Values borrow from the embedded `&'static str` text, so building a leaf allocates only the
//! trie. Built leaves are cached for the life of the process.

use std::sync::Mutex;

use rustc_hash::FxHashMap;

use super::utf8::{char_len, decode};

/// The entries of an OpenCC text dictionary, as (key, first value), in file order.
///
/// Follows OpenCC's `Lexicon` parser: a UTF-8 BOM is skipped, lines are split on `\n` with a
/// trailing `\r` removed, empty lines and lines starting with `#` are skipped, the key ends at
/// the first tab and the values (separated by single spaces) follow it. Lines without a tab
/// (OpenCC rejects the file) and empty keys are skipped.
pub(crate) fn entries(text: &'static str) -> impl Iterator<Item = (&'static str, &'static str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.split('\n').filter_map(|line| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (key, values) = line.split_once('\t')?;
        let value = values.split(' ').next().unwrap_or(values);
        (!key.is_empty()).then_some((key, value))
    })
}

/// Tag bit of a node reference: the node ends a key (has a value).
const HAS_VALUE: u32 = 1;
/// Tag bit of a node reference: the node has children.
const HAS_CHILDREN: u32 = 2;

/// One dictionary, or a flat union of several, as a character trie for longest-prefix matching.
///
/// Node 0 is the root; the children of a node are found in one hash table keyed by (node,
/// character), so a walk costs one lookup per character and stops at the first miss. Node
/// references are tagged, `id << 2 | HAS_VALUE | HAS_CHILDREN`, so a walk touches nothing but
/// that table until it finds a value.
pub(crate) struct Leaf {
    /// First character of a key -> tagged reference to its node (never 0).
    pub first: FxHashMap<u32, u32>,
    /// (parent node id, character) -> tagged child reference, below the first level.
    children: FxHashMap<u64, u32>,
    /// Value of each node id (empty when the node ends no key).
    values: Vec<&'static str>,
}

#[inline]
fn child_key(node: u32, c: u32) -> u64 {
    u64::from(node) << 32 | u64::from(c)
}

impl Leaf {
    /// Builds the union of `texts` (in priority order).
    pub(crate) fn build(texts: &[&'static str]) -> Leaf {
        let estimate: usize = texts.iter().map(|t| t.len() / 8).sum();
        let mut leaf = Leaf {
            first: FxHashMap::default(),
            children: FxHashMap::with_capacity_and_hasher(estimate, Default::default()),
            values: Vec::with_capacity(estimate),
        };
        // Node flags while building; references are tagged at the end.
        let mut flags: Vec<u32> = Vec::with_capacity(estimate);
        leaf.values.push("");
        flags.push(0);
        for &text in texts {
            for (key, value) in entries(text) {
                let mut node = 0u32;
                for (i, c) in key.chars().enumerate() {
                    let next = leaf.values.len() as u32;
                    let child = if i == 0 {
                        *leaf.first.entry(c as u32).or_insert(next)
                    } else {
                        *leaf
                            .children
                            .entry(child_key(node, c as u32))
                            .or_insert(next)
                    };
                    if child == next {
                        leaf.values.push("");
                        flags.push(0);
                    }
                    flags[node as usize] |= HAS_CHILDREN;
                    node = child;
                }
                // On a duplicate key the earliest entry (file) wins.
                if flags[node as usize] & HAS_VALUE == 0 {
                    flags[node as usize] |= HAS_VALUE;
                    leaf.values[node as usize] = value;
                }
            }
        }
        let tag = |id: &mut u32| *id = *id << 2 | flags[*id as usize];
        leaf.first.values_mut().for_each(tag);
        leaf.children.values_mut().for_each(tag);
        leaf
    }

    /// The longest key that prefixes `text[start..]`, whose first character leads to the tagged
    /// node reference `first`: (end byte of the key in `text`, value).
    #[inline]
    pub(crate) fn longest(
        &self,
        text: &str,
        start: usize,
        first: u32,
    ) -> Option<(usize, &'static str)> {
        let bytes = text.as_bytes();
        let mut node = first;
        let mut pos = start + char_len(bytes[start]);
        let mut best = None;
        loop {
            if node & HAS_VALUE != 0 {
                best = Some((pos, self.values[(node >> 2) as usize]));
            }
            if node & HAS_CHILDREN == 0 || pos >= bytes.len() {
                return best;
            }
            let (c, len) = decode(bytes, pos);
            match self.children.get(&child_key(node >> 2, c)) {
                Some(&child) => {
                    node = child;
                    pos += len;
                }
                None => return best,
            }
        }
    }
}

/// The leaf for the union of the named dictionaries, built once per process.
pub(crate) fn leaf(files: &[(&'static str, &'static str)]) -> &'static Leaf {
    type Cache = Vec<(Vec<&'static str>, &'static Leaf)>;
    static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
    let names: Vec<&'static str> = files.iter().map(|(name, _)| *name).collect();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, leaf)) = cache.iter().find(|(n, _)| *n == names) {
        return leaf;
    }
    let texts: Vec<&'static str> = files.iter().map(|(_, text)| *text).collect();
    let leaf: &'static Leaf = Box::leak(Box::new(Leaf::build(&texts)));
    cache.push((names, leaf));
    leaf
}

#[cfg(test)]
mod tests {
    use super::super::config::DICTS;
    use super::*;

    fn dict(name: &str) -> &'static str {
        DICTS.iter().find(|(n, _)| *n == name).unwrap().1
    }

    fn lookup(leaf: &Leaf, text: &str) -> Option<(usize, &'static str)> {
        let c0 = text.chars().next()? as u32;
        leaf.longest(text, 0, *leaf.first.get(&c0)?)
    }

    #[test]
    fn parses_values_comments_and_bom() {
        let text: &'static str = "\u{feff}# comment\n\na\tb c\r\nxy\tz\nno tab\n\tempty\n";
        let got: Vec<_> = entries(text).collect();
        assert_eq!(got, [("a", "b"), ("xy", "z")]);
    }

    /// Entry counts equal those of the compiled `.ocd2` dictionaries of the `opencc` 1.4.2
    /// Python package (dumped with its `opencc_dict`), and no key is duplicated.
    #[test]
    fn embedded_dictionaries_are_complete() {
        let expected = [
            ("CJK_Compatibility_Ideographs", 1002),
            ("HKPhrases", 82),
            ("HKPhrasesRev", 79),
            ("HKVariants", 66),
            ("HKVariantsPhrases", 272),
            ("HKVariantsRev", 74),
            ("HKVariantsRevPhrases", 310),
            ("JPShinjitaiCharacters", 403),
            ("JPShinjitaiCharactersRev", 476),
            ("JPShinjitaiPhrases", 235),
            ("STCharacters", 4012),
            ("STPhrases", 49238),
            ("STPhrases_GeneratedFromRegionalPhrases", 556),
            ("TSCharacters", 4148),
            ("TSCharactersExt", 895),
            ("TSPhrases", 477),
            ("TWPhrases", 818),
            ("TWPhrasesRev", 810),
            ("TWVariants", 41),
            ("TWVariantsPhrases", 12),
            ("TWVariantsRev", 41),
            ("TWVariantsRevPhrases", 1128),
        ];
        assert_eq!(DICTS.len(), expected.len());
        for (name, count) in expected {
            let text = dict(name);
            let keys: Vec<_> = entries(text).map(|(k, _)| k).collect();
            assert_eq!(keys.len(), count, "{name}");
            let unique: std::collections::HashSet<_> = keys.iter().collect();
            assert_eq!(unique.len(), count, "{name} has duplicate keys");
            // Every non-comment line has a tab (nothing silently skipped).
            let lines = text
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .count();
            assert_eq!(lines, count, "{name}");
        }
    }

    #[test]
    fn longest_match_and_first_value() {
        let leaf = Leaf::build(&[dict("STPhrases"), dict("STCharacters")]);
        // "干" alone has several values; the first is used.
        assert_eq!(lookup(&leaf, "干"), Some(("干".len(), "幹")));
        // The longest key wins over its prefixes.
        let (end, _) = lookup(&leaf, "一干二净了").unwrap();
        assert_eq!(end, "一干二净".len());
        assert_eq!(lookup(&leaf, "a"), None);
    }

    #[test]
    fn union_prefers_earlier_file_on_duplicate_keys() {
        static A: &str = "ab\tfirst\nx\t1\n";
        static B: &str = "ab\tsecond\nabc\tlong\nx\t2\n";
        let leaf = Leaf::build(&[A, B]);
        assert_eq!(lookup(&leaf, "abd"), Some((2, "first")));
        assert_eq!(lookup(&leaf, "abc"), Some((3, "long")));
        assert_eq!(lookup(&leaf, "x"), Some((1, "1")));
    }

    #[test]
    fn leaves_are_cached() {
        let files = [("TSPhrases", dict("TSPhrases"))];
        assert!(std::ptr::eq(leaf(&files), leaf(&files)));
    }
}
