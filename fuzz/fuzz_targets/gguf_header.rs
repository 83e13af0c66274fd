//! Arbitrary bytes into the GGUF reader: no input may panic, overflow, or allocate out of
//! proportion to its size, and whatever parses must keep the reader's promises.
//!
//! Per input: `GgufHeader::parse` (a prefix of unknown length) and `parse_with_len(data,
//! Some(len))` (a complete file); when the complete parse succeeds, every tensor is sliced with
//! `tensor_bytes` and, where the type decodes, `dequantize_tensor`d; a file with tokenizer
//! metadata also builds its tokenizer and encodes/decodes a short text.

#![no_main]

use hearth::gguf::{GgufError, GgufHeader};
use hearth::tokenizer::Tokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;

    let prefix = GgufHeader::parse(data);
    if let Err(e) = &prefix {
        assert!(!e.kind().is_empty() && !e.to_string().is_empty());
        if let GgufError::NeedMoreBytes { needed_at_least } = e {
            assert!(
                *needed_at_least > len,
                "asked for {needed_at_least} of {len} bytes"
            );
        }
    }

    let complete = match GgufHeader::parse_with_len(data, Some(len)) {
        Ok(h) => h,
        Err(e) => {
            // With the length known the reader can always decide.
            assert!(
                !e.is_need_more_bytes(),
                "NeedMoreBytes from a complete file: {e}"
            );
            return;
        }
    };
    // A complete file's header is also a valid prefix, and reads the same. (Field by field:
    // `GgufHeader: PartialEq` compares metadata floats, and a NaN is not equal to itself.)
    let prefix = prefix.expect("a complete file's header parses as a prefix");
    assert_eq!(prefix.tensors(), complete.tensors());
    assert_eq!(
        (
            prefix.version(),
            prefix.alignment(),
            prefix.header_len(),
            prefix.data_offset()
        ),
        (
            complete.version(),
            complete.alignment(),
            complete.header_len(),
            complete.data_offset()
        )
    );
    assert!(
        prefix
            .metadata()
            .iter()
            .map(|(k, _)| k)
            .eq(complete.metadata().iter().map(|(k, _)| k))
    );
    assert!(complete.total_file_bytes() <= len);

    for t in complete.tensors() {
        let range = complete
            .tensor_range(&t.name)
            .expect("listed tensor has a range");
        assert!(range.end <= len && range.end - range.start == t.size_bytes);
        let bytes = complete
            .tensor_bytes(data, &t.name)
            .expect("tensor inside the file");
        assert_eq!(bytes.len() as u64, t.size_bytes);
        match complete.dequantize_tensor(data, &t.name) {
            Ok(values) => assert_eq!(values.len() as u64, t.n_elements),
            Err(e) => assert!(
                !t.ggml_type.is_supported_for_decode(),
                "{} ({}) failed to decode: {e}",
                t.name,
                t.ggml_type
            ),
        }
    }

    if complete.metadata().get("tokenizer.ggml.model").is_some()
        && let Ok(tok) = Tokenizer::from_gguf(&complete)
    {
        let ids = tok.encode("Hello <s> wörld 🦙", true, true);
        let _ = tok.decode(&ids);
    }
});
