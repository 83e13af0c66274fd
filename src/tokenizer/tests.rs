//! Unit tests on tiny hand-made vocabularies; parity with llama.cpp on real
//! vocabularies is checked by `tests/tokenizer_vectors.rs`.

use super::*;

fn spm_spec() -> VocabSpec {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let normal = ["▁", "h", "i", "▁h", "▁hi", "e", "l", "o", "▁hello", "ll", "he", "hell", "▁he", "▁hell"];
    for t in normal {
        tokens.push(t.into());
        types.push(1);
    }
    let n = tokens.len();
    // later tokens score higher so "▁hello" wins
    let scores = (0..n).map(|i| i as f32).collect();
    VocabSpec { model: "llama".into(), tokens, scores: Some(scores), token_types: Some(types), ..Default::default() }
}

#[test]
fn spm_encode_decode() {
    let tok = Tokenizer::from_spec(spm_spec()).unwrap();
    let id = |t: &str| tok.token_id(t).unwrap();
    assert_eq!(tok.encode("hello", false, false), vec![id("▁hello")]);
    assert_eq!(tok.encode("hello", true, false), vec![1, id("▁hello")]);
    // unknown characters fall back to bytes
    let ids = tok.encode("hi\n", false, false);
    assert_eq!(ids, vec![id("▁hi"), id("<0x0A>")]);
    assert_eq!(tok.decode(&ids), "hi\n");
    assert_eq!(tok.token_to_piece(id("<0x0A>")), b"\n");
    assert_eq!(tok.token_to_piece(id("▁hello")), b" hello");
    // control tokens are parsed only with parse_special and rendered only with special
    let ids = tok.encode("hi</s>", false, true);
    assert_eq!(ids, vec![id("▁hi"), 2]);
    assert_eq!(tok.decode(&ids), "hi");
    assert_eq!(tok.detokenize(&ids, false, true), b"hi</s>");
    assert!(tok.is_eog(2));
    assert_eq!(tok.encode("", true, false), vec![1]);
}

fn bpe_spec(pre: &str) -> VocabSpec {
    let table = unicode::byte_to_char_table();
    let mut tokens: Vec<String> = (0..=255u8).map(|b| table[b as usize].to_string()).collect();
    for t in ["Ġh", "Ġhe", "Ġhel", "Ġhell", "Ġhello", "he", "hel", "hell", "hello", "<|im_end|>"] {
        tokens.push(t.into());
    }
    let mut types = vec![1; tokens.len()];
    *types.last_mut().unwrap() = 3;
    let merges = ["Ġ h", "Ġh e", "Ġhe l", "Ġhel l", "Ġhell o", "h e", "he l", "hel l", "hell o"];
    VocabSpec {
        model: "gpt2".into(),
        pre: Some(pre.into()),
        tokens,
        token_types: Some(types),
        merges: Some(merges.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

#[test]
fn bpe_encode_decode() {
    let tok = Tokenizer::from_spec(bpe_spec("qwen2")).unwrap();
    let id = |t: &str| tok.token_id(t).unwrap();
    assert_eq!(tok.encode("hello hello", false, false), vec![id("hello"), id("Ġhello")]);
    let text = "hello, wörld 🦙\n";
    let ids = tok.encode(text, false, false);
    assert_eq!(tok.decode(&ids), text);
    let ids = tok.encode("hello<|im_end|>", false, true);
    assert_eq!(ids, vec![id("hello"), id("<|im_end|>")]);
    assert_eq!(tok.encode("<|im_end|>", false, false).len(), "<|im_end|>".len());
    assert!(tok.is_eog(id("<|im_end|>")));
    assert_eq!(tok.eot(), Some(id("<|im_end|>")));
}

#[test]
fn stream_decoder_over_byte_tokens() {
    let tok = Tokenizer::from_spec(bpe_spec("gpt-2")).unwrap();
    let ids = tok.encode("a🦙", false, false);
    assert_eq!(ids.len(), 5);
    let mut d = StreamDecoder::new();
    let mut text = String::new();
    for (i, &id) in ids.iter().enumerate() {
        let out = d.push(&tok, id);
        if (1..4).contains(&i) {
            assert_eq!(out, "");
        }
        text.push_str(&out);
    }
    text.push_str(&d.finish());
    assert_eq!(text, "a🦙");
}

#[test]
fn clean_spaces_matches_llama_cpp() {
    let mut t = b"Hello , world ! it 's a ' b ' c 're".to_vec();
    clean_up_spaces(&mut t);
    assert_eq!(String::from_utf8(t).unwrap(), "Hello, world! it's a'b'c're");
}

#[test]
fn rejects_bad_metadata() {
    let err = |spec: VocabSpec| Tokenizer::from_spec(spec).unwrap_err();
    assert!(matches!(err(VocabSpec { model: "t5".into(), ..spm_spec() }), TokenizerError::UnknownModel { .. }));
    let e = err(bpe_spec("no-such-pre"));
    assert!(matches!(e, TokenizerError::UnsupportedPreTokenizer { .. }));
    assert!(e.to_string().contains("smollm"));
    assert!(matches!(err(VocabSpec { merges: None, ..bpe_spec("gpt-2") }), TokenizerError::MissingMerges));
    assert!(matches!(err(VocabSpec { bos: Some(100_000), ..spm_spec() }), TokenizerError::TokenIdOutOfRange { .. }));
    assert!(matches!(err(VocabSpec { scores: Some(vec![0.0]), ..spm_spec() }), TokenizerError::ArrayTooShort { .. }));
    assert!(matches!(err(VocabSpec { tokens: vec![], ..spm_spec() }), TokenizerError::EmptyVocab));
    let mut dup = spm_spec();
    dup.tokens[5] = "h".into();
    assert!(matches!(err(dup), TokenizerError::DuplicateToken { .. }));
    let no_bos = VocabSpec { tokens: vec!["a".into()], scores: None, token_types: None, ..spm_spec() };
    assert!(matches!(err(no_bos), TokenizerError::MissingSpecialToken { .. }));
}

#[test]
fn never_panics_on_odd_input() {
    let tok = Tokenizer::from_spec(spm_spec()).unwrap();
    assert_eq!(tok.decode(&[u32::MAX, 100_000]), "");
    assert!(tok.token_to_piece(u32::MAX).is_empty());
    let bpe = Tokenizer::from_spec(bpe_spec("default")).unwrap();
    for text in ["", " ", "\u{0}", "''", "' ", "\r\n\r\n", "１２３４", "a\u{301}"] {
        let ids = bpe.encode(text, true, true);
        let _ = bpe.decode(&ids);
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the spec from GGUF metadata (src/tokenizer/gguf.rs).

mod from_gguf {
    use super::*;
    use crate::gguf::GgufHeader;
    use crate::gguf::corpus::{Builder, T_ARRAY, T_BOOL, T_F32, T_I32, T_U8, array_header};

    fn f32s(v: &[f32]) -> Vec<u8> {
        let mut out = array_header(T_F32, v.len() as u64);
        v.iter().for_each(|x| out.extend(x.to_le_bytes()));
        out
    }

    fn i32s(v: &[i32]) -> Vec<u8> {
        let mut out = array_header(T_I32, v.len() as u64);
        v.iter().for_each(|x| out.extend(x.to_le_bytes()));
        out
    }

    fn minimal() -> Builder {
        Builder::new()
            .kv_str("tokenizer.ggml.model", "llama")
            .kv_str_array("tokenizer.ggml.tokens", &["<unk>", "<s>", "</s>", "▁hi"])
    }

    fn spec(b: Builder) -> Result<VocabSpec, TokenizerError> {
        let bytes = b.build();
        VocabSpec::from_metadata(GgufHeader::parse_complete(&bytes).unwrap().metadata())
    }

    #[test]
    fn reads_every_key() {
        let s = spec(
            minimal()
                .kv_str("tokenizer.ggml.pre", "default")
                .kv("tokenizer.ggml.scores", T_ARRAY, &f32s(&[0.0, 0.0, 0.0, -1.5]))
                .kv("tokenizer.ggml.token_type", T_ARRAY, &i32s(&[2, 3, 3, 1]))
                .kv_str_array("tokenizer.ggml.merges", &["▁ h"])
                .kv_u32("tokenizer.ggml.bos_token_id", 1)
                .kv_u32("tokenizer.ggml.eos_token_id", 2)
                .kv_u32("tokenizer.ggml.eot_token_id", 2)
                .kv_u32("tokenizer.ggml.unknown_token_id", 0)
                // any integer type that fits (some converters write i32 or u8)
                .kv("tokenizer.ggml.padding_token_id", T_U8, &[3])
                .kv("tokenizer.ggml.add_bos_token", T_BOOL, &[1])
                .kv("tokenizer.ggml.add_eos_token", T_BOOL, &[0])
                .kv("tokenizer.ggml.add_space_prefix", T_BOOL, &[1])
                .kv_str("tokenizer.chat_template", "{{ x }}"),
        )
        .unwrap();
        assert_eq!(
            s,
            VocabSpec {
                model: "llama".into(),
                pre: Some("default".into()),
                tokens: ["<unk>", "<s>", "</s>", "▁hi"].map(String::from).to_vec(),
                scores: Some(vec![0.0, 0.0, 0.0, -1.5]),
                token_types: Some(vec![2, 3, 3, 1]),
                merges: Some(vec!["▁ h".into()]),
                bos: Some(1),
                eos: Some(2),
                eot: Some(2),
                unk: Some(0),
                pad: Some(3),
                add_bos: Some(true),
                add_eos: Some(false),
                add_space_prefix: Some(true),
                chat_template: Some("{{ x }}".into()),
            }
        );
        let bytes = minimal().build();
        let tok = Tokenizer::from_gguf(&GgufHeader::parse_complete(&bytes).unwrap()).unwrap();
        assert_eq!(tok.n_tokens(), 4);
        assert_eq!(tok.token_id("▁hi"), Some(3));
        // SentencePiece defaults apply when the keys are absent
        assert_eq!((tok.bos(), tok.add_bos()), (Some(1), true));
    }

    #[test]
    fn optional_keys_may_be_absent() {
        let s = spec(minimal()).unwrap();
        assert_eq!((s.pre, s.scores, s.bos, s.add_bos), (None, None, None, None));
    }

    #[test]
    fn missing_required_keys_are_named() {
        let only_tokens = Builder::new().kv_str_array("tokenizer.ggml.tokens", &["a"]);
        assert_eq!(spec(only_tokens), Err(TokenizerError::MissingKey { key: "tokenizer.ggml.model" }));
        let err = spec(Builder::new().kv_str("tokenizer.ggml.model", "gpt2")).unwrap_err();
        assert_eq!(err, TokenizerError::MissingKey { key: "tokenizer.ggml.tokens" });
        assert!(err.to_string().contains("`tokenizer.ggml.tokens`"));
    }

    #[test]
    fn wrong_types_are_errors_naming_the_key() {
        let cases: [(Builder, &str); 6] = [
            (minimal().kv_u32("tokenizer.ggml.pre", 1), "tokenizer.ggml.pre"),
            (minimal().kv("tokenizer.ggml.scores", T_ARRAY, &i32s(&[0; 4])), "tokenizer.ggml.scores"),
            (minimal().kv("tokenizer.ggml.token_type", T_ARRAY, &f32s(&[0.0; 4])), "tokenizer.ggml.token_type"),
            (minimal().kv_str("tokenizer.ggml.bos_token_id", "1"), "tokenizer.ggml.bos_token_id"),
            (minimal().kv_u32("tokenizer.ggml.add_bos_token", 1), "tokenizer.ggml.add_bos_token"),
            (minimal().kv("tokenizer.ggml.eos_token_id", T_I32, &(-1i32).to_le_bytes()), "tokenizer.ggml.eos_token_id"),
        ];
        for (b, key) in cases {
            match spec(b) {
                Err(e @ TokenizerError::InvalidMetadata { key: k, .. }) if k == key => {
                    assert!(e.to_string().contains(key), "{e}");
                }
                other => panic!("{key}: {other:?}"),
            }
        }
        let tokens_as_string =
            Builder::new().kv_str("tokenizer.ggml.model", "llama").kv_str("tokenizer.ggml.tokens", "abc");
        assert!(matches!(
            spec(tokens_as_string),
            Err(TokenizerError::InvalidMetadata { key: "tokenizer.ggml.tokens", .. })
        ));
    }
}

/// What the JS `Tokenizer` forwards: a caller's encode options with their defaults, checked
/// decoding, and chat messages read from `{ role, content }`.
#[test]
fn caller_options_checked_ids_and_messages() {
    use crate::error::{Coded, ErrorCode};
    let tok = Tokenizer::from_spec(spm_spec()).unwrap();
    let id = |t: &str| tok.token_id(t).unwrap();
    let defaults = EncodeOptions::default();
    assert_eq!(tok.encode_with("hi</s>", &defaults), tok.encode("hi</s>", true, false));
    let raw: EncodeOptions = serde_json::from_str(r#"{ "addSpecial": false, "parseSpecial": true }"#).unwrap();
    assert_eq!(tok.encode_with("hi</s>", &raw), vec![id("▁hi"), 2]);

    let n = tok.n_tokens() as u32;
    assert_eq!(tok.decode_checked(&[id("▁hi")]).unwrap(), "hi");
    let err = tok.decode_checked(&[id("▁hi"), n]).unwrap_err();
    assert_eq!(err, TokenizerError::UnknownTokenId { id: n, n_tokens: n as usize });
    assert_eq!(err.code(), ErrorCode::InvalidTokenId);
    assert_eq!(err.to_string(), format!("Token id {n} is outside the vocabulary of {n} tokens."));

    let messages: Vec<ChatMessage> = serde_json::from_str(r#"[{ "role": "user", "content": "hi" }]"#).unwrap();
    assert_eq!(messages, [ChatMessage::new("user", "hi")]);
    assert!(serde_json::from_str::<Vec<ChatMessage>>(r#"[{ "role": "user" }]"#).is_err());
}
