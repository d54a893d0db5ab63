//! A running digest of the values written to an output table, compared with the same digest of the rows
//! read back from the output file: the proof that what is in the file is what was meant to be copied.
//!
//! Not cryptographic (nobody adversarial is involved: it catches a dropped, reordered or altered value),
//! and fast enough to run over every byte twice without showing in the split's time. Two independent
//! 64-bit lanes, each a multiply-rotate chain over 8-byte words; every value is framed by its type and
//! length, so `("ab", "c")` and `("a", "bc")` differ.

use rusqlite::types::ValueRef;

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowDigest {
    a: u64,
    b: u64,
}

impl Default for RowDigest {
    fn default() -> Self {
        RowDigest {
            a: 0x243F_6A88_85A3_08D3,
            b: 0x1319_8A2E_0370_7344,
        }
    }
}

impl RowDigest {
    fn word(&mut self, w: u64) {
        self.a = (self.a ^ w).wrapping_mul(K1).rotate_left(29);
        self.b = (self.b.rotate_left(23) ^ w).wrapping_mul(K2);
    }

    fn bytes(&mut self, tag: u64, bytes: &[u8]) {
        self.word(tag | ((bytes.len() as u64) << 8));
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last));
        }
    }

    /// Adds one value.
    pub fn value(&mut self, v: ValueRef<'_>) {
        match v {
            ValueRef::Null => self.word(0xA0),
            ValueRef::Integer(i) => {
                self.word(0xA1);
                self.word(i as u64);
            }
            ValueRef::Real(f) => {
                self.word(0xA2);
                self.word(f.to_bits());
            }
            ValueRef::Text(t) => self.bytes(0xA3, t),
            ValueRef::Blob(b) => self.bytes(0xA4, b),
        }
    }

    /// Ends a row (so a value moved to the next row changes the digest).
    pub fn end_row(&mut self) {
        self.word(0xAF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(rows: &[&[ValueRef<'_>]]) -> RowDigest {
        let mut d = RowDigest::default();
        for r in rows {
            for v in *r {
                d.value(*v);
            }
            d.end_row();
        }
        d
    }

    #[test]
    fn framing_order_and_types_matter() {
        let t = |s: &'static str| ValueRef::Text(s.as_bytes());
        let base = digest(&[&[t("ab"), t("c")]]);
        assert_eq!(base, digest(&[&[t("ab"), t("c")]]));
        assert_ne!(base, digest(&[&[t("a"), t("bc")]]));
        assert_ne!(base, digest(&[&[t("c"), t("ab")]]));
        assert_ne!(base, digest(&[&[t("ab")], &[t("c")]]));
        assert_ne!(digest(&[&[ValueRef::Integer(1)]]), digest(&[&[t("1")]]));
        assert_ne!(digest(&[&[ValueRef::Null]]), digest(&[&[ValueRef::Integer(0)]]));
        assert_ne!(digest(&[&[t("")]]), digest(&[&[ValueRef::Blob(b"")]]));
        assert_ne!(digest(&[&[t("12345678")]]), digest(&[&[t("12345679")]]));
    }
}
