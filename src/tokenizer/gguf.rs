//! Reading a [`VocabSpec`] from GGUF metadata, the way `llama_vocab::impl::load` reads the
//! `tokenizer.*` keys (llama.cpp `src/llama-vocab.cpp`).
//!
//! Only `tokenizer.ggml.model` and `tokenizer.ggml.tokens` are required; every other key is
//! optional, but a key that is present with the wrong type (or an id that does not fit a `u32`)
//! is an error naming the key rather than being silently ignored: a vocabulary read wrongly
//! produces plausible but wrong token ids, which is far harder to diagnose than a load error.

use crate::gguf::{GgufError, GgufHeader, Metadata};

use super::{Tokenizer, TokenizerError, VocabSpec};

/// The GGUF keys read here (llama.cpp's `LLM_KV_TOKENIZER_*`).
mod key {
    pub const MODEL: &str = "tokenizer.ggml.model";
    pub const PRE: &str = "tokenizer.ggml.pre";
    pub const TOKENS: &str = "tokenizer.ggml.tokens";
    pub const SCORES: &str = "tokenizer.ggml.scores";
    pub const TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
    pub const MERGES: &str = "tokenizer.ggml.merges";
    pub const BOS: &str = "tokenizer.ggml.bos_token_id";
    pub const EOS: &str = "tokenizer.ggml.eos_token_id";
    pub const EOT: &str = "tokenizer.ggml.eot_token_id";
    pub const UNK: &str = "tokenizer.ggml.unknown_token_id";
    pub const PAD: &str = "tokenizer.ggml.padding_token_id";
    pub const ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
    pub const ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
    pub const ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
    pub const CHAT_TEMPLATE: &str = "tokenizer.chat_template";
}

/// Maps a metadata getter's error onto the tokenizer's, keeping the key.
fn metadata_error(key: &'static str, err: GgufError) -> TokenizerError {
    match err {
        GgufError::MissingKey(_) => TokenizerError::MissingKey { key },
        other => TokenizerError::InvalidMetadata { key, reason: other.to_string() },
    }
}

/// A required key.
fn required<T>(key: &'static str, get: impl FnOnce(&'static str) -> Result<T, GgufError>) -> Result<T, TokenizerError> {
    get(key).map_err(|e| metadata_error(key, e))
}

/// An optional key: absent is `None`, present with the wrong type is an error.
fn optional<T>(
    metadata: &Metadata,
    key: &'static str,
    get: impl FnOnce(&'static str) -> Result<T, GgufError>,
) -> Result<Option<T>, TokenizerError> {
    if metadata.get(key).is_none() {
        return Ok(None);
    }
    required(key, get).map(Some)
}

impl VocabSpec {
    /// Reads the `tokenizer.*` keys of a GGUF file's metadata.
    ///
    /// Errors: [`TokenizerError::MissingKey`] when `tokenizer.ggml.model` or
    /// `tokenizer.ggml.tokens` is absent, [`TokenizerError::InvalidMetadata`] when any key
    /// holds the wrong type (token ids may be any integer type that fits a `u32`, as llama.cpp
    /// accepts). The values themselves (ids in range, arrays as long as the vocabulary) are
    /// checked by [`Tokenizer::from_spec`].
    pub fn from_metadata(metadata: &Metadata) -> Result<VocabSpec, TokenizerError> {
        let m = metadata;
        let string = |k| m.get_str(k).map(str::to_owned);
        let strings = |k| m.get_str_array(k).map(<[String]>::to_vec);
        Ok(VocabSpec {
            model: required(key::MODEL, string)?,
            pre: optional(m, key::PRE, string)?,
            tokens: required(key::TOKENS, strings)?,
            scores: optional(m, key::SCORES, |k| m.get_f32_array(k).map(<[f32]>::to_vec))?,
            token_types: optional(m, key::TOKEN_TYPE, |k| m.get_i32_array(k).map(<[i32]>::to_vec))?,
            merges: optional(m, key::MERGES, strings)?,
            bos: optional(m, key::BOS, |k| m.get_u32(k))?,
            eos: optional(m, key::EOS, |k| m.get_u32(k))?,
            eot: optional(m, key::EOT, |k| m.get_u32(k))?,
            unk: optional(m, key::UNK, |k| m.get_u32(k))?,
            pad: optional(m, key::PAD, |k| m.get_u32(k))?,
            add_bos: optional(m, key::ADD_BOS, |k| m.get_bool(k))?,
            add_eos: optional(m, key::ADD_EOS, |k| m.get_bool(k))?,
            add_space_prefix: optional(m, key::ADD_SPACE_PREFIX, |k| m.get_bool(k))?,
            chat_template: optional(m, key::CHAT_TEMPLATE, string)?,
        })
    }
}

impl Tokenizer {
    /// Builds the tokenizer of a parsed GGUF file: [`VocabSpec::from_metadata`] then
    /// [`Tokenizer::from_spec`]. Only the header is needed, not the tensor data.
    pub fn from_gguf(header: &GgufHeader) -> Result<Tokenizer, TokenizerError> {
        Tokenizer::from_spec(VocabSpec::from_metadata(header.metadata())?)
    }
}
