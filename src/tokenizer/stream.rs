//! Incremental detokenization for streaming generation.

use super::Tokenizer;

/// Turns generated token ids into text as they arrive, emitting only complete
/// UTF-8: a character split over several byte tokens is held back until its
/// last byte arrives. Invalid sequences become U+FFFD as soon as they are
/// known to be invalid; [`StreamDecoder::finish`] flushes an incomplete tail
/// as U+FFFD.
///
/// The decoder holds no reference to the tokenizer, so it can live next to it
/// in the same struct (e.g. in the web layer's generation state).
///
/// Pieces are concatenated exactly as `token_to_piece` renders them (no
/// leading-space stripping or space clean-up, as for llama.cpp's streamed
/// output).
#[derive(Clone, Debug, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
    render_special: bool,
}

impl StreamDecoder {
    /// A decoder that omits control tokens (`<|im_end|>`, `<end_of_turn>`...).
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// A decoder that renders control tokens as their text.
    pub fn with_special_tokens() -> StreamDecoder {
        StreamDecoder { pending: Vec::new(), render_special: true }
    }

    /// Adds one token; returns the text that is now complete (maybe empty).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> String {
        let piece = tokenizer.render_piece(id, self.render_special);
        self.push_bytes(&piece)
    }

    /// Adds raw bytes; returns the text that is now complete (maybe empty).
    pub fn push_bytes(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        let mut consumed = 0;
        loop {
            match std::str::from_utf8(&self.pending[consumed..]) {
                Ok(s) => {
                    out.push_str(s);
                    consumed = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // `valid` bytes were just checked to be UTF-8
                    out.push_str(&String::from_utf8_lossy(&self.pending[consumed..consumed + valid]));
                    consumed += valid;
                    match e.error_len() {
                        // definitely invalid: replace and continue after it
                        Some(n) => {
                            out.push('\u{FFFD}');
                            consumed += n;
                        }
                        // an incomplete character at the end: wait for more
                        None => break,
                    }
                }
            }
        }
        self.pending.drain(..consumed);
        out
    }

    /// Whether bytes of an incomplete character are being held.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Flushes what is held: an incomplete character becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_split_characters() {
        let mut d = StreamDecoder::new();
        let bytes = "a🦙b".as_bytes();
        assert_eq!(d.push_bytes(&bytes[..2]), "a");
        assert!(d.has_pending());
        assert_eq!(d.push_bytes(&bytes[2..4]), "");
        assert_eq!(d.push_bytes(&bytes[4..]), "🦙b");
        assert_eq!(d.finish(), "");
    }

    #[test]
    fn invalid_bytes_become_replacement() {
        let mut d = StreamDecoder::new();
        assert_eq!(d.push_bytes(b"x\xFFy"), "x\u{FFFD}y");
        assert_eq!(d.push_bytes(&[0xE6, 0x88]), "");
        assert_eq!(d.finish(), "\u{FFFD}");
        assert_eq!(d.push_bytes(&[0xE6, b'z']), "\u{FFFD}z");
    }
}
