//! The token table and how a [`Tokenizer`] is built from GGUF metadata, the way
//! `llama_vocab::impl::load` does it: per-type defaults, special-token ids, the
//! control-token and end-of-generation detection by token text.

use std::collections::{BTreeSet, HashMap};

use super::{Algorithm, Tokenizer, TokenizerError, VocabSpec, bpe, error::SUPPORTED_MODELS, unicode};

/// Token attribute bits (`llama_token_attr`).
pub(super) mod attr {
    pub const UNKNOWN: u32 = 1 << 0;
    pub const UNUSED: u32 = 1 << 1;
    pub const NORMAL: u32 = 1 << 2;
    pub const CONTROL: u32 = 1 << 3;
    pub const USER_DEFINED: u32 = 1 << 4;
    pub const BYTE: u32 = 1 << 5;
}

/// Token table shared by the algorithms (part of `llama_vocab::impl`).
pub(crate) struct Vocab {
    pub(super) texts: Vec<String>,
    pub(super) scores: Vec<f32>,
    pub(super) attrs: Vec<u32>,
    pub(super) token_to_id: HashMap<String, u32>,
    pub(super) unk: Option<u32>,
}

impl Vocab {
    pub(super) fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    pub(super) fn score(&self, id: u32) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }

    pub(super) fn attr(&self, id: u32) -> u32 {
        self.attrs.get(id as usize).copied().unwrap_or(0)
    }

    /// `llama_vocab::byte_to_token` for SPM: `<0xXX>`, else the raw byte.
    pub(super) fn spm_byte_to_token(&self, b: u8) -> Option<u32> {
        self.token_id(&format!("<0x{b:02X}>"))
            .or_else(|| if b.is_ascii() { self.token_id(char::from(b).encode_utf8(&mut [0; 4])) } else { None })
    }
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
