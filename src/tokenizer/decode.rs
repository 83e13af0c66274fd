//! Token ids to text: pieces, detokenization and llama.cpp's space clean-up.

use super::TokenizerError;
use super::{Algorithm, Tokenizer, attr};

impl Tokenizer {
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

    /// [`Self::decode`] for a caller's ids, each of which must be in the vocabulary.
    pub fn decode_checked(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let n_tokens = self.n_tokens();
        match ids.iter().find(|&&id| id as usize >= n_tokens) {
            Some(&id) => Err(TokenizerError::UnknownTokenId { id, n_tokens }),
            None => Ok(self.decode(ids)),
        }
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
pub(super) fn clean_up_spaces(text: &mut Vec<u8>) {
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
