//! A small set of role indices, one bit per role.

/// A set of indices into a protocol's (or a monitor's) table of role names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RoleSet {
    words: Vec<u64>,
}

impl RoleSet {
    /// The empty set.
    pub(crate) fn new() -> Self {
        RoleSet::default()
    }

    /// The set holding `i` only.
    pub(crate) fn single(i: usize) -> Self {
        let mut s = RoleSet::new();
        s.insert(i);
        s
    }

    /// Adds `i`.
    pub(crate) fn insert(&mut self, i: usize) {
        let (w, b) = (i / 64, i % 64);
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << b;
    }

    /// Whether `i` is in the set.
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// The members, in increasing order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, bits)| {
            (0..64)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| w * 64 + b)
        })
    }

    /// Adds every member of `other`; says whether the set grew.
    pub(crate) fn union_with(&mut self, other: &RoleSet) -> bool {
        if self.words.len() < other.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        let mut grew = false;
        for (mine, theirs) in self.words.iter_mut().zip(&other.words) {
            let before = *mine;
            *mine |= theirs;
            grew |= *mine != before;
        }
        grew
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_union_and_iter() {
        let mut a = RoleSet::new();
        assert!(!a.contains(0));
        a.insert(3);
        a.insert(70);
        assert!(a.contains(3) && a.contains(70) && !a.contains(4) && !a.contains(500));
        let b = RoleSet::single(5);
        assert!(a.union_with(&b));
        assert!(!a.union_with(&b));
        assert!(a.contains(5));
        assert_eq!(a.iter().collect::<Vec<_>>(), [3, 5, 70]);
        assert_eq!(a, {
            let mut b = RoleSet::single(70);
            b.insert(5);
            b.insert(3);
            b
        });
    }
}
