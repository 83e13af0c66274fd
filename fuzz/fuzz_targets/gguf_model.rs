//! Arbitrary header bytes into everything Hearth derives from a header before downloading a
//! weight: the configuration (`ModelConfig::from_gguf`), the tensor check
//! (`validate_tensors`) and the tokenizer (`Tokenizer::from_gguf`, then encode, decode and the
//! chat template). No input may panic, overflow or allocate out of proportion to its size, and
//! what is accepted must keep the caps the loader sizes buffers from.
//!
//! Seeds: the real-shaped valid and hostile models of `hearth::gguf::corpus` and the headers of
//! the real models, trimmed (`fuzz/src/bin/seed_corpus.rs`, run by `tools/fuzz.sh`).

#![no_main]

use hearth::error::ErrorClass;
use hearth::gguf::GgufHeader;
use hearth::model::{MAX_CONTEXT, MAX_EMBD, MAX_FF, MAX_HEAD_DIM, MAX_HEADS, MAX_LAYERS, MAX_VOCAB, ModelConfig};
use hearth::tokenizer::{ChatMessage, ChatTemplate, Tokenizer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The header as the browser parses its first Range request: tensor data need not follow.
    let Ok(header) = GgufHeader::parse(data) else {
        return;
    };

    match ModelConfig::from_gguf(&header) {
        Ok(cfg) => {
            assert!((1..=MAX_LAYERS).contains(&cfg.n_layer), "{cfg:?}");
            assert!((1..=MAX_EMBD).contains(&cfg.n_embd) && (1..=MAX_FF).contains(&cfg.n_ff));
            assert!((1..=MAX_HEADS).contains(&cfg.n_head) && cfg.n_head % cfg.n_head_kv == 0);
            assert!((1..=MAX_HEAD_DIM).contains(&cfg.head_dim));
            assert!(cfg.n_rot >= 2 && cfg.n_rot <= cfg.head_dim && cfg.n_rot % 2 == 0);
            assert!((1..=MAX_CONTEXT).contains(&cfg.context_length));
            assert!((1..=MAX_VOCAB).contains(&cfg.n_vocab));
            assert!(cfg.rms_eps > 0.0 && cfg.rope_base.is_finite() && cfg.rope_freq_scale.is_finite());
            // Sizes the loader computes from the configuration, with overflow checks on.
            let _ = cfg.kv_cache_bytes(cfg.context_length, 4);
            let _ = (cfg.q_dim(), cfg.kv_dim());
            for il in 0..cfg.n_layer.min(64) {
                let (base, scale) = cfg.rope_for_layer(il);
                assert!(base > 0.0 && scale.is_finite());
            }
            match cfg.validate_tensors(&header) {
                Ok(()) => {
                    for (name, dims, required) in cfg.expected_tensors() {
                        let info = header.tensor(&name);
                        assert!(info.is_some() || !required, "{name} missing yet validated");
                        if let Some(info) = info {
                            assert!(info.ggml_type.is_supported_for_decode(), "{name}");
                            let n: u64 = dims.iter().product();
                            assert_eq!(info.n_elements, n, "{name}");
                        }
                    }
                }
                Err(e) => check_error(&e),
            }
        }
        Err(e) => check_error(&e),
    }

    if header.metadata().get("tokenizer.ggml.model").is_some()
        && let Ok(tok) = Tokenizer::from_gguf(&header)
    {
        let ids = tok.encode("Hello <s> wörld 🦙 <|im_start|>\n\t  x", true, true);
        let _ = tok.decode(&ids);
        let template = header.metadata().get_str("tokenizer.chat_template").ok();
        if let Ok(t) = ChatTemplate::detect(template, header.metadata().get_str("general.architecture").ok()) {
            let messages = [ChatMessage::new("system", "be brief"), ChatMessage::new("user", "hi")];
            let _ = t.render(&messages, true);
        }
    }
});

fn check_error(e: &hearth::model::ModelError) {
    assert!(!e.to_string().is_empty() && !e.kind().is_empty());
    assert_eq!(e.code().class(), ErrorClass::ModelFormat);
}
