//! Union-find clustering and the keeper policy that picks which record of a cluster survives.
//!
//! `UnionFind` uses path halving and union by size; the partition it yields depends only on the
//! unions made, never on their order, and labels are assigned densely by lowest member index, so
//! everything here is deterministic. A `Preference` orders records best-first by a
//! [`KeepPolicy`]: `First` (lowest index), `Longest` (most chars, ties → lowest index) or
//! `Priority` (lowest rank, e.g. a source's rank; ties → lowest index).

use std::cmp::Ordering;

use crate::error::{Error, Result};

/// Disjoint sets over `0..n`.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    pub fn new(n: usize) -> Self {
        assert!(n <= u32::MAX as usize, "at most 2^32 - 1 items");
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// The root of `x`'s set (path halving).
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    /// Merges the sets of `a` and `b`; returns whether they were apart.
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        if self.size[ra as usize] < self.size[rb as usize] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb as usize] = ra;
        self.size[ra as usize] += self.size[rb as usize];
        true
    }

    pub fn connected(&mut self, a: u32, b: u32) -> bool {
        self.find(a) == self.find(b)
    }

    /// Dense cluster labels: `labels[i]` for every item, numbered in order of each cluster's
    /// lowest index.
    pub fn labels(&mut self) -> Vec<u32> {
        let n = self.parent.len();
        let mut label_of_root = vec![u32::MAX; n];
        let mut next = 0;
        (0..n as u32)
            .map(|i| {
                let r = self.find(i) as usize;
                if label_of_root[r] == u32::MAX {
                    label_of_root[r] = next;
                    next += 1;
                }
                label_of_root[r]
            })
            .collect()
    }

    /// The clusters as ascending member lists, ordered by lowest member.
    pub fn clusters(&mut self) -> Vec<Vec<u32>> {
        groups_of(&self.labels())
    }
}

/// Groups items by dense label: `result[label]` lists its members in ascending order.
pub fn groups_of(labels: &[u32]) -> Vec<Vec<u32>> {
    let count = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut groups = vec![Vec::new(); count];
    for (i, &l) in labels.iter().enumerate() {
        groups[l as usize].push(i as u32);
    }
    groups
}

/// Which record of a cluster is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeepPolicy {
    /// The lowest index.
    #[default]
    First,
    /// The longest text (in chars); ties → lowest index.
    Longest,
    /// The lowest priority rank (rank 0 is best); ties → lowest index.
    Priority,
}

impl KeepPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Longest => "longest",
            Self::Priority => "priority",
        }
    }

    /// Parses `"first"`, `"longest"` or `"priority"`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "first" => Ok(Self::First),
            "longest" => Ok(Self::Longest),
            "priority" => Ok(Self::Priority),
            _ => Err(Error::config(format!(
                "unknown keep policy '{name}' (expected 'first', 'longest' or 'priority')"
            ))),
        }
    }
}

/// A total best-first order on records under a keep policy.
#[derive(Debug, Clone, Copy)]
pub struct Preference<'a> {
    policy: KeepPolicy,
    lengths: &'a [u32],
    ranks: &'a [u32],
}

impl<'a> Preference<'a> {
    /// `lengths` (chars per record) are needed for `Longest`, `ranks` for `Priority`.
    pub fn new(
        policy: KeepPolicy,
        lengths: Option<&'a [u32]>,
        ranks: Option<&'a [u32]>,
    ) -> Result<Self> {
        let (lengths, ranks) = match policy {
            KeepPolicy::First => (&[][..], &[][..]),
            KeepPolicy::Longest => (
                lengths.ok_or_else(|| Error::config("keep policy 'longest' needs text lengths"))?,
                &[][..],
            ),
            KeepPolicy::Priority => (
                &[][..],
                ranks
                    .ok_or_else(|| Error::config("keep policy 'priority' needs priority ranks"))?,
            ),
        };
        Ok(Self {
            policy,
            lengths,
            ranks,
        })
    }

    pub fn policy(&self) -> KeepPolicy {
        self.policy
    }

    /// `Less` when `a` is preferred to `b`.
    pub fn cmp(&self, a: u32, b: u32) -> Ordering {
        let (ia, ib) = (a as usize, b as usize);
        let primary = match self.policy {
            KeepPolicy::First => Ordering::Equal,
            KeepPolicy::Longest => self.lengths[ib].cmp(&self.lengths[ia]),
            KeepPolicy::Priority => self.ranks[ia].cmp(&self.ranks[ib]),
        };
        primary.then(a.cmp(&b))
    }

    /// The preferred record among `members` (non-empty).
    pub fn best(&self, members: &[u32]) -> u32 {
        *members
            .iter()
            .min_by(|&&a, &&b| self.cmp(a, b))
            .expect("best of an empty cluster")
    }

    /// Sorts `members` best-first.
    pub fn sort(&self, members: &mut [u32]) {
        members.sort_unstable_by(|&a, &b| self.cmp(a, b));
    }
}

/// For each item, the keeper of its cluster (`labels` dense, as from [`UnionFind::labels`]).
pub fn keepers(labels: &[u32], pref: &Preference<'_>) -> Vec<u32> {
    let groups = groups_of(labels);
    let best: Vec<u32> = groups.iter().map(|g| pref.best(g)).collect();
    labels.iter().map(|&l| best[l as usize]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_find_components() {
        let mut uf = UnionFind::new(7);
        assert!(uf.union(5, 1));
        assert!(uf.union(1, 3));
        assert!(!uf.union(3, 5));
        assert!(uf.union(6, 4));
        assert!(uf.connected(5, 3));
        assert!(!uf.connected(0, 1));
        assert_eq!(uf.labels(), vec![0, 1, 2, 1, 3, 1, 3]);
        assert_eq!(
            uf.clusters(),
            vec![vec![0], vec![1, 3, 5], vec![2], vec![4, 6]]
        );
    }

    #[test]
    fn labels_do_not_depend_on_union_order() {
        let edges = [(0u32, 9u32), (9, 4), (2, 7), (7, 8), (4, 1), (3, 6)];
        let mut a = UnionFind::new(10);
        edges.iter().for_each(|&(x, y)| {
            a.union(x, y);
        });
        let mut b = UnionFind::new(10);
        edges.iter().rev().for_each(|&(x, y)| {
            b.union(y, x);
        });
        assert_eq!(a.labels(), b.labels());
    }

    #[test]
    fn keep_policies() {
        let labels = [0, 1, 0, 0, 1];
        let lengths = [10, 3, 40, 40, 3];
        let ranks = [2, 1, 1, 0, 1];
        let first = Preference::new(KeepPolicy::First, None, None).unwrap();
        assert_eq!(keepers(&labels, &first), vec![0, 1, 0, 0, 1]);
        let longest = Preference::new(KeepPolicy::Longest, Some(&lengths), None).unwrap();
        assert_eq!(keepers(&labels, &longest), vec![2, 1, 2, 2, 1]);
        let prio = Preference::new(KeepPolicy::Priority, None, Some(&ranks)).unwrap();
        assert_eq!(keepers(&labels, &prio), vec![3, 1, 3, 3, 1]);
        let mut m = vec![0, 2, 3];
        prio.sort(&mut m);
        assert_eq!(m, vec![3, 2, 0]);
        assert!(Preference::new(KeepPolicy::Priority, Some(&lengths), None).is_err());
        assert!(Preference::new(KeepPolicy::Longest, None, Some(&ranks)).is_err());
        assert_eq!(KeepPolicy::parse("longest").unwrap(), KeepPolicy::Longest);
        assert!(KeepPolicy::parse("best").is_err());
    }
}
