//! Codepoint classification and the GPT-2 byte-level alphabet, mirroring
//! llama.cpp's `src/unicode.cpp` (`unicode_cpt_flags_from_cpt`,
//! `unicode_byte_to_utf8_map`, `unicode_utf8_to_byte_map`).

use super::unicode_tables::{CATEGORY_RANGES, WHITESPACE};

/// Category bits, same values as llama.cpp's `unicode_cpt_flags`.
pub(crate) const UNDEFINED: u8 = 0x01;
pub(crate) const NUMBER: u8 = 0x02;
pub(crate) const LETTER: u8 = 0x04;
pub(crate) const ACCENT_MARK: u8 = 0x10;
pub(crate) const PUNCTUATION: u8 = 0x20;

/// The flags llama.cpp computes for one codepoint. `bits == 0` is the
/// "no codepoint" value llama.cpp's splitters get past the end of a fragment
/// (`unicode_cpt_flags{}`); every real codepoint has at least one bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub category: u8,
    pub whitespace: bool,
}

impl Flags {
    /// Flags of an actual codepoint.
    pub fn of(cp: u32) -> Flags {
        Flags { category: category(cp), whitespace: is_whitespace(cp) }
    }

    pub fn is_letter(self) -> bool {
        self.category & LETTER != 0
    }
    pub fn is_number(self) -> bool {
        self.category & NUMBER != 0
    }
    pub fn is_mark(self) -> bool {
        self.category & ACCENT_MARK != 0
    }
    /// llama.cpp's `flags.as_uint() != 0`: true for any real codepoint.
    pub fn is_some(self) -> bool {
        self.category != 0 || self.whitespace
    }
}

/// General category flag of `cp` (exactly one bit; `UNDEFINED` for unassigned).
pub(crate) fn category(cp: u32) -> u8 {
    // Ranges are sorted by start and the first one starts at 0.
    let idx = CATEGORY_RANGES.partition_point(|&(start, _)| start <= cp);
    match idx.checked_sub(1) {
        Some(i) => CATEGORY_RANGES[i].1,
        None => UNDEFINED,
    }
}

pub(crate) fn is_whitespace(cp: u32) -> bool {
    WHITESPACE.binary_search(&cp).is_ok()
}

/// `unicode_tolower` restricted to what the contraction matchers compare
/// against: in llama.cpp's tables the only codepoints lowering to one of
/// `s t m d r e v l` are their ASCII capitals, so ASCII lowering is exact here.
pub(crate) fn ascii_lower(cp: u32) -> u32 {
    if (u32::from(b'A')..=u32::from(b'Z')).contains(&cp) { cp + 32 } else { cp }
}

/// GPT-2's byte -> printable codepoint table (`unicode_byte_to_utf8_map`).
pub(crate) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut mapped = [false; 256];
    for b in (0x21..=0x7Eu32).chain(0xA1..=0xAC).chain(0xAE..=0xFF) {
        table[b as usize] = char::from_u32(b).unwrap_or('\u{FFFD}');
        mapped[b as usize] = true;
    }
    let mut n = 0u32;
    for b in 0..256usize {
        if !mapped[b] {
            table[b] = char::from_u32(256 + n).unwrap_or('\u{FFFD}');
            n += 1;
        }
    }
    table
}

/// Inverse of [`byte_to_char_table`] (`unicode_utf8_to_byte_map`), indexed by
/// codepoint; only codepoints below 0x144 can be in it.
pub(crate) fn char_to_byte_table() -> Vec<Option<u8>> {
    let mut inverse = vec![None; 0x144];
    for (b, c) in byte_to_char_table().iter().enumerate() {
        if let Some(slot) = inverse.get_mut(*c as usize) {
            *slot = Some(b as u8);
        }
    }
    inverse
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_match_llama_cpp() {
        assert_eq!(category('a' as u32), LETTER);
        assert_eq!(category('7' as u32), NUMBER);
        assert_eq!(category('!' as u32), PUNCTUATION);
        assert_eq!(category(0x0301), ACCENT_MARK); // combining acute
        assert_eq!(category('我' as u32), LETTER);
        assert!(is_whitespace(0x3000) && is_whitespace('\n' as u32) && !is_whitespace(0x1C));
        assert!(!Flags::default().is_some());
    }

    #[test]
    fn byte_table_is_a_bijection() {
        let fwd = byte_to_char_table();
        let inv = char_to_byte_table();
        for b in 0..=255u8 {
            assert_eq!(inv[fwd[b as usize] as usize], Some(b));
        }
        assert_eq!(fwd[b' ' as usize], 'Ġ');
        assert_eq!(fwd[b'\n' as usize], 'Ċ');
    }
}
