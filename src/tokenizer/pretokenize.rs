//! Pre-tokenizers for byte-level BPE: a port of llama.cpp's
//! `unicode_regex_split` (src/unicode.cpp) for the pre-tokenizer types this
//! crate supports.
//!
//! llama.cpp runs a list of regexes in sequence, each one re-splitting the
//! pieces left by the previous one. The common patterns (GPT-2, Llama 3,
//! Qwen2, Qwen3.5) have hand-written splitters there
//! (`unicode_regex_split_custom_*`), which are transcribed below branch for
//! branch. The few remaining patterns go through `std::regex` in llama.cpp on a
//! "collapsed" text where every non-ASCII codepoint is replaced by one byte per
//! category; they are simple enough (`C+`, `C`, `\s?C+`, ...) to be matched
//! here by small hand-written matchers with the same leftmost-greedy results.

use super::unicode::{self, Flags};

/// One regex of a pre-tokenizer's list (`llm_tokenizer_bpe::regex_exprs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
    /// (`unicode_regex_split_custom_gpt2`).
    Gpt2,
    /// Llama 3 (`\p{N}{1,3}`), Qwen2 (`\p{N}`) and Qwen3.5 (Qwen2 with `\p{M}`
    /// joining letter runs) (`unicode_regex_split_custom_llama3/qwen2/qwen35`).
    Llama3Family { max_digits: usize, marks: bool },
    /// A regex matched the way `unicode_regex_split_stl` does.
    Regex(Pattern),
}

/// The non-custom regexes used by the supported pre-tokenizers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `C+`
    Run(Class),
    /// `C`
    Each(Class),
    /// `\s?C+`
    OptSpaceRun(Class),
    /// `\s+$`
    TrailingSpace,
    /// `[0-9][0-9][0-9]`
    ThreeAsciiDigits,
}

/// Character classes, evaluated like llama.cpp evaluates them: classes with
/// `\p{..}` on the collapsed byte (`unicode_regex_split`'s `text_collapsed`),
/// literal ones on the codepoint with non-ASCII whitespace mapped to 0x0B
/// (its `std::wregex` fallback).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// `\p{N}`
    Number,
    /// `\p{L}`
    Letter,
    /// `\p{P}`
    Punctuation,
    /// `[\p{P}\$\+<=>\^~\|]` (the `default` pre-tokenizer)
    DefaultPunct,
    /// `[\p{P}\$\+<=>\^~\|`]` (falcon)
    FalconPunct,
    /// `[\r\n]`
    CrLf,
    /// A literal class of codepoint ranges (inclusive), e.g. `[一-龥ࠀ-一가-퟿]`.
    Ranges(&'static [(u32, u32)]),
}

/// `[一-龥ࠀ-一가-퟿]` from the deepseek pre-tokenizers.
pub(crate) const DEEPSEEK_CJK: &[(u32, u32)] = &[(0x4E00, 0x9FA5), (0x0800, 0x4E00), (0xAC00, 0xD7FF)];

/// `[!-/:-~！-／：-～‘-‟　-。]` from deepseek-llm.
pub(crate) const DEEPSEEK_LLM_PUNCT: &[(u32, u32)] =
    &[(0x21, 0x2F), (0x3A, 0x7E), (0xFF01, 0xFF0F), (0xFF1A, 0xFF5E), (0x2018, 0x201F), (0x3000, 0x3002)];

/// The letter class of deepseek-llm's second regex, copied verbatim from
/// llama.cpp (`LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM`) and parsed at build time by
/// [`parse_class`].
pub(crate) const DEEPSEEK_LLM_LETTERS_SRC: &str = "A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃";

/// Parses the body of a literal regex class (`a-zµ...`) into inclusive ranges.
pub(crate) fn parse_class(src: &str) -> Vec<(u32, u32)> {
    let chars: Vec<u32> = src.chars().map(u32::from).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if i + 2 < chars.len() && chars[i + 1] == u32::from('-') {
            out.push((chars[i], chars[i + 2]));
            i += 3;
        } else {
            out.push((chars[i], chars[i]));
            i += 1;
        }
    }
    out
}

/// The collapsed byte llama.cpp's `unicode_regex_split` gives a codepoint:
/// ASCII stays itself, non-ASCII whitespace becomes 0x0B, and other codepoints
/// become one byte per category (0xD1 number .. 0xD5 symbol, 0xD0 other).
fn collapse(cp: u32, flags: Flags) -> u32 {
    if cp < 128 {
        return cp;
    }
    if flags.whitespace {
        return 0x0B;
    }
    match flags.category {
        unicode::NUMBER => 0xD1,
        unicode::LETTER => 0xD2,
        unicode::PUNCTUATION => 0xD3,
        unicode::ACCENT_MARK => 0xD4,
        0x40 => 0xD5, // symbol
        _ => 0xD0,
    }
}

/// `\s` of `std::regex` on collapsed/mapped text: C `isspace`.
fn is_regex_space(c: u32) -> bool {
    c == 0x20 || (0x09..=0x0D).contains(&c)
}

fn is_ascii_punct(c: u32) -> bool {
    // `k_ucat_map[PUNCTUATION]`: !-#%-*,-/:-;?-@[-]_{}
    matches!(c, 0x21..=0x23 | 0x25..=0x2A | 0x2C..=0x2F | 0x3A..=0x3B | 0x3F..=0x40 | 0x5B..=0x5D | 0x5F | 0x7B | 0x7D)
}

impl Class {
    /// `c` is the collapsed byte for `\p` classes, the whitespace-mapped
    /// codepoint for literal ones (see [`Splitter::view`]).
    fn matches(self, collapsed: u32, mapped: u32, extra: &[(u32, u32)]) -> bool {
        let c = collapsed;
        match self {
            Class::Number => c == 0xD1 || (0x30..=0x39).contains(&c),
            Class::Letter => c == 0xD2 || (0x41..=0x5A).contains(&c) || (0x61..=0x7A).contains(&c),
            Class::Punctuation => c == 0xD3 || is_ascii_punct(c),
            Class::DefaultPunct => {
                c == 0xD3 || is_ascii_punct(c) || matches!(c, 0x24 | 0x2B | 0x3C..=0x3E | 0x5E | 0x7E | 0x7C)
            }
            Class::FalconPunct => {
                c == 0xD3 || is_ascii_punct(c) || matches!(c, 0x24 | 0x2B | 0x3C..=0x3E | 0x5E | 0x7E | 0x7C | 0x60)
            }
            Class::CrLf => mapped == 0x0D || mapped == 0x0A,
            Class::Ranges(ranges) => {
                // an empty static list stands for the run-time class
                let ranges = if ranges.is_empty() { extra } else { ranges };
                ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&mapped))
            }
        }
    }
}

/// Splits `text` into the words llama.cpp's `unicode_regex_split` produces
/// (before byte encoding). `extra_ranges` backs `Class::Ranges(&[])` (and
/// only it), used for classes built at run time (deepseek-llm's letters).
pub(crate) fn split<'t>(text: &'t str, steps: &[Step], extra_ranges: &[(u32, u32)]) -> Vec<&'t str> {
    let cpts: Vec<u32> = text.chars().map(u32::from).collect();
    let flags: Vec<Flags> = cpts.iter().map(|&c| Flags::of(c)).collect();
    let sp = Splitter { cpts: &cpts, flags: &flags, extra: extra_ranges };

    // lengths in codepoints, like llama.cpp's `bpe_offsets`
    let mut offsets = vec![cpts.len()];
    for step in steps {
        let mut next = Vec::with_capacity(offsets.len());
        let mut start = 0;
        for &len in &offsets {
            let (ini, end) = (start, start + len);
            start = end;
            match *step {
                Step::Gpt2 => sp.gpt2(ini, end, &mut next),
                Step::Llama3Family { max_digits, marks } => sp.llama3(ini, end, max_digits, marks, &mut next),
                Step::Regex(p) => sp.regex(ini, end, p, &mut next),
            }
        }
        // llama.cpp only replaces the offsets when a custom splitter produced
        // some; for an empty text every splitter yields nothing anyway.
        if !next.is_empty() {
            offsets = next;
        }
    }

    // codepoint lengths -> &str slices
    let mut bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    bounds.push(text.len());
    let mut words = Vec::with_capacity(offsets.len());
    let mut cp_pos = 0;
    for len in offsets {
        let (Some(&from), Some(&to)) = (bounds.get(cp_pos), bounds.get(cp_pos + len)) else {
            break;
        };
        cp_pos += len;
        if to > from {
            words.push(&text[from..to]);
        }
    }
    words
}

/// Sentinel for "outside the fragment" (`OUT_OF_RANGE` in llama.cpp).
const OUT_OF_RANGE: u32 = 0xFFFF_FFFF;

struct Splitter<'a> {
    cpts: &'a [u32],
    flags: &'a [Flags],
    extra: &'a [(u32, u32)],
}

/// llama.cpp's `_add_token` helper: emits the piece `[prev_end, end)`.
struct Emitter<'o> {
    prev_end: usize,
    out: &'o mut Vec<usize>,
}

impl Emitter<'_> {
    fn add(&mut self, end: usize) -> usize {
        let len = end.saturating_sub(self.prev_end);
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
        len
    }
}

impl Splitter<'_> {
    /// Collapsed byte and whitespace-mapped codepoint at `pos`.
    fn view(&self, pos: usize) -> (u32, u32) {
        let cp = self.cpts[pos];
        let f = self.flags[pos];
        let mapped = if cp > 0x7F && f.whitespace { 0x0B } else { cp };
        (collapse(cp, f), mapped)
    }

    fn class_at(&self, pos: usize, class: Class) -> bool {
        let (c, m) = self.view(pos);
        class.matches(c, m, self.extra)
    }

    fn space_at(&self, pos: usize) -> bool {
        is_regex_space(self.view(pos).0)
    }

    /// `unicode_regex_split_stl`: leftmost matches; the gaps between them are
    /// pieces too.
    fn regex(&self, ini: usize, end: usize, pattern: Pattern, out: &mut Vec<usize>) {
        let run = |mut p: usize, class: Class| {
            while p < end && self.class_at(p, class) {
                p += 1;
            }
            p
        };
        let mut gap_start = ini;
        let mut pos = ini;
        while pos < end {
            let matched_end = match pattern {
                Pattern::Run(class) | Pattern::Each(class) if !self.class_at(pos, class) => None,
                Pattern::Run(class) => Some(run(pos, class)),
                Pattern::Each(_) => Some(pos + 1),
                Pattern::OptSpaceRun(class) => {
                    if self.space_at(pos) && pos + 1 < end && self.class_at(pos + 1, class) {
                        Some(run(pos + 1, class))
                    } else if self.class_at(pos, class) {
                        Some(run(pos, class))
                    } else {
                        None
                    }
                }
                Pattern::TrailingSpace => {
                    let mut p = pos;
                    while p < end && self.space_at(p) {
                        p += 1;
                    }
                    if p > pos && p == end {
                        Some(end)
                    } else {
                        // no position inside this whitespace run can reach the end either
                        pos = p.max(pos + 1);
                        continue;
                    }
                }
                Pattern::ThreeAsciiDigits => {
                    let digit = |p: usize| p < end && (0x30..=0x39).contains(&self.cpts[p]);
                    (digit(pos) && digit(pos + 1) && digit(pos + 2)).then_some(pos + 3)
                }
            };
            match matched_end {
                Some(m_end) if m_end > pos => {
                    if pos > gap_start {
                        out.push(pos - gap_start);
                    }
                    out.push(m_end - pos);
                    pos = m_end;
                    gap_start = m_end;
                }
                _ => pos += 1,
            }
        }
        if end > gap_start {
            out.push(end - gap_start);
        }
    }

    /// `unicode_regex_split_custom_gpt2`.
    fn gpt2(&self, ini: usize, end: usize, out: &mut Vec<usize>) {
        let get_cpt = |p: usize| {
            if (ini..end).contains(&p) { self.cpts[p] } else { OUT_OF_RANGE }
        };
        let get_flags = |p: usize| {
            if (ini..end).contains(&p) { self.flags[p] } else { Flags::default() }
        };
        let mut em = Emitter { prev_end: ini, out };
        let apos = u32::from('\'');
        let space = u32::from(' ');
        let ch = |c: char| u32::from(c);

        let mut pos = ini;
        while pos < end {
            let cpt = get_cpt(pos);
            let flags = get_flags(pos);

            // regex: 's|'t|'re|'ve|'m|'ll|'d
            if cpt == apos && pos + 1 < end {
                let next = get_cpt(pos + 1);
                if next == ch('s') || next == ch('t') || next == ch('m') || next == ch('d') {
                    pos += em.add(pos + 2);
                    continue;
                }
                if pos + 2 < end {
                    let next2 = get_cpt(pos + 2);
                    if (next == ch('r') && next2 == ch('e'))
                        || (next == ch('v') && next2 == ch('e'))
                        || (next == ch('l') && next2 == ch('l'))
                    {
                        pos += em.add(pos + 3);
                        continue;
                    }
                }
            }

            let mut flags2 = if cpt == space { get_flags(pos + 1) } else { flags };
            let skip_space = usize::from(cpt == space);
            // regex: <space>?\p{L}+
            if flags2.is_letter() {
                pos += skip_space;
                while flags2.is_letter() {
                    pos += 1;
                    flags2 = get_flags(pos);
                }
                em.add(pos);
                continue;
            }
            // regex: <space>?\p{N}+
            if flags2.is_number() {
                pos += skip_space;
                while flags2.is_number() {
                    pos += 1;
                    flags2 = get_flags(pos);
                }
                em.add(pos);
                continue;
            }
            // regex: <space>?[^\s\p{L}\p{N}]+
            let other = |f: Flags| !(f.whitespace || f.is_letter() || f.is_number()) && f.is_some();
            if other(flags2) {
                pos += skip_space;
                while other(flags2) {
                    pos += 1;
                    flags2 = get_flags(pos);
                }
                em.add(pos);
                continue;
            }

            let mut num_whitespaces = 0;
            while get_flags(pos + num_whitespaces).whitespace {
                num_whitespaces += 1;
            }
            // regex: \s+(?!\S)
            if num_whitespaces > 1 && get_cpt(pos + num_whitespaces) != OUT_OF_RANGE {
                pos += num_whitespaces - 1;
                em.add(pos);
                continue;
            }
            // regex: \s+
            if num_whitespaces > 0 {
                pos += num_whitespaces;
                em.add(pos);
                continue;
            }
            // no matches
            pos += 1;
            em.add(pos);
        }
    }

    /// `unicode_regex_split_custom_llama3` (`max_digits == 3`),
    /// `unicode_regex_split_custom_qwen2` (`max_digits == 1`) and
    /// `unicode_regex_split_custom_qwen35` (`max_digits == 1`, `marks`).
    fn llama3(&self, ini: usize, end: usize, max_digits: usize, marks: bool, out: &mut Vec<usize>) {
        let get_cpt = |p: usize| {
            if (ini..end).contains(&p) { self.cpts[p] } else { OUT_OF_RANGE }
        };
        let get_flags = |p: usize| {
            if (ini..end).contains(&p) { self.flags[p] } else { Flags::default() }
        };
        let mut em = Emitter { prev_end: ini, out };
        let ch = |c: char| u32::from(c);
        let is_cr_lf = |c: u32| c == ch('\r') || c == ch('\n');
        let letterish = |f: Flags| f.is_letter() || (marks && f.is_mark());

        let mut pos = ini;
        while pos < end {
            let cpt = get_cpt(pos);
            let flags = get_flags(pos);

            // regex: (?i:'s|'t|'re|'ve|'m|'ll|'d) // case insensitive
            if cpt == ch('\'') && pos + 1 < end {
                let next = unicode::ascii_lower(get_cpt(pos + 1));
                if next == ch('s') || next == ch('t') || next == ch('m') || next == ch('d') {
                    pos += em.add(pos + 2);
                    continue;
                }
                if pos + 2 < end {
                    let next2 = unicode::ascii_lower(get_cpt(pos + 2));
                    if (next == ch('r') && next2 == ch('e'))
                        || (next == ch('v') && next2 == ch('e'))
                        || (next == ch('l') && next2 == ch('l'))
                    {
                        pos += em.add(pos + 3);
                        continue;
                    }
                }
            }

            // regex: [^\r\n\p{L}\p{N}]?\p{L}+   (qwen35: [\p{L}\p{M}]+)
            if !(is_cr_lf(cpt) || flags.is_number()) && (letterish(flags) || letterish(get_flags(pos + 1))) {
                pos += 1;
                while letterish(get_flags(pos)) {
                    pos += 1;
                }
                em.add(pos);
                continue;
            }

            // regex: \p{N}{1,3}   (qwen2/qwen35: \p{N})
            if flags.is_number() {
                if max_digits == 1 {
                    pos += 1;
                    em.add(pos);
                    continue;
                }
                let mut run_ini = pos;
                while get_flags(pos).is_number() {
                    pos += 1;
                    if pos - run_ini >= max_digits {
                        em.add(pos);
                        run_ini = pos;
                    }
                }
                em.add(pos);
                continue;
            }

            // regex: <space>?[^\s\p{L}\p{N}]+[\r\n]*   (qwen35: also excludes \p{M})
            let other = |f: Flags| !(f.whitespace || letterish(f) || f.is_number());
            let mut flags2 = if cpt == ch(' ') { get_flags(pos + 1) } else { flags };
            if other(flags2) && flags.is_some() {
                pos += usize::from(cpt == ch(' '));
                while other(flags2) && flags2.is_some() {
                    pos += 1;
                    flags2 = get_flags(pos);
                }
                let mut cpt2 = get_cpt(pos);
                while is_cr_lf(cpt2) {
                    pos += 1;
                    cpt2 = get_cpt(pos);
                }
                em.add(pos);
                continue;
            }

            let mut num_whitespaces = 0;
            let mut last_end_r_or_n = 0;
            while get_flags(pos + num_whitespaces).whitespace {
                if is_cr_lf(get_cpt(pos + num_whitespaces)) {
                    last_end_r_or_n = pos + num_whitespaces + 1;
                }
                num_whitespaces += 1;
            }
            // regex: \s*[\r\n]+
            if last_end_r_or_n > 0 {
                pos = last_end_r_or_n;
                em.add(pos);
                continue;
            }
            // regex: \s+(?!\S)
            if num_whitespaces > 1 && get_cpt(pos + num_whitespaces) != OUT_OF_RANGE {
                pos += num_whitespaces - 1;
                em.add(pos);
                continue;
            }
            // regex: \s+
            if num_whitespaces > 0 {
                pos += num_whitespaces;
                em.add(pos);
                continue;
            }
            // no matches
            pos += 1;
            em.add(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GPT2: &[Step] = &[Step::Gpt2];
    const LLAMA3: &[Step] = &[Step::Llama3Family { max_digits: 3, marks: false }];

    #[test]
    fn gpt2_split() {
        assert_eq!(split("Hello world's  end\n", GPT2, &[]), ["Hello", " world", "'s", " ", " end", "\n"]);
        assert_eq!(split("  Hello", GPT2, &[]), [" ", " Hello"]);
        assert_eq!(split("", GPT2, &[]), Vec::<&str>::new());
    }

    #[test]
    fn llama3_split() {
        assert_eq!(split("3333333", LLAMA3, &[]), ["333", "333", "3"]);
        assert_eq!(split("Hello, y'LL!\n\n ok", LLAMA3, &[]), ["Hello", ",", " y", "'LL", "!\n\n", " ok"]);
        assert_eq!(split("y'ALL", LLAMA3, &[]), ["y", "'ALL"]);
    }

    #[test]
    fn regex_steps() {
        let steps = [Step::Regex(Pattern::Each(Class::Number)), Step::Gpt2];
        assert_eq!(split("ab 123", &steps, &[]), ["ab", " ", "1", "2", "3"]);
        let steps = [Step::Regex(Pattern::ThreeAsciiDigits)];
        assert_eq!(split("x12345", &steps, &[]), ["x", "123", "45"]);
        let steps = [Step::Regex(Pattern::TrailingSpace)];
        assert_eq!(split("a  b  ", &steps, &[]), ["a  b", "  "]);
    }
}
