//! What can go wrong building a tokenizer or rendering a chat.

use std::fmt;

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
    /// A caller's token id outside the vocabulary.
    UnknownTokenId { id: u32, n_tokens: usize },
}

pub(super) const SUPPORTED_MODELS: &[&str] = &["llama", "gpt2"];

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
            Self::UnknownTokenId { id, n_tokens } => {
                write!(f, "Token id {id} is outside the vocabulary of {n_tokens} tokens.")
            }
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

/// An unknown chat role or token id is the caller's (`INVALID_MESSAGES`, `INVALID_TOKEN_ID`); a
/// template Hearth cannot render and every vocabulary problem are the model file's.
impl crate::error::Coded for TokenizerError {
    fn code(&self) -> crate::error::ErrorCode {
        use crate::error::ErrorCode;
        match self {
            TokenizerError::UnknownRole { .. } => ErrorCode::InvalidMessages,
            TokenizerError::UnknownTokenId { .. } => ErrorCode::InvalidTokenId,
            TokenizerError::UnknownChatTemplate { .. } | TokenizerError::UnsupportedChatTemplate { .. } => {
                ErrorCode::UnsupportedChatTemplate
            }
            _ => ErrorCode::Tokenizer,
        }
    }
}
