//! Text to token ids: special-token partitioning, then the vocabulary's algorithm on
//! each text fragment (`llama_tokenize`).

use super::{Algorithm, Tokenizer, attr, bpe, spm};

/// A piece of the input after special-token partitioning
/// (`fragment_buffer_variant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fragment {
    Text { start: usize, end: usize },
    Token(u32),
}

/// A caller's `{ addSpecial, parseSpecial }`: BOS/EOS as the model asks unless `addSpecial` is
/// false; special-token text stays text unless `parseSpecial` is true.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncodeOptions {
    pub add_special: Option<bool>,
    pub parse_special: Option<bool>,
}

impl Tokenizer {
    /// [`Self::encode`] with a caller's options.
    pub fn encode_with(&self, text: &str, options: &EncodeOptions) -> Vec<u32> {
        self.encode(text, options.add_special.unwrap_or(true), options.parse_special.unwrap_or(false))
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
}
