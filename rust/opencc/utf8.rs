//! UTF-8 helpers for the conversion loops: code point decoding from a byte position, fast ASCII
//! run scanning, and OpenCC's ideographic description sequence (IDS) grouping.
//!
//! Inputs are always valid UTF-8 (`&str`), so none of this validates; OpenCC's handling of
//! invalid bytes is not reproduced because it cannot occur.

/// Byte length of the UTF-8 character whose lead byte is `lead` (valid UTF-8 only).
#[inline(always)]
pub(crate) fn char_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Code point and byte length of the character starting at `bytes[pos]` (a char boundary).
#[inline(always)]
pub(crate) fn decode(bytes: &[u8], pos: usize) -> (u32, usize) {
    let b0 = u32::from(bytes[pos]);
    match bytes[pos] {
        0x00..=0x7F => (b0, 1),
        0xC0..=0xDF => ((b0 & 0x1F) << 6 | u32::from(bytes[pos + 1]) & 0x3F, 2),
        0xE0..=0xEF => (
            (b0 & 0x0F) << 12
                | (u32::from(bytes[pos + 1]) & 0x3F) << 6
                | u32::from(bytes[pos + 2]) & 0x3F,
            3,
        ),
        _ => (
            (b0 & 0x07) << 18
                | (u32::from(bytes[pos + 1]) & 0x3F) << 12
                | (u32::from(bytes[pos + 2]) & 0x3F) << 6
                | u32::from(bytes[pos + 3]) & 0x3F,
            4,
        ),
    }
}

/// Number of leading ASCII bytes of `bytes`, eight at a time.
#[inline]
pub(crate) fn ascii_run_len(bytes: &[u8]) -> usize {
    let mut pos = 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0x80; 8]));
        if word & 0x8080_8080_8080_8080 != 0 {
            break;
        }
        pos += 8;
    }
    pos + bytes[pos..].iter().take_while(|b| b.is_ascii()).count()
}

/// First and last code points that can be IDS operators (U+2FF0..=U+2FFF).
pub(crate) const IDS_OPERATORS: std::ops::RangeInclusive<u32> = 0x2FF0..=0x2FFF;

/// Number of operands of an ideographic description operator, 0 for any other code point
/// (OpenCC `UTF8Util::IdeographicDescriptionOperatorArity`).
#[inline]
pub(crate) fn ids_arity(cp: u32) -> usize {
    match cp {
        0x2FF2 | 0x2FF3 => 3,
        0x2FFE | 0x2FFF => 1,
        0x2FF0..=0x2FFD => 2,
        _ => 0,
    }
}

enum Ids {
    Complete(usize),
    Incomplete,
    Invalid,
}

const IDS_MAX_DEPTH: usize = 16;
const IDS_MAX_CODE_POINTS: usize = 64;

/// Byte length of the complete IDS starting at `bytes[0]`, or 0 when `bytes` does not start with
/// an IDS operator or the sequence is incomplete/too deep/too long (OpenCC
/// `UTF8Util::NextIdeographicDescriptionSequenceLength`). `bytes` ends where the text being
/// converted ends: a sequence cut by that end is incomplete.
pub(crate) fn ids_len(bytes: &[u8]) -> usize {
    if bytes.is_empty() || ids_arity(decode(bytes, 0).0) == 0 {
        return 0;
    }
    let mut code_points = 0;
    match consume_ids(bytes, IDS_MAX_DEPTH, &mut code_points) {
        Ids::Complete(len) => len,
        Ids::Incomplete | Ids::Invalid => 0,
    }
}

fn consume_ids(bytes: &[u8], depth_left: usize, code_points: &mut usize) -> Ids {
    if bytes.is_empty() {
        return Ids::Incomplete;
    }
    if depth_left == 0 || *code_points >= IDS_MAX_CODE_POINTS {
        return Ids::Invalid;
    }
    let (cp, len) = decode(bytes, 0);
    *code_points += 1;
    let arity = ids_arity(cp);
    let mut offset = len;
    for _ in 0..arity {
        if offset >= bytes.len() {
            return Ids::Incomplete;
        }
        match consume_ids(&bytes[offset..], depth_left - 1, code_points) {
            Ids::Complete(n) => offset += n,
            other => return other,
        }
    }
    Ids::Complete(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_matches_std() {
        let s = "aé中𠀀";
        let mut pos = 0;
        for c in s.chars() {
            let (cp, len) = decode(s.as_bytes(), pos);
            assert_eq!((cp, len), (c as u32, c.len_utf8()));
            assert_eq!(char_len(s.as_bytes()[pos]), len);
            pos += len;
        }
    }

    #[test]
    fn ascii_runs() {
        assert_eq!(ascii_run_len(b""), 0);
        assert_eq!(ascii_run_len(b"abcdefghij"), 10);
        assert_eq!(ascii_run_len("abcdefghi中".as_bytes()), 9);
        assert_eq!(ascii_run_len("中a".as_bytes()), 0);
    }

    #[test]
    fn ids_sequences() {
        assert_eq!(ids_len("⿰氵工x".as_bytes()), "⿰氵工".len());
        assert_eq!(ids_len("⿲亻工尔".as_bytes()), "⿲亻工尔".len());
        // Nested operand.
        assert_eq!(ids_len("⿱⿰木木木".as_bytes()), "⿱⿰木木木".len());
        // Incomplete at end of text, or not an operator.
        assert_eq!(ids_len("⿰氵".as_bytes()), 0);
        assert_eq!(ids_len("氵工".as_bytes()), 0);
        // Depth limit: 17 nested unary operators are invalid.
        let deep = format!("{}木", "⿾".repeat(17));
        assert_eq!(ids_len(deep.as_bytes()), 0);
        let ok = format!("{}木", "⿾".repeat(15));
        assert_eq!(ids_len(ok.as_bytes()), ok.len());
    }
}
