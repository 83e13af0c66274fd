//! Tokenizers built from GGUF metadata alone, behaving like llama.cpp's
//! `llama_vocab` (src/llama-vocab.cpp): SentencePiece (`llama`) and byte-level
//! BPE (`gpt2`) vocabularies, special-token parsing, detokenization,
//! streaming UTF-8 decoding and the chat templates of the supported families.
//!
//! Everything here is driven by untrusted metadata, so construction validates
//! it ([`TokenizerError`]) and nothing afterwards panics on any input.

mod bpe;
pub mod chat;
mod gguf;
mod pretokenize;
mod spm;
mod stream;
mod unicode;
mod unicode_tables;

use std::collections::{BTreeSet, HashMap};
use std::fmt;

pub use chat::{ChatMessage, ChatTemplate};
pub use stream::StreamDecoder;

/// The `tokenizer.*` metadata of a GGUF file, as read by the GGUF reader.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VocabSpec {
    /// `tokenizer.ggml.model`: `"llama"` (SentencePiece) or `"gpt2"` (byte-level BPE).
    pub model: String,
    /// `tokenizer.ggml.pre`: the BPE pre-tokenizer (`"qwen2"`, `"llama-bpe"`, `"smollm"`, ...).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.scores`
    pub scores: Option<Vec<f32>>,
    /// `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte)
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.merges` (`"a b"`)
    pub merges: Option<Vec<String>>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
    pub add_space_prefix: Option<bool>,
    /// `tokenizer.chat_template`
    pub chat_template: Option<String>,
}

/// Everything that can go wrong building a tokenizer or rendering a chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenizerError {
    /// `tokenizer.ggml.model` is not one this crate implements.
    UnknownModel { model: String, supported: &'static [&'static str] },
    /// `tokenizer.ggml.pre` is not one this crate implements.
    UnsupportedPreTokenizer { pre: String, supported: Vec<&'static str> },
    /// `tokenizer.ggml.tokens` is empty.
    EmptyVocab,
    /// More tokens than token ids can address.
    TooManyTokens { n_tokens: usize },
    /// A per-token array is shorter than the token list.
    ArrayTooShort { key: &'static str, len: usize, n_tokens: usize },
    /// The same token text appears twice (llama.cpp aborts on this too).
    DuplicateToken { text: String, first: u32, second: u32 },
    /// A BPE vocabulary without `tokenizer.ggml.merges`.
    MissingMerges,
    /// A special-token id from the metadata is not in the vocabulary.
    TokenIdOutOfRange { key: &'static str, id: u32, n_tokens: usize },
    /// `add_bos`/`add_eos` is requested but the token is not defined.
    MissingSpecialToken { key: &'static str },
    /// No chat template family could be recognised.
    UnknownChatTemplate { reason: String },
    /// The template was recognised (named like llama.cpp does) but that
    /// family is not implemented here.
    UnsupportedChatTemplate { family: &'static str },
    /// A chat message role the template cannot render.
    UnknownRole { role: String, template: &'static str },
    /// A required `tokenizer.*` GGUF metadata key is absent.
    MissingKey { key: &'static str },
    /// A `tokenizer.*` GGUF metadata key holds the wrong type or an out-of-range value.
    InvalidMetadata { key: &'static str, reason: String },
}

const SUPPORTED_MODELS: &[&str] = &["llama", "gpt2"];

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownModel { model, supported } => write!(
                f,
                "unknown tokenizer model {model:?} (tokenizer.ggml.model); supported: {}",
                supported.join(", ")
            ),
            Self::UnsupportedPreTokenizer { pre, supported } => {
                write!(f, "unsupported pre-tokenizer {pre:?} (tokenizer.ggml.pre); supported: {}", supported.join(", "))
            }
            Self::EmptyVocab => write!(f, "tokenizer.ggml.tokens is empty"),
            Self::TooManyTokens { n_tokens } => write!(f, "vocabulary has {n_tokens} tokens, more than u32 ids allow"),
            Self::ArrayTooShort { key, len, n_tokens } => {
                write!(f, "{key} has {len} entries but there are {n_tokens} tokens")
            }
            Self::DuplicateToken { text, first, second } => {
                write!(f, "token text {text:?} appears twice (ids {first} and {second})")
            }
            Self::MissingMerges => write!(f, "BPE vocabulary has no tokenizer.ggml.merges"),
            Self::TokenIdOutOfRange { key, id, n_tokens } => {
                write!(f, "{key} = {id} is out of range for a vocabulary of {n_tokens} tokens")
            }
            Self::MissingSpecialToken { key } => {
                write!(f, "{key} is required by the metadata but not defined")
            }
            Self::UnknownChatTemplate { reason } => write!(f, "unknown chat template: {reason}"),
            Self::UnsupportedChatTemplate { family } => {
                write!(f, "chat template family {family:?} is not supported (supported: gemma, chatml, llama3)")
            }
            Self::UnknownRole { role, template } => {
                write!(f, "role {role:?} cannot be rendered by the {template} chat template")
            }
            Self::MissingKey { key } => {
                write!(f, "GGUF metadata key `{key}` is required by the tokenizer but missing")
            }
            Self::InvalidMetadata { key, reason } => {
                write!(f, "GGUF metadata key `{key}` is unusable: {reason}")
            }
        }
    }
}

impl std::error::Error for TokenizerError {}

/// Token attribute bits (`llama_token_attr`).
mod attr {
    pub const UNKNOWN: u32 = 1 << 0;
    pub const UNUSED: u32 = 1 << 1;
    pub const NORMAL: u32 = 1 << 2;
    pub const CONTROL: u32 = 1 << 3;
    pub const USER_DEFINED: u32 = 1 << 4;
    pub const BYTE: u32 = 1 << 5;
}

/// Which algorithm the vocabulary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerKind {
    /// `llama`: SentencePiece with byte fallback.
    SentencePiece,
    /// `gpt2`: byte-level BPE.
    BytePairEncoding,
}

/// Token table shared by the algorithms (part of `llama_vocab::impl`).
pub(crate) struct Vocab {
    texts: Vec<String>,
    scores: Vec<f32>,
    attrs: Vec<u32>,
    token_to_id: HashMap<String, u32>,
    unk: Option<u32>,
}

impl Vocab {
    fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    fn score(&self, id: u32) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }

    fn attr(&self, id: u32) -> u32 {
        self.attrs.get(id as usize).copied().unwrap_or(0)
    }

    /// `llama_vocab::byte_to_token` for SPM: `<0xXX>`, else the raw byte.
    fn spm_byte_to_token(&self, b: u8) -> Option<u32> {
        self.token_id(&format!("<0x{b:02X}>"))
            .or_else(|| if b.is_ascii() { self.token_id(char::from(b).encode_utf8(&mut [0; 4])) } else { None })
    }
}

enum Algorithm {
    Spm,
    Bpe {
        ranks: bpe::MergeRanks,
        pre: Box<bpe::PreTokenizer>,
        byte_to_char: Box<[char; 256]>,
        char_to_byte: Vec<Option<u8>>,
    },
}

/// A tokenizer equivalent to llama.cpp's for the same GGUF metadata.
pub struct Tokenizer {
    vocab: Vocab,
    algorithm: Algorithm,
    pre_name: Option<String>,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    pad: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
    /// Tokens that end generation (`special_eog_ids`).
    eog: BTreeSet<u32>,
    /// Control / user-defined / unknown tokens, longest text first
    /// (`cache_special_tokens`).
    special_tokens: Vec<u32>,
    chat_template: Option<String>,
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind())
            .field("pre", &self.pre_name)
            .field("n_tokens", &self.n_tokens())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("eot", &self.eot)
            .field("add_bos", &self.add_bos)
            .field("add_eos", &self.add_eos)
            .finish_non_exhaustive()
    }
}

/// A piece of the input after special-token partitioning
/// (`fragment_buffer_variant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fragment {
    Text { start: usize, end: usize },
    Token(u32),
}

impl Tokenizer {
    /// Builds a tokenizer the way `llama_vocab::impl::load` does.
    pub fn from_spec(spec: VocabSpec) -> Result<Tokenizer, TokenizerError> {
        let VocabSpec {
            model,
            pre,
            tokens,
            scores,
            token_types,
            merges,
            bos,
            eos,
            eot,
            unk,
            pad,
            add_bos,
            add_eos,
            add_space_prefix,
            chat_template,
        } = spec;

        let n_tokens = tokens.len();
        if n_tokens == 0 {
            return Err(TokenizerError::EmptyVocab);
        }
        if u32::try_from(n_tokens).is_err() {
            return Err(TokenizerError::TooManyTokens { n_tokens });
        }

        // model type, default special tokens and per-type flags
        let (algorithm, defaults) = match model.as_str() {
            "llama" => (
                Algorithm::Spm,
                TypeDefaults {
                    bos: Some(1),
                    eos: Some(2),
                    unk: Some(0),
                    add_bos: true,
                    add_space_prefix: true,
                    clean_spaces: false,
                },
            ),
            "gpt2" => {
                let pre_tok = bpe::PreTokenizer::from_name(pre.as_deref()).ok_or_else(|| {
                    TokenizerError::UnsupportedPreTokenizer {
                        pre: pre.clone().unwrap_or_default(),
                        supported: bpe::supported_pre_tokenizers(),
                    }
                })?;
                let merges = merges.as_deref().ok_or(TokenizerError::MissingMerges)?;
                let defaults = TypeDefaults {
                    bos: Some(11),
                    eos: Some(11),
                    unk: None,
                    add_bos: pre_tok.add_bos,
                    add_space_prefix: false,
                    clean_spaces: pre_tok.clean_spaces,
                };
                let byte_to_char = Box::new(unicode::byte_to_char_table());
                (
                    Algorithm::Bpe {
                        ranks: bpe::MergeRanks::new(merges),
                        pre: Box::new(pre_tok),
                        byte_to_char,
                        char_to_byte: unicode::char_to_byte_table(),
                    },
                    defaults,
                )
            }
            _ => {
                return Err(TokenizerError::UnknownModel { model, supported: SUPPORTED_MODELS });
            }
        };

        if let Some(s) = &scores
            && s.len() < n_tokens
        {
            return Err(TokenizerError::ArrayTooShort { key: "tokenizer.ggml.scores", len: s.len(), n_tokens });
        }
        if let Some(t) = &token_types
            && t.len() < n_tokens
        {
            return Err(TokenizerError::ArrayTooShort { key: "tokenizer.ggml.token_type", len: t.len(), n_tokens });
        }

        let mut texts = Vec::with_capacity(n_tokens);
        let mut token_to_id = HashMap::with_capacity(n_tokens);
        for (i, mut text) in tokens.into_iter().enumerate() {
            let id = i as u32;
            if text.is_empty() {
                text = format!("[EMPTY_{i}]");
            }
            if let Some(first) = token_to_id.insert(text.clone(), id) {
                return Err(TokenizerError::DuplicateToken { text, first, second: id });
            }
            texts.push(text);
        }
        let scores = scores.map(|mut s| {
            s.truncate(n_tokens);
            s
        });
        let scores = scores.unwrap_or_else(|| vec![0.0; n_tokens]);
        let mut attrs: Vec<u32> = match &token_types {
            None => vec![attr::NORMAL; n_tokens],
            Some(types) => types[..n_tokens]
                .iter()
                .map(|t| match t {
                    1 => attr::NORMAL,
                    2 => attr::UNKNOWN,
                    3 => attr::CONTROL,
                    4 => attr::USER_DEFINED,
                    5 => attr::UNUSED,
                    6 => attr::BYTE,
                    _ => 0, // undefined
                })
                .collect(),
        };

        // Special token ids: type defaults that fall outside the vocabulary are
        // disabled (as llama.cpp does); explicit metadata out of range is an error.
        let in_range = |id: u32| (id as usize) < n_tokens;
        let pick = |key: &'static str, explicit: Option<u32>, default: Option<u32>| match explicit {
            Some(id) if in_range(id) => Ok(Some(id)),
            Some(id) => Err(TokenizerError::TokenIdOutOfRange { key, id, n_tokens }),
            None => Ok(default.filter(|&id| in_range(id))),
        };
        let bos = pick("tokenizer.ggml.bos_token_id", bos, defaults.bos)?;
        let eos = pick("tokenizer.ggml.eos_token_id", eos, defaults.eos)?;
        let unk = pick("tokenizer.ggml.unknown_token_id", unk, defaults.unk)?;
        let pad = pick("tokenizer.ggml.padding_token_id", pad, None)?;
        let mut eot = pick("tokenizer.ggml.eot_token_id", eot, None)?;

        let add_bos = add_bos.unwrap_or(defaults.add_bos);
        let add_eos = add_eos.unwrap_or(false);
        let add_space_prefix = add_space_prefix.unwrap_or(defaults.add_space_prefix);
        if add_bos && bos.is_none() {
            return Err(TokenizerError::MissingSpecialToken { key: "tokenizer.ggml.bos_token_id" });
        }
        if add_eos && eos.is_none() {
            return Err(TokenizerError::MissingSpecialToken { key: "tokenizer.ggml.eos_token_id" });
        }

        // Auto-detection by text, as llama.cpp does for files that lack the ids.
        // llama.cpp walks a hash map, so which of several candidates wins is
        // unspecified there; the lowest id wins here.
        let find = |names: &[&str]| -> Option<u32> { names.iter().filter_map(|n| token_to_id.get(*n).copied()).min() };
        let mut mark_control = |id: u32| {
            if let Some(a) = attrs.get_mut(id as usize) {
                *a |= attr::CONTROL;
            }
        };
        if eot.is_none() {
            eot = find(&[
                "<|eot_id|>",
                "<|im_end|>",
                "<|end|>",
                "<end_of_turn>",
                "<|endoftext|>",
                "<|end_of_text|>",
                "<EOT>",
                "_<EOT>",
                "[EOT]",
                "<｜end▁of▁sentence｜>",
                "<end_of_utterance>",
            ]);
            eot.into_iter().for_each(&mut mark_control);
        }
        let eom = find(&["<|eom_id|>"]);
        eom.into_iter().for_each(&mut mark_control);
        let fim_pad = find(&["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]);
        let fim_rep = find(&["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]);
        let fim_sep = find(&["<|file_sep|>"]);
        for id in [fim_pad, fim_rep, fim_sep].into_iter().flatten() {
            mark_control(id);
        }
        // FIM prefix/suffix/middle tokens are only detected to get the same
        // control attribute as in llama.cpp (it changes how they are parsed).
        for names in [
            &[
                "<|fim_prefix|>",
                "<fim-prefix>",
                "<fim_prefix>",
                "<｜fim▁begin｜>",
                "<PRE>",
                "▁<PRE>",
                "<|code_prefix|>",
                "<|prefix|>",
            ][..],
            &[
                "<|fim_suffix|>",
                "<fim-suffix>",
                "<fim_suffix>",
                "<｜fim▁hole｜>",
                "<SUF>",
                "▁<SUF>",
                "<|code_suffix|>",
                "<|suffix|>",
            ],
            &[
                "<|fim_middle|>",
                "<fim-middle>",
                "<fim_middle>",
                "<｜fim▁end｜>",
                "<MID>",
                "▁<MID>",
                "<|code_middle|>",
                "<|middle|>",
            ],
        ] {
            if let Some(id) = find(names) {
                mark_control(id);
            }
        }

        // end-of-generation set
        let mut eog: BTreeSet<u32> = [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
        for name in EOG_TEXTS {
            if let Some(&id) = token_to_id.get(*name) {
                eog.insert(id);
                mark_control(id);
            }
        }
        // gpt-oss: these are always rendered (llama.cpp's "quick hack")
        for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(&id) = token_to_id.get(name) {
                attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        eog.extend([eos, eot, eom].into_iter().flatten());
        let text_of = |id: u32| texts[id as usize].as_str();
        // o200k_harmony / solar-open: "<|end|>" is not an end of generation there
        let has = |eog: &BTreeSet<u32>, t: &str| eog.iter().any(|&id| text_of(id) == t);
        if let Some(end_id) = eog.iter().copied().find(|&id| text_of(id) == "<|end|>") {
            let (ret, call, flush) =
                (has(&eog, "<|return|>"), has(&eog, "<|call|>") || has(&eog, "<|calls|>"), has(&eog, "<|flush|>"));
            if call && (ret || flush) {
                eog.remove(&end_id);
                attrs[end_id as usize] = attr::USER_DEFINED;
            }
        }
        // gemma4 / plamo: "</s>" is a normal token there
        if (has(&eog, "<|tool_response>") || has(&eog, "<|plamo:eos|>"))
            && let Some(s_id) = eog.iter().copied().find(|&id| text_of(id) == "</s>")
        {
            eog.remove(&s_id);
            attrs[s_id as usize] = attr::NORMAL;
        }

        let mut special_tokens: Vec<u32> = (0..n_tokens as u32)
            .filter(|&id| attrs[id as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0)
            .collect();
        // stable: ties keep id order (llama.cpp's std::sort leaves them unspecified)
        special_tokens.sort_by_key(|&id| std::cmp::Reverse(texts[id as usize].len()));

        Ok(Tokenizer {
            vocab: Vocab { texts, scores, attrs, token_to_id, unk },
            algorithm,
            pre_name: pre,
            bos,
            eos,
            eot,
            pad,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces: defaults.clean_spaces,
            eog,
            special_tokens,
            chat_template,
        })
    }

    pub fn kind(&self) -> TokenizerKind {
        match self.algorithm {
            Algorithm::Spm => TokenizerKind::SentencePiece,
            Algorithm::Bpe { .. } => TokenizerKind::BytePairEncoding,
        }
    }

    pub fn n_tokens(&self) -> usize {
        self.vocab.texts.len()
    }
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }
    pub fn eot(&self) -> Option<u32> {
        self.eot
    }
    pub fn unk(&self) -> Option<u32> {
        self.vocab.unk
    }
    pub fn pad(&self) -> Option<u32> {
        self.pad
    }
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }
    /// `tokenizer.chat_template`, if the file has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }
    /// The raw vocabulary text of a token.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.texts.get(id as usize).map(String::as_str)
    }
    /// The id of a token by its exact vocabulary text.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.token_id(text)
    }
    /// Whether generation stops at this token (`llama_vocab_is_eog`).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }
    /// All end-of-generation tokens.
    pub fn eog_tokens(&self) -> impl Iterator<Item = u32> + '_ {
        self.eog.iter().copied()
    }
    /// Control tokens are not rendered by [`Tokenizer::decode`].
    pub fn is_control(&self, id: u32) -> bool {
        self.vocab.attr(id) & attr::CONTROL != 0
    }

    /// `llama_tokenize(vocab, text, add_special, parse_special)`: with
    /// `add_special` the BOS/EOS tokens are added as the metadata says; with
    /// `parse_special` control tokens written in the text are recognised
    /// (user-defined tokens always are).
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let fragments = if text.is_empty() { Vec::new() } else { self.partition(text, parse_special) };
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        match &self.algorithm {
            Algorithm::Spm => {
                // prefix with a space if the previous fragment is special (or at the start)
                let mut is_prev_special = true;
                let mut buf = String::new();
                for fragment in fragments {
                    match fragment {
                        Fragment::Text { start, end } => {
                            buf.clear();
                            if self.add_space_prefix && is_prev_special {
                                buf.push(' ');
                            }
                            buf.push_str(&text[start..end]);
                            // llama_escape_whitespace
                            let escaped = buf.replace(' ', "\u{2581}");
                            spm::tokenize(&self.vocab, &escaped, &mut out);
                            is_prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            is_prev_special = true;
                        }
                    }
                }
            }
            Algorithm::Bpe { ranks, pre, byte_to_char, .. } => {
                for fragment in fragments {
                    match fragment {
                        Fragment::Text { start, end } => {
                            bpe::tokenize(&self.vocab, ranks, pre, byte_to_char, &text[start..end], &mut out)
                        }
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// `tokenizer_st_partition`: splits the text around special tokens,
    /// longest token first.
    fn partition(&self, text: &str, parse_special: bool) -> Vec<Fragment> {
        let mut fragments = vec![Fragment::Text { start: 0, end: text.len() }];
        let mut next = Vec::new();
        for &id in &self.special_tokens {
            // control and unknown tokens only match with parse_special;
            // user-defined ones always do
            if !parse_special && self.vocab.attr(id) & (attr::CONTROL | attr::UNKNOWN) != 0 {
                continue;
            }
            let needle = self.vocab.texts[id as usize].as_str();
            if !fragments
                .iter()
                .any(|f| matches!(f, Fragment::Text { start, end } if text[*start..*end].contains(needle)))
            {
                continue;
            }
            next.clear();
            for &fragment in &fragments {
                let Fragment::Text { start, end } = fragment else {
                    next.push(fragment);
                    continue;
                };
                let mut pos = start;
                while let Some(found) = text[pos..end].find(needle) {
                    let m = pos + found;
                    if m > pos {
                        next.push(Fragment::Text { start: pos, end: m });
                    }
                    next.push(Fragment::Token(id));
                    pos = m + needle.len();
                }
                if pos < end {
                    next.push(Fragment::Text { start: pos, end });
                }
            }
            std::mem::swap(&mut fragments, &mut next);
        }
        fragments
    }

    /// The text of one token with special tokens rendered, like llama.cpp's
    /// cached piece (`token_to_piece(id, special = true)`): SentencePiece `▁`
    /// becomes a space, `<0x0A>` byte tokens become that byte, byte-level BPE
    /// text is mapped back to bytes. Unknown ids give an empty piece.
    pub fn token_to_piece(&self, id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        self.append_piece(id, true, 0, &mut out);
        out
    }

    /// Like [`Tokenizer::token_to_piece`]; with `special == false`, control
    /// and unknown tokens render as nothing.
    pub fn render_piece(&self, id: u32, special: bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.append_piece(id, special, 0, &mut out);
        out
    }

    /// `llama_vocab::impl::token_to_piece` appending to `out`; skips up to
    /// `lstrip` leading spaces.
    fn append_piece(&self, id: u32, special: bool, lstrip: usize, out: &mut Vec<u8>) {
        let Some(text) = self.vocab.texts.get(id as usize) else {
            return;
        };
        let a = self.vocab.attr(id);
        if !special && a & (attr::UNKNOWN | attr::CONTROL) != 0 {
            return;
        }
        let from = out.len();
        if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            out.extend_from_slice(text.as_bytes());
        } else if a & attr::NORMAL != 0 {
            match &self.algorithm {
                // llama_unescape_whitespace
                Algorithm::Spm => out.extend_from_slice(text.replace('\u{2581}', " ").as_bytes()),
                // llama_decode_text
                Algorithm::Bpe { char_to_byte, .. } => {
                    for c in text.chars() {
                        match char_to_byte.get(c as usize).copied().flatten() {
                            Some(b) => out.push(b),
                            None => {
                                out.extend_from_slice(b"[UNK_BYTE_0x");
                                let mut buf = [0u8; 4];
                                for b in c.encode_utf8(&mut buf).bytes() {
                                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                                }
                                out.extend_from_slice(text.as_bytes());
                                out.push(b']');
                            }
                        }
                    }
                }
            }
        } else if a & attr::BYTE != 0 {
            out.push(token_to_byte(text));
        } else {
            return; // unused / undefined tokens render as nothing
        }
        let mut stripped = 0;
        while stripped < lstrip && out.get(from + stripped) == Some(&b' ') {
            stripped += 1;
        }
        out.drain(from..from + stripped);
    }

    /// `common_detokenize(vocab, ids, special = false)`: the text of `ids`
    /// with control tokens omitted, invalid UTF-8 replaced by U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.detokenize(ids, false, false)).into_owned()
    }

    /// `llama_detokenize(vocab, ids, remove_special, unparse_special)` as raw
    /// bytes: `remove_special` drops a leading BOS / trailing EOS that the
    /// metadata would add, `unparse_special` renders control tokens.
    pub fn detokenize(&self, ids: &[u32], remove_special: bool, unparse_special: bool) -> Vec<u8> {
        let mut ids = ids;
        // remove the leading space SentencePiece's prefix added
        let mut remove_space = self.add_space_prefix;
        if remove_special && self.add_bos && ids.first().is_some_and(|&t| Some(t) == self.bos) {
            remove_space = false;
            ids = &ids[1..];
        }
        if remove_special && self.add_eos && ids.last().is_some_and(|&t| Some(t) == self.eos) {
            ids = &ids[..ids.len() - 1];
        }
        let mut text = Vec::new();
        for &id in ids {
            self.append_piece(id, unparse_special, usize::from(remove_space), &mut text);
            remove_space = false;
        }
        if self.clean_spaces {
            clean_up_spaces(&mut text);
        }
        text
    }
}

/// Per-type defaults applied before the metadata overrides them.
struct TypeDefaults {
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    add_bos: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
}

/// Token texts llama.cpp treats as end of generation.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// `token_to_byte`: the hex digits of `<0xXX>` (parsed like `strtol`, so
/// malformed text yields 0 rather than an error).
fn token_to_byte(text: &str) -> u8 {
    let digits = text.as_bytes().get(3..5).unwrap_or(&[]);
    let mut value: u32 = 0;
    for &d in digits {
        match (d as char).to_digit(16) {
            Some(v) => value = value * 16 + v,
            None => break,
        }
    }
    value as u8
}

/// The `clean_spaces` passes of `llama_vocab::impl::detokenize`, transcribed
/// on the byte buffer including their in-place quirks.
fn clean_up_spaces(text: &mut Vec<u8>) {
    // first pass: " ?", " !", " .", " ,"
    let total1 = text.len();
    let mut total = usize::from(total1 > 0);
    for i in 1..total1 {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);

    // second pass: strip a single apostrophe between spaces " ' "
    let total2 = text.len();
    let mut total = usize::from(total2 > 0);
    let mut i = 1;
    while i < total2 {
        let x = text[i];
        if x == b'\'' && i + 1 < total2 && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1; // remove prev space
            i += 1;
            text[i] = 0; // remove next space
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    text.truncate(total);

    // third pass: " 's", " 'm", " 're", " 've"
    let total3 = text.len();
    let mut total = usize::from(total3 > 0);
    for i in 1..total3 {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < total3 {
            let x1 = text[i + 1];
            if x1 == b's' || x1 == b'm' {
                total -= 1;
            } else if x1 != b't' && x1 != b'd' && i + 2 < total3 {
                let x2 = text[i + 2];
                if matches!(x1, b'r' | b'v') && x2 == b'e' {
                    total -= 1;
                }
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}

#[cfg(test)]
mod tests;
