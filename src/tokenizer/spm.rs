//! SentencePiece (`tokenizer.ggml.model = "llama"`) tokenization: a port of
//! llama.cpp's `llm_tokenizer_spm_session` (src/llama-vocab.cpp).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::Vocab;

/// A symbol of the linked list the merges operate on (`llm_symbol`): a byte
/// range `[start, start + len)` of the text; `len == 0` once merged away.
#[derive(Clone, Copy)]
struct Symbol {
    prev: Option<usize>,
    next: Option<usize>,
    start: usize,
    len: usize,
}

/// `llm_bigram_spm`; the heap pops the highest score, then the leftmost pair.
struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    size: usize,
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        // `total_cmp` keeps the heap well-formed even for NaN scores from
        // untrusted metadata.
        self.score.total_cmp(&other.score).then_with(|| other.left.cmp(&self.left))
    }
}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}

/// Tokenizes `text` (already `▁`-escaped by the caller, like llama.cpp's
/// `llama_escape_whitespace`) and appends the ids to `out`.
pub(crate) fn tokenize(vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
    // split into UTF-8 characters
    let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
    let mut indices = text.char_indices().peekable();
    while let Some((start, c)) = indices.next() {
        let idx = symbols.len();
        symbols.push(Symbol {
            prev: idx.checked_sub(1),
            next: indices.peek().map(|_| idx + 1),
            start,
            len: c.len_utf8(),
        });
    }
    if symbols.is_empty() {
        return;
    }

    let mut queue = BinaryHeap::new();
    let try_add_bigram =
        |symbols: &[Symbol], queue: &mut BinaryHeap<Bigram>, left: Option<usize>, right: Option<usize>| {
            let (Some(left), Some(right)) = (left, right) else {
                return;
            };
            let (l, r) = (symbols[left], symbols[right]);
            let piece = &text[l.start..r.start + r.len];
            if let Some(id) = vocab.token_id(piece) {
                queue.push(Bigram { left, right, score: vocab.score(id), size: piece.len() });
            }
        };

    // seed the work queue with all possible 2-character tokens
    for i in 1..symbols.len() {
        try_add_bigram(&symbols, &mut queue, Some(i - 1), Some(i));
    }

    // keep substituting the highest-scoring pairs for as long as we can
    while let Some(bigram) = queue.pop() {
        let (l, r) = (symbols[bigram.left], symbols[bigram.right]);
        // one of the symbols already got merged: stale entry
        if l.len == 0 || r.len == 0 || l.len + r.len != bigram.size {
            continue;
        }
        // merge the right symbol into the left one and unlink it
        symbols[bigram.left].len += r.len;
        symbols[bigram.left].next = r.next;
        symbols[bigram.right].len = 0;
        if let Some(n) = r.next {
            symbols[n].prev = Some(bigram.left);
        }
        try_add_bigram(&symbols, &mut queue, symbols[bigram.left].prev, Some(bigram.left));
        try_add_bigram(&symbols, &mut queue, Some(bigram.left), symbols[bigram.left].next);
    }

    let mut i = Some(0);
    while let Some(idx) = i {
        let sym = symbols[idx];
        resegment(vocab, &text[sym.start..sym.start + sym.len], out);
        i = sym.next;
    }
}

/// `llm_tokenizer_spm_session::resegment`. Merged symbols are always vocab
/// tokens (a pair is only queued when its text is one), so the `rev_merge`
/// recursion of llama.cpp can only be reached by single characters, which are
/// never a merge's text; what is left is "token, or its bytes".
fn resegment(vocab: &Vocab, piece: &str, out: &mut Vec<u32>) {
    if let Some(id) = vocab.token_id(piece) {
        out.push(id);
        return;
    }
    // output any symbols that did not form tokens as bytes
    for &b in piece.as_bytes() {
        match vocab.spm_byte_to_token(b) {
            Some(id) => out.push(id),
            // llama.cpp throws here (`token_to_id.at`); a vocabulary without
            // byte tokens gets the unknown token instead, or nothing.
            None => out.extend(vocab.unk),
        }
    }
}
