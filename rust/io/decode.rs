//! Text encodings of the input: byte-order marks, lazy per-file detection, and decoding of a
//! record's bytes to UTF-8.
//!
//! Readers work on the raw bytes, which is safe for both supported encodings: in UTF-8 and in
//! GBK/GB18030 the bytes `\n`, `\r`, `"`, `,`, `\t` never occur inside a multi-byte character.
//! (In GB18030 the bytes `\`, `[`, `]`, `{`, `}` *can* be the second byte of a character, so
//! the JSON scanner steps over GB18030 characters with [`gb18030_char_len`].) Each record is
//! decoded on its own; an undecodable record is reported with the offending bytes.
//!
//! Detection (`Encoding::Auto`): a UTF-8 BOM means UTF-8 (the BOM is dropped), a GB18030 BOM
//! means GB18030, a UTF-16 BOM (or UTF-16-looking NUL pattern) is an error. Otherwise nothing is
//! decided while the data is ASCII; at the first non-ASCII byte, [`detect`] looks at a window of
//! up to [`DETECT_WINDOW`] bytes from there: valid UTF-8 → UTF-8; else whichever of UTF-8 and
//! GB18030 decodes further before its third malformed sequence (ties → UTF-8), so that a corrupt
//! record in an otherwise clean file does not flip the decision; that record is then rejected.
//! It does not support UTF-16/32 or other legacy encodings (Big5, Shift-JIS, …).

use std::borrow::Cow;
use std::fmt::Write as _;

use encoding_rs::{DecoderResult, GB18030};

use super::Encoding;

/// How far ahead of the first non-ASCII byte detection looks.
pub(crate) const DETECT_WINDOW: usize = 1024 * 1024;

const UTF8_BOM: &[u8] = &[0xef, 0xbb, 0xbf];
const GB18030_BOM: &[u8] = &[0x84, 0x31, 0x95, 0x33];

/// The outcome of looking at the first bytes of a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bom {
    /// No BOM.
    None,
    /// A BOM of this many bytes for this encoding: skip it.
    Found(Encoding, usize),
    /// UTF-16 (BOM or NUL pattern): not supported.
    Utf16,
}

/// Looks at the start of the stream. `head` should hold at least 4 bytes unless the stream is
/// shorter.
pub(crate) fn sniff_bom(head: &[u8]) -> Bom {
    if head.starts_with(UTF8_BOM) {
        Bom::Found(Encoding::Utf8, UTF8_BOM.len())
    } else if head.starts_with(GB18030_BOM) {
        Bom::Found(Encoding::Gb18030, GB18030_BOM.len())
    } else if head.starts_with(&[0xff, 0xfe]) || head.starts_with(&[0xfe, 0xff]) {
        Bom::Utf16
    } else if head.len() >= 4
        && ((head[1] == 0 && head[3] == 0 && head[0] != 0 && head[2] != 0)
            || (head[0] == 0 && head[2] == 0 && head[1] != 0 && head[3] != 0))
    {
        // `{\0"\0` or `\0{\0"`: UTF-16 without a BOM. No text format here starts with NULs.
        Bom::Utf16
    } else {
        Bom::None
    }
}

pub(crate) const UTF16_MESSAGE: &str =
    "UTF-16 is not supported, convert to UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)";

/// How far a decoder gets into a window before giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reach {
    /// Offset of the [`GIVE_UP`]-th malformed sequence, or the window's length.
    pos: usize,
    /// Malformed sequences up to `pos` (at most [`GIVE_UP`]).
    errors: usize,
}

/// Detection tolerates this many malformed sequences minus one (a few corrupt bytes in a file
/// do not decide its encoding).
const GIVE_UP: usize = 3;

/// [`Reach`] of UTF-8 in `window`; an incomplete sequence at the very end counts only when the
/// window is the end of the file.
fn utf8_reach(window: &[u8], at_eof: bool) -> Reach {
    let mut errors = 0;
    let mut done = 0;
    loop {
        match utf8(&window[done..]) {
            Ok(_) => break,
            Err(e) => {
                let at = done + e.valid_up_to();
                match e.error_len() {
                    Some(len) => {
                        errors += 1;
                        if errors == GIVE_UP {
                            return Reach { pos: at, errors };
                        }
                        done = at + len;
                    }
                    None => {
                        errors += usize::from(at_eof);
                        break;
                    }
                }
            }
        }
    }
    Reach {
        pos: window.len(),
        errors,
    }
}

/// [`Reach`] of GB18030 in `window` (same end rule as [`utf8_reach`]).
fn gb18030_reach(window: &[u8], at_eof: bool) -> Reach {
    let mut decoder = GB18030.new_decoder_without_bom_handling();
    let mut scratch = [0u8; 16 * 1024];
    let mut errors = 0;
    let mut done = 0;
    loop {
        let (result, read, _) =
            decoder.decode_to_utf8_without_replacement(&window[done..], &mut scratch, at_eof);
        done += read;
        match result {
            DecoderResult::InputEmpty => break,
            DecoderResult::OutputFull => {}
            DecoderResult::Malformed(_, _) => {
                errors += 1;
                if errors == GIVE_UP {
                    return Reach { pos: done, errors };
                }
            }
        }
    }
    Reach {
        pos: window.len(),
        errors,
    }
}

/// Decides the encoding of a file from `window`, which starts at its first non-ASCII byte:
/// valid UTF-8 is UTF-8; otherwise the encoding that gets further before its third malformed
/// sequence wins (then the one with fewer errors; then UTF-8). Reading further rather than
/// counting errors keeps a stretch of garbage in a UTF-8 file from looking like GB18030, which
/// accepts most random byte pairs.
pub(crate) fn detect(window: &[u8], at_eof: bool) -> Encoding {
    let utf8 = utf8_reach(window, at_eof);
    if utf8.errors == 0 {
        return Encoding::Utf8;
    }
    let gb = gb18030_reach(window, at_eof);
    if (gb.pos, std::cmp::Reverse(gb.errors)) > (utf8.pos, std::cmp::Reverse(utf8.errors)) {
        Encoding::Gb18030
    } else {
        Encoding::Utf8
    }
}

/// Length of the GB18030 character starting at `bytes[0]` (a byte >= 0x80), as far as the
/// bytes show: 2 or 4 for a well-formed character, else 1 (a malformed byte is stepped over
/// alone, so that a following ASCII byte keeps its meaning, as the WHATWG decoder does).
/// `bytes` should extend 4 bytes past the start unless the data ends sooner.
#[inline]
pub(crate) fn gb18030_char_len(bytes: &[u8]) -> usize {
    let lead = bytes[0];
    if !(0x81..=0xfe).contains(&lead) || bytes.len() < 2 {
        return 1;
    }
    match bytes[1] {
        0x40..=0x7e | 0x80..=0xfe => 2,
        0x30..=0x39
            if bytes.len() >= 4
                && (0x81..=0xfe).contains(&bytes[2])
                && (0x30..=0x39).contains(&bytes[3]) =>
        {
            4
        }
        _ => 1,
    }
}

/// Where a record's bytes stopped being valid text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed {
    /// Offset of the first bad byte in the record.
    pub offset: usize,
    /// The bad bytes (at most a few).
    pub bytes: Vec<u8>,
}

impl Malformed {
    /// A reason text for the error, e.g. "invalid GBK/GB18030 text: byte ff at byte 17 of the
    /// record" (`within` names the record or field).
    pub(crate) fn reason(&self, encoding: Encoding, within: &str) -> String {
        let mut hex = String::new();
        for (i, b) in self.bytes.iter().enumerate() {
            if i > 0 {
                hex.push(' ');
            }
            let _ = write!(hex, "{b:02x}");
        }
        format!(
            "invalid {} text: byte{} {} at byte {} of {within}",
            encoding_name(encoding),
            if self.bytes.len() == 1 { "" } else { "s" },
            hex,
            self.offset
        )
    }
}

pub(crate) fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Gb18030 => "GBK/GB18030",
        Encoding::Utf8 | Encoding::Auto => "UTF-8",
    }
}

/// UTF-8 validation: SIMD first (several times faster on CJK text), std's validator for the
/// details of an error.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    simdutf8::basic::from_utf8(bytes).or_else(|_| std::str::from_utf8(bytes))
}

/// Decodes `bytes` strictly. `Auto` (undecided: the bytes were ASCII so far) is UTF-8.
pub(crate) fn decode(bytes: &[u8], encoding: Encoding) -> Result<Cow<'_, str>, Malformed> {
    match encoding {
        Encoding::Utf8 | Encoding::Auto => match utf8(bytes) {
            Ok(s) => Ok(Cow::Borrowed(s)),
            Err(e) => {
                let offset = e.valid_up_to();
                let len = e.error_len().unwrap_or(bytes.len() - offset);
                Err(Malformed {
                    offset,
                    bytes: bytes[offset..offset + len].to_vec(),
                })
            }
        },
        Encoding::Gb18030 => {
            if bytes.is_ascii() {
                // ASCII is the same in GB18030; skip the decoder (and a copy).
                return Ok(Cow::Borrowed(
                    std::str::from_utf8(bytes).unwrap_or_default(),
                ));
            }
            match GB18030.decode_without_bom_handling_and_without_replacement(bytes) {
                Some(text) => Ok(text),
                None => Err(gb18030_malformed(bytes)),
            }
        }
    }
}

/// Finds the first malformed sequence of GB18030 `bytes`.
fn gb18030_malformed(bytes: &[u8]) -> Malformed {
    let mut decoder = GB18030.new_decoder_without_bom_handling();
    let mut scratch = [0u8; 16 * 1024];
    let mut done = 0;
    loop {
        let (result, read, _) =
            decoder.decode_to_utf8_without_replacement(&bytes[done..], &mut scratch, true);
        done += read;
        match result {
            DecoderResult::Malformed(bad, extra) => {
                let end = done - usize::from(extra);
                let start = end.saturating_sub(usize::from(bad));
                return Malformed {
                    offset: start,
                    bytes: bytes[start..end].to_vec(),
                };
            }
            DecoderResult::OutputFull => {}
            DecoderResult::InputEmpty => {
                return Malformed {
                    offset: bytes.len(),
                    bytes: Vec::new(),
                }
            }
        }
    }
}

/// Decodes `bytes`, replacing malformed sequences with U+FFFD (for error reports).
pub(crate) fn decode_lossy(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Utf8 | Encoding::Auto => String::from_utf8_lossy(bytes).into_owned(),
        Encoding::Gb18030 => GB18030.decode_without_bom_handling(bytes).0.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbk(s: &str) -> Vec<u8> {
        GB18030.encode(s).0.into_owned()
    }

    #[test]
    fn bom_sniffing() {
        assert_eq!(sniff_bom(b"\xef\xbb\xbf{}"), Bom::Found(Encoding::Utf8, 3));
        assert_eq!(
            sniff_bom(b"\x84\x31\x95\x33a"),
            Bom::Found(Encoding::Gb18030, 4)
        );
        assert_eq!(sniff_bom(b"\xff\xfe{\0"), Bom::Utf16);
        assert_eq!(sniff_bom(b"\xfe\xff\0{"), Bom::Utf16);
        assert_eq!(sniff_bom(b"{\0\"\0"), Bom::Utf16);
        assert_eq!(sniff_bom(b"{\"a\""), Bom::None);
        assert_eq!(sniff_bom(b""), Bom::None);
    }

    #[test]
    fn detects_utf8_and_gbk() {
        let text = "高血压患者能吃党参吗？我有高血压，这两天女婿来的时候给我拿了些党参泡水喝。\n";
        assert_eq!(detect(text.as_bytes(), true), Encoding::Utf8);
        assert_eq!(detect(&gbk(text), true), Encoding::Gb18030);
        // A window cut in the middle of a character is fine unless it is the end of the file.
        let cut = &text.as_bytes()[..4];
        assert_eq!(detect(cut, false), Encoding::Utf8);
        // One corrupt spot does not flip the decision either way.
        let mut bad_gbk = gbk(text);
        bad_gbk.splice(6..6, [0xff, 0xff]);
        assert_eq!(detect(&bad_gbk, true), Encoding::Gb18030);
        let mut bad_utf8 = text.repeat(20).into_bytes();
        bad_utf8.splice(3..3, [0xff]);
        assert_eq!(detect(&bad_utf8, true), Encoding::Utf8);
        // Nor does a stretch of garbage (which GB18030 mostly accepts) in a UTF-8 file.
        let mut garbage_utf8 = text.repeat(20).into_bytes();
        let noise: Vec<u8> = (0..4000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        garbage_utf8.splice(600..600, noise);
        assert_eq!(detect(&garbage_utf8, true), Encoding::Utf8);
        // A GBK file whose first non-ASCII bytes are corrupt is still GBK.
        let mut bad_start = vec![0xff, 0xff];
        bad_start.extend(gbk(text));
        assert_eq!(detect(&bad_start, true), Encoding::Gb18030);
    }

    #[test]
    fn decodes_and_locates_bad_bytes() {
        let g = gbk("党参,\"x\"");
        assert_eq!(decode(&g, Encoding::Gb18030).unwrap(), "党参,\"x\"");
        let mut bad = gbk("党参");
        bad.extend_from_slice(b"\xff\xffok");
        let m = decode(&bad, Encoding::Gb18030).unwrap_err();
        assert_eq!(m.offset, 4);
        assert_eq!(m.bytes, vec![0xff]);
        assert_eq!(
            m.reason(Encoding::Gb18030, "the record"),
            "invalid GBK/GB18030 text: byte ff at byte 4 of the record"
        );
        let m = decode(b"ab\xe4\xb8", Encoding::Utf8).unwrap_err();
        assert_eq!((m.offset, m.bytes.clone()), (2, vec![0xe4, 0xb8]));
        assert_eq!(
            decode_lossy(&bad, Encoding::Gb18030),
            "党参\u{fffd}\u{fffd}ok"
        );
    }

    #[test]
    fn gb18030_char_lengths() {
        assert_eq!(gb18030_char_len(&gbk("党")), 2);
        assert_eq!(gb18030_char_len(&[0x81, 0x30, 0x81, 0x30]), 4);
        assert_eq!(gb18030_char_len(&[0x81, b'"']), 1);
        assert_eq!(gb18030_char_len(&[0xff, 0x40]), 1);
        // A second byte that is `\` belongs to the character.
        assert_eq!(gb18030_char_len(&[0x81, b'\\']), 2);
    }
}
