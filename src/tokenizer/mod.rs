//! Tokenizers built from GGUF metadata alone, behaving like llama.cpp's
//! `llama_vocab` (src/llama-vocab.cpp): SentencePiece (`llama`) and byte-level
//! BPE (`gpt2`) vocabularies, special-token parsing, detokenization,
//! streaming UTF-8 decoding and the chat templates of the supported families.
//!
//! Everything here is driven by untrusted metadata, so construction validates
//! it ([`TokenizerError`]) and nothing afterwards panics on any input.

//!
//! Layout: this file holds the [`Tokenizer`] facade (its state and accessors);
//! `vocab` builds it from the metadata, `encode` and `decode` are the two
//! directions, `spm` / `bpe` / `pretokenize` the algorithms, `gguf` reads the
//! metadata, `stream` and `chat` serve generation.

mod bpe;
pub mod chat;
mod decode;
mod encode;
mod error;
mod gguf;
mod pretokenize;
mod spm;
mod stream;
mod unicode;
mod unicode_tables;
mod vocab;

use std::collections::BTreeSet;
use std::fmt;

pub use chat::{ChatMessage, ChatTemplate};
pub use encode::EncodeOptions;
pub use error::TokenizerError;
pub use stream::StreamDecoder;
pub(crate) use vocab::Vocab;
use vocab::attr;

#[cfg(test)]
use decode::clean_up_spaces;

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

/// Which algorithm the vocabulary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerKind {
    /// `llama`: SentencePiece with byte fallback.
    SentencePiece,
    /// `gpt2`: byte-level BPE.
    BytePairEncoding,
}

/// The vocabulary's algorithm and its tables.
enum Algorithm {
    Spm,
    Bpe {
        ranks: bpe::MergeRanks,
        pre: Box<bpe::PreTokenizer>,
        byte_to_char: Box<[char; 256]>,
        char_to_byte: Vec<Option<u8>>,
    },
}

/// A tokenizer equivalent to llama.cpp's for the same GGUF metadata, built by
/// [`Tokenizer::from_spec`] (module `vocab`).
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

impl Tokenizer {
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
}

#[cfg(test)]
mod tests;
