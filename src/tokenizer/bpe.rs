//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`): a port of llama.cpp's
//! `llm_tokenizer_bpe` / `llm_tokenizer_bpe_session` (src/llama-vocab.cpp).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::Vocab;
use super::pretokenize::{self, Class, Pattern, Step};

/// What a `tokenizer.ggml.pre` value selects: the regex list
/// (`llm_tokenizer_bpe` constructor) and the flags `llama_vocab::impl::load`
/// sets for it.
#[derive(Clone, Debug)]
pub(crate) struct PreTokenizer {
    pub steps: Vec<Step>,
    /// Ranges for `Class::Ranges(&[])` built at run time.
    pub extra_ranges: Vec<(u32, u32)>,
    pub clean_spaces: bool,
    pub ignore_merges: bool,
    pub add_bos: bool,
}

#[derive(Clone, Copy)]
enum Regexes {
    Default,
    Gpt2,
    Llama3,
    Qwen2,
    Qwen35,
    Starcoder,
    Falcon,
    DeepseekCoder,
    DeepseekLlm,
}

/// `(names, regexes, clean_spaces, ignore_merges, add_bos)` for every
/// supported `tokenizer.ggml.pre`, as in `llama_vocab::impl::load`.
const PRE_TOKENIZERS: &[(&[&str], Regexes, bool, bool, bool)] = &[
    (&["default"], Regexes::Default, true, false, false),
    (
        &["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
        Regexes::Llama3,
        true,
        true,
        true,
    ),
    (&["dbrx", "smaug-bpe"], Regexes::Llama3, true, false, false),
    (&["deepseek-llm"], Regexes::DeepseekLlm, false, false, false),
    (&["deepseek-coder"], Regexes::DeepseekCoder, false, false, false),
    (&["falcon"], Regexes::Falcon, true, false, false),
    (
        &[
            "gpt-2",
            "phi-2",
            "jina-es",
            "jina-de",
            "gigachat",
            "jina-v2-es",
            "jina-v2-de",
            "a.x-4.0",
            "mellum",
            "modern-bert",
        ],
        Regexes::Gpt2,
        true,
        false,
        false,
    ),
    (&["mpt", "olmo", "jais", "exaone4"], Regexes::Gpt2, true, false, false),
    (&["trillion", "granite-docling"], Regexes::Gpt2, false, false, false),
    (&["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"], Regexes::Starcoder, true, false, false),
    // SmolLM / SmolLM2 (`LLAMA_VOCAB_PRE_TYPE_SMOLLM`): the starcoder regexes.
    (&["command-r", "smollm"], Regexes::Starcoder, false, false, false),
    (
        &["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "hunyuan", "solar-open", "grok-2"],
        Regexes::Qwen2,
        false,
        false,
        false,
    ),
    (&["stablelm2"], Regexes::Qwen2, true, false, false),
    (&["qwen35"], Regexes::Qwen35, false, false, false),
];

/// Every `tokenizer.ggml.pre` value [`PreTokenizer::from_name`] accepts.
pub(crate) fn supported_pre_tokenizers() -> Vec<&'static str> {
    PRE_TOKENIZERS.iter().flat_map(|(names, ..)| names.iter().copied()).collect()
}

impl PreTokenizer {
    /// `None` (no `tokenizer.ggml.pre`) means `default`, as in llama.cpp.
    pub fn from_name(pre: Option<&str>) -> Option<PreTokenizer> {
        let name = pre.filter(|p| !p.is_empty()).unwrap_or("default");
        let &(_, regexes, clean_spaces, ignore_merges, add_bos) =
            PRE_TOKENIZERS.iter().find(|(names, ..)| names.contains(&name))?;
        let gpt2_like_default = |extra: Class| vec![Step::Regex(Pattern::Run(extra)), Step::Gpt2];
        let mut extra_ranges = Vec::new();
        let steps = match regexes {
            // "[\p{P}\$\+<=>\^~\|]+", gpt2, "\p{N}+", "[0-9][0-9][0-9]"
            Regexes::Default => {
                let mut s = gpt2_like_default(Class::DefaultPunct);
                s.push(Step::Regex(Pattern::Run(Class::Number)));
                s.push(Step::Regex(Pattern::ThreeAsciiDigits));
                s
            }
            Regexes::Gpt2 => vec![Step::Gpt2],
            Regexes::Llama3 => vec![Step::Llama3Family { max_digits: 3, marks: false }],
            Regexes::Qwen2 => vec![Step::Llama3Family { max_digits: 1, marks: false }],
            Regexes::Qwen35 => vec![Step::Llama3Family { max_digits: 1, marks: true }],
            // "\p{N}", gpt2
            Regexes::Starcoder => vec![Step::Regex(Pattern::Each(Class::Number)), Step::Gpt2],
            // "[\p{P}\$\+<=>\^~\|`]+", gpt2, "[0-9][0-9][0-9]"
            Regexes::Falcon => {
                let mut s = gpt2_like_default(Class::FalconPunct);
                s.push(Step::Regex(Pattern::ThreeAsciiDigits));
                s
            }
            // "[\r\n]", "\s?\p{L}+", "\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\p{N}"
            Regexes::DeepseekCoder => vec![
                Step::Regex(Pattern::Each(Class::CrLf)),
                Step::Regex(Pattern::OptSpaceRun(Class::Letter)),
                Step::Regex(Pattern::OptSpaceRun(Class::Punctuation)),
                Step::Regex(Pattern::Run(Class::Ranges(pretokenize::DEEPSEEK_CJK))),
                Step::Regex(Pattern::Each(Class::Number)),
            ],
            // "[\r\n]", "\s?[A-Za-zµÀ-Ö...]+", "\s?[!-/:-~！-／：-～‘-‟　-。]+", "\s+$",
            // "[一-龥ࠀ-一가-퟿]+", "\p{N}+"
            Regexes::DeepseekLlm => {
                extra_ranges = pretokenize::parse_class(pretokenize::DEEPSEEK_LLM_LETTERS_SRC);
                vec![
                    Step::Regex(Pattern::Each(Class::CrLf)),
                    Step::Regex(Pattern::OptSpaceRun(Class::Ranges(&[]))),
                    Step::Regex(Pattern::OptSpaceRun(Class::Ranges(pretokenize::DEEPSEEK_LLM_PUNCT))),
                    Step::Regex(Pattern::TrailingSpace),
                    Step::Regex(Pattern::Run(Class::Ranges(pretokenize::DEEPSEEK_CJK))),
                    Step::Regex(Pattern::Run(Class::Number)),
                ]
            }
        };
        Some(PreTokenizer { steps, extra_ranges, clean_spaces, ignore_merges, add_bos })
    }
}

/// Merge ranks keyed by the merge line `"left right"` (the split point is the
/// first space after byte 0, as in llama.cpp's loader), first occurrence wins
/// like `std::unordered_map::emplace`.
pub(crate) struct MergeRanks {
    ranks: HashMap<String, u32>,
}

impl MergeRanks {
    pub fn new(merges: &[String]) -> MergeRanks {
        let mut ranks = HashMap::with_capacity(merges.len());
        for (i, line) in merges.iter().enumerate() {
            // lines without a separator become the pair ("", ""), which can
            // never be looked up (symbols are non-empty): skip them
            let has_sep = line.as_bytes().iter().skip(1).any(|&b| b == b' ');
            if has_sep {
                ranks.entry(line.clone()).or_insert(i as u32);
            }
        }
        MergeRanks { ranks }
    }

    /// `find_bpe_rank(left, right)`; `key` is a reusable buffer.
    fn rank(&self, left: &str, right: &str, key: &mut String) -> Option<u32> {
        // A stored key splits at its first space after byte 0, so it can only
        // be (left, right) when `left` has no space past its first byte.
        if left.is_empty() || right.is_empty() || left.as_bytes()[1..].contains(&b' ') {
            return None;
        }
        key.clear();
        key.push_str(left);
        key.push(' ');
        key.push_str(right);
        self.ranks.get(key.as_str()).copied()
    }
}

#[derive(Clone, Copy)]
struct Symbol {
    prev: Option<usize>,
    next: Option<usize>,
    start: usize,
    len: usize,
}

/// `(rank, left, right, left len, right len)`: popped lowest rank first, then
/// leftmost, like `llm_bigram_bpe::comparator`.
type QueuedBigram = (u32, usize, usize, usize, usize);

/// Tokenizes one raw-text fragment (`llm_tokenizer_bpe_session::tokenize`).
pub(crate) fn tokenize(
    vocab: &Vocab,
    ranks: &MergeRanks,
    pre: &PreTokenizer,
    byte_to_char: &[char; 256],
    text: &str,
    out: &mut Vec<u32>,
) {
    let mut key = String::new();
    let mut encoded = String::new();
    let mut symbols: Vec<Symbol> = Vec::new();
    let mut queue: BinaryHeap<Reverse<QueuedBigram>> = BinaryHeap::new();

    for word in pretokenize::split(text, &pre.steps, &pre.extra_ranges) {
        // unicode_byte_encoding_process
        encoded.clear();
        encoded.extend(word.bytes().map(|b| byte_to_char[b as usize]));
        let word = encoded.as_str();

        symbols.clear();
        queue.clear();
        if pre.ignore_merges && vocab.token_id(word).is_some() {
            symbols.push(Symbol { prev: None, next: None, start: 0, len: word.len() });
        } else {
            let mut chars = word.char_indices().peekable();
            while let Some((start, c)) = chars.next() {
                let idx = symbols.len();
                symbols.push(Symbol {
                    prev: idx.checked_sub(1),
                    next: chars.peek().map(|_| idx + 1),
                    start,
                    len: c.len_utf8(),
                });
            }
        }

        let text_of = |s: &Symbol| &word[s.start..s.start + s.len];
        let mut add_bigram =
            |symbols: &[Symbol], queue: &mut BinaryHeap<_>, left: Option<usize>, right: Option<usize>| {
                let (Some(l), Some(r)) = (left, right) else {
                    return;
                };
                let (ls, rs) = (&symbols[l], &symbols[r]);
                if let Some(rank) = ranks.rank(text_of(ls), text_of(rs), &mut key) {
                    queue.push(Reverse((rank, l, r, ls.len, rs.len)));
                }
            };

        for i in 1..symbols.len() {
            add_bigram(&symbols, &mut queue, Some(i - 1), Some(i));
        }

        while let Some(Reverse((_, l, r, l_len, r_len))) = queue.pop() {
            let (ls, rs) = (symbols[l], symbols[r]);
            // Skip outdated bigrams. llama.cpp compares the texts; symbols have
            // fixed starts and only grow by absorbing their right neighbour,
            // so equal lengths mean equal texts.
            if ls.len == 0 || rs.len == 0 || ls.len != l_len || rs.len != r_len {
                continue;
            }
            symbols[l].len += rs.len;
            symbols[l].next = rs.next;
            symbols[r].len = 0;
            if let Some(n) = rs.next {
                symbols[n].prev = Some(l);
            }
            add_bigram(&symbols, &mut queue, symbols[l].prev, Some(l));
            add_bigram(&symbols, &mut queue, Some(l), symbols[l].next);
        }

        for sym in symbols.iter().filter(|s| s.len > 0) {
            let piece = text_of(sym);
            match vocab.token_id(piece) {
                Some(id) => out.push(id),
                None => {
                    // llama.cpp looks every byte up as a one-byte string; only
                    // ASCII bytes can name a token there.
                    for &b in piece.as_bytes() {
                        if b.is_ascii() {
                            let mut buf = [0u8; 4];
                            if let Some(id) = vocab.token_id(char::from(b).encode_utf8(&mut buf)) {
                                out.push(id);
                            }
                        }
                    }
                }
            }
        }
    }
}
