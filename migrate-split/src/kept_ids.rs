//! The ids copied into a parent table, kept as a bitset while the split runs, so that a child's reference
//! can be checked against the loaded output (is it dangling?) at the cost of a bit test per row instead of a
//! b-tree lookup. Memory is bounded: ids past [`MAX_TRACKED_ID`] (or negative) are not tracked; the set then
//! reports itself overflowed and the caller counts that parent's dangling references with SQL afterwards.

/// Largest id tracked: 2^27 ids take 16 MiB at most.
pub(crate) const MAX_TRACKED_ID: i64 = 1 << 27;

#[derive(Debug, Default)]
pub(crate) struct KeptIds {
    bits: Vec<u64>,
    overflowed: bool,
}

impl KeptIds {
    pub fn insert(&mut self, id: i64) {
        if !(0..MAX_TRACKED_ID).contains(&id) {
            self.overflowed = true;
            return;
        }
        let (word, bit) = ((id / 64) as usize, id % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << bit;
    }

    /// Whether `id` was inserted; `None` once an id could not be tracked (the answer is unknown).
    pub fn contains(&self, id: i64) -> Option<bool> {
        if self.overflowed {
            return None;
        }
        if !(0..MAX_TRACKED_ID).contains(&id) {
            return Some(false);
        }
        let (word, bit) = ((id / 64) as usize, id % 64);
        Some(self.bits.get(word).is_some_and(|w| w & (1 << bit) != 0))
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_ids_and_says_when_it_cannot() {
        let mut k = KeptIds::default();
        for id in [0, 1, 63, 64, 1000, MAX_TRACKED_ID - 1] {
            k.insert(id);
        }
        for id in [0, 1, 63, 64, 1000, MAX_TRACKED_ID - 1] {
            assert_eq!(k.contains(id), Some(true), "{id}");
        }
        for id in [2, 65, 999, -1, MAX_TRACKED_ID, i64::MAX] {
            assert_eq!(k.contains(id), Some(false), "{id}");
        }
        k.insert(MAX_TRACKED_ID);
        assert!(k.overflowed());
        assert_eq!(k.contains(1), None);
        let mut neg = KeptIds::default();
        neg.insert(-5);
        assert!(neg.overflowed());
    }
}
