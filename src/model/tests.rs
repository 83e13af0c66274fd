//! Hand-made headers: a tiny but complete model per architecture, then one defect at a time.

use super::*;
use crate::gguf::corpus::{Builder, T_F32};
use crate::gguf::{GgmlType, GgufError, GgufHeader};

/// Tiny dimensions: n_embd 8, 2 query heads over 1 KV head of 4, n_ff 16, vocab 4, 2 layers.
struct Tiny {
    arch: &'static str,
    kv: Vec<(String, Kv)>,
    tensors: Vec<(String, Vec<u64>)>,
}

#[derive(Clone)]
enum Kv {
    U32(u32),
    F32(f32),
    Str(String),
    Strs(Vec<String>),
}

impl Tiny {
    fn new(arch: &'static str) -> Tiny {
        let mut t = Tiny { arch, kv: Vec::new(), tensors: Vec::new() };
        t.set("general.architecture", Kv::Str(arch.into()));
        for (k, v) in [
            ("context_length", 64),
            ("embedding_length", 8),
            ("block_count", 2),
            ("feed_forward_length", 16),
            ("attention.head_count", 2),
            ("attention.head_count_kv", 1),
        ] {
            t.set(&format!("{arch}.{k}"), Kv::U32(v));
        }
        t.set(&format!("{arch}.attention.layer_norm_rms_epsilon"), Kv::F32(1e-6));
        t.set(&format!("{arch}.rope.freq_base"), Kv::F32(1e6));
        t.set("tokenizer.ggml.tokens", Kv::Strs(["a", "b", "c", "d"].map(String::from).to_vec()));
        let (e, q, kv, ff, v) = (8, 8, 4, 16, 4);
        t.tensor("token_embd.weight", &[e, v]);
        for il in 0..2 {
            let p = |s: &str| format!("blk.{il}.{s}");
            t.tensor(&p("attn_norm.weight"), &[e]);
            t.tensor(&p("attn_q.weight"), &[e, q]);
            t.tensor(&p("attn_k.weight"), &[e, kv]);
            t.tensor(&p("attn_v.weight"), &[e, kv]);
            t.tensor(&p("attn_output.weight"), &[q, e]);
            t.tensor(&p("ffn_norm.weight"), &[e]);
            t.tensor(&p("ffn_gate.weight"), &[e, ff]);
            t.tensor(&p("ffn_up.weight"), &[e, ff]);
            t.tensor(&p("ffn_down.weight"), &[ff, e]);
            if arch == "qwen2" {
                t.tensor(&p("attn_q.bias"), &[q]);
                t.tensor(&p("attn_k.bias"), &[kv]);
                t.tensor(&p("attn_v.bias"), &[kv]);
            }
            if arch == "gemma3" {
                t.tensor(&p("attn_q_norm.weight"), &[4]);
                t.tensor(&p("attn_k_norm.weight"), &[4]);
                t.tensor(&p("post_attention_norm.weight"), &[e]);
                t.tensor(&p("post_ffw_norm.weight"), &[e]);
            }
        }
        t.tensor("output_norm.weight", &[e]);
        if arch == "llama" {
            t.tensor("output.weight", &[e, v]);
        }
        if arch == "gemma3" {
            t.set("gemma3.attention.sliding_window", Kv::U32(4));
        }
        t
    }

    /// `n` layers: `block_count` and the `blk.N` tensors, each layer a copy of layer 0.
    fn layers(&mut self, n: u32) -> &mut Self {
        self.set(&format!("{}.block_count", self.arch), Kv::U32(n));
        let layer0: Vec<(String, Vec<u64>)> =
            self.tensors.iter().filter(|(name, _)| name.starts_with("blk.0.")).cloned().collect();
        self.tensors.retain(|(name, _)| !name.starts_with("blk."));
        for il in 0..n {
            for (name, dims) in &layer0 {
                self.tensors.push((name.replacen("blk.0.", &format!("blk.{il}."), 1), dims.clone()));
            }
        }
        self
    }

    fn set(&mut self, key: &str, v: Kv) -> &mut Self {
        match self.kv.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.kv.push((key.to_owned(), v)),
        }
        self
    }

    fn unset(&mut self, key: &str) -> &mut Self {
        self.kv.retain(|(k, _)| k != key);
        self
    }

    fn tensor(&mut self, name: &str, dims: &[u64]) -> &mut Self {
        match self.tensors.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = dims.to_vec(),
            None => self.tensors.push((name.to_owned(), dims.to_vec())),
        }
        self
    }

    fn drop_tensor(&mut self, name: &str) -> &mut Self {
        self.tensors.retain(|(n, _)| n != name);
        self
    }

    fn header(&self) -> GgufHeader {
        let mut b = Builder::new();
        for (k, v) in &self.kv {
            b = match v {
                Kv::U32(x) => b.kv_u32(k, *x),
                Kv::F32(x) => b.kv(k, T_F32, &x.to_le_bytes()),
                Kv::Str(s) => b.kv_str(k, s),
                Kv::Strs(items) => {
                    let items: Vec<&str> = items.iter().map(String::as_str).collect();
                    b.kv_str_array(k, &items)
                }
            };
        }
        let mut offset = 0u64;
        for (name, dims) in &self.tensors {
            b = b.tensor(name, dims, GgmlType::F32, offset);
            offset += (dims.iter().product::<u64>() * 4).next_multiple_of(32);
        }
        GgufHeader::parse_complete(&b.data(offset.max(1)).build())
            .unwrap_or_else(|e| panic!("{}: hand-made header does not parse: {e}", self.arch))
    }

    fn config(&self) -> Result<ModelConfig, ModelError> {
        ModelConfig::from_gguf(&self.header())
    }
}

#[test]
fn tiny_models_of_every_architecture_load_and_validate() {
    for arch in Architecture::SUPPORTED {
        let t = Tiny::new(arch);
        let header = t.header();
        let c = ModelConfig::from_gguf(&header).unwrap_or_else(|e| panic!("{arch}: {e}"));
        c.validate_tensors(&header).unwrap_or_else(|e| panic!("{arch}: {e}"));
        assert_eq!(c.arch.name(), *arch);
        assert_eq!((c.n_vocab, c.n_embd, c.n_layer, c.n_ff), (4, 8, 2, 16));
        assert_eq!((c.n_head, c.n_head_kv, c.head_dim, c.n_rot), (2, 1, 4, 4));
        assert_eq!(c.context_length, 64);
        assert_eq!(c.attention_scale, 0.5);
        assert_eq!(c.kv_cache_bytes(10, 2), 2 * 2 * 10 * 4 * 2);
    }
    let llama = Tiny::new("llama").config().unwrap();
    assert_eq!(llama.rope, RopeStyle::Normal);
    assert!(!llama.tied_output && !llama.qkv_bias && !llama.qk_norm && !llama.post_norms);
    assert_eq!((llama.sliding_window, llama.embedding_scale), (None, None));

    let qwen = Tiny::new("qwen2").config().unwrap();
    assert_eq!(qwen.rope, RopeStyle::Neox);
    assert!(qwen.tied_output && qwen.qkv_bias && !qwen.qk_norm);

    let gemma = Tiny::new("gemma3").config().unwrap();
    assert_eq!(gemma.rope, RopeStyle::Neox);
    assert!(gemma.tied_output && gemma.qk_norm && gemma.post_norms && !gemma.qkv_bias);
    assert_eq!(gemma.sliding_window, Some(4));
    assert_eq!(gemma.swa_pattern, Some(6));
    assert_eq!(gemma.rope_base_local, Some(10_000.0));
    assert_eq!(gemma.embedding_scale, Some(8f32.sqrt()));
    let local: Vec<bool> = (0..12).map(|il| gemma.is_local_layer(il)).collect();
    assert_eq!(local, [true, true, true, true, true, false].repeat(2));
    assert_eq!(gemma.rope_for_layer(0), (10_000.0, 1.0));
    assert_eq!(gemma.rope_for_layer(5), (1e6, 1.0));
}

#[test]
fn unknown_architecture_is_rejected_with_the_supported_list() {
    let mut t = Tiny::new("llama");
    t.set("general.architecture", Kv::Str("mamba".into()));
    let err = t.config().unwrap_err();
    assert_eq!(
        err,
        ModelError::UnsupportedArchitecture { arch: "mamba".into(), supported: &["llama", "qwen2", "gemma3"] }
    );
    let msg = err.to_string();
    for name in ["mamba", "llama", "qwen2", "gemma3"] {
        assert!(msg.contains(name), "{msg}");
    }
    assert_eq!(err.kind(), "unsupported_architecture");
}

#[test]
fn a_missing_key_is_named() {
    for key in [
        "general.architecture",
        "llama.embedding_length",
        "llama.block_count",
        "llama.feed_forward_length",
        "llama.context_length",
        "llama.attention.head_count",
        "llama.attention.layer_norm_rms_epsilon",
    ] {
        let mut t = Tiny::new("llama");
        t.unset(key);
        let err = t.config().unwrap_err();
        assert_eq!(err, ModelError::Metadata(GgufError::MissingKey(key.into())), "{key}");
        assert!(err.to_string().contains(key), "{err}");
    }
    // Optional keys take llama.cpp's defaults (here as many KV heads as query heads).
    let mut t = Tiny::new("llama");
    t.unset("llama.attention.head_count_kv").unset("llama.rope.freq_base");
    for il in 0..2 {
        t.tensor(&format!("blk.{il}.attn_k.weight"), &[8, 8]).tensor(&format!("blk.{il}.attn_v.weight"), &[8, 8]);
    }
    let c = t.config().unwrap();
    assert_eq!((c.n_head_kv, c.rope_base), (2, 10_000.0));
}

#[test]
fn a_mistyped_key_is_named() {
    let mut t = Tiny::new("qwen2");
    t.set("qwen2.attention.layer_norm_rms_epsilon", Kv::U32(1));
    let err = t.config().unwrap_err();
    assert!(
        matches!(&err, ModelError::Metadata(GgufError::WrongType { key, .. })
            if key == "qwen2.attention.layer_norm_rms_epsilon"),
        "{err:?}"
    );
}

#[test]
fn inconsistent_heads_are_rejected() {
    let mut t = Tiny::new("llama");
    t.set("llama.attention.head_count_kv", Kv::U32(3));
    let err = t.config().unwrap_err();
    assert_eq!(
        err,
        ModelError::NotDivisible {
            key: "llama.attention.head_count".into(),
            value: 2,
            divisor: 3,
            divisor_from: "llama.attention.head_count_kv".into()
        }
    );
    assert_eq!(err.kind(), "not_divisible");

    let mut t = Tiny::new("llama");
    t.set("llama.attention.head_count", Kv::U32(3)).set("llama.attention.head_count_kv", Kv::U32(3));
    let err = t.config().unwrap_err();
    assert!(
        matches!(&err, ModelError::NotDivisible { key, value: 8, divisor: 3, .. } if key == "llama.embedding_length"),
        "8 / 3 without key_length: {err}"
    );
    // With key_length, n_embd need not be n_head * head_dim (Gemma 3 270M: 640 vs 4 * 256), but
    // the projections must have n_head * head_dim rows.
    t.set("llama.attention.key_length", Kv::U32(4));
    let err = t.config().unwrap_err();
    assert_eq!(
        err,
        ModelError::CountMismatch {
            key: "llama.attention.head_count".into(),
            value: 3,
            with: "the rows of blk.0.attn_q.weight (3 heads × 4 dimensions would be 12)".into(),
            found: 8
        }
    );
    for il in 0..2 {
        let p = |s: &str| format!("blk.{il}.{s}");
        t.tensor(&p("attn_q.weight"), &[8, 12]).tensor(&p("attn_output.weight"), &[12, 8]);
        t.tensor(&p("attn_k.weight"), &[8, 12]).tensor(&p("attn_v.weight"), &[8, 12]);
    }
    let h = t.header();
    let c = ModelConfig::from_gguf(&h).unwrap();
    assert_eq!((c.n_head, c.head_dim, c.q_dim()), (3, 4, 12));
    c.validate_tensors(&h).unwrap();

    let mut t = Tiny::new("llama");
    t.set("llama.attention.head_count_kv", Kv::U32(0));
    assert_eq!(
        t.config().unwrap_err(),
        ModelError::OutOfRange { key: "llama.attention.head_count_kv".into(), value: 0, min: 1, max: 1024 }
    );

    let mut t = Tiny::new("gemma3");
    t.set("gemma3.attention.value_length", Kv::U32(8));
    assert_eq!(t.config().unwrap_err().kind(), "count_mismatch");
}

#[test]
fn vocabulary_sizes_must_agree() {
    let mut t = Tiny::new("llama");
    t.set("tokenizer.ggml.tokens", Kv::Strs(vec!["a".into(); 5]));
    let err = t.config().unwrap_err();
    assert!(
        matches!(&err, ModelError::CountMismatch { key, value: 5, found: 4, .. } if key.contains("tokenizer")),
        "{err}"
    );

    let mut t = Tiny::new("llama");
    t.set("llama.vocab_size", Kv::U32(5));
    assert_eq!(t.config().unwrap_err().kind(), "count_mismatch");

    let mut t = Tiny::new("llama");
    t.drop_tensor("token_embd.weight");
    assert_eq!(t.config().unwrap_err(), ModelError::MissingTensor { name: "token_embd.weight".into() });
}

#[test]
fn unsupported_rope_scaling_is_refused_and_linear_is_read() {
    let mut t = Tiny::new("llama");
    t.set("llama.rope.scaling.type", Kv::Str("yarn".into()));
    assert_eq!(t.config().unwrap_err().kind(), "inconsistent");
    t.set("llama.rope.scaling.type", Kv::Str("linear".into()));
    assert!(
        matches!(t.config().unwrap_err(), ModelError::Metadata(GgufError::MissingKey(k)) if k == "llama.rope.scaling.factor")
    );
    t.set("llama.rope.scaling.factor", Kv::F32(4.0));
    assert_eq!(t.config().unwrap().rope_freq_scale, 0.25);
}

#[test]
fn validate_tensors_names_the_missing_or_misshapen_tensor() {
    let mut t = Tiny::new("qwen2");
    t.drop_tensor("blk.1.attn_k.bias");
    let h = t.header();
    let c = ModelConfig::from_gguf(&h).unwrap();
    assert_eq!(c.validate_tensors(&h).unwrap_err(), ModelError::MissingTensor { name: "blk.1.attn_k.bias".into() });

    let mut t = Tiny::new("gemma3");
    t.tensor("blk.0.attn_q_norm.weight", &[8]);
    let h = t.header();
    let err = ModelConfig::from_gguf(&h).unwrap().validate_tensors(&h).unwrap_err();
    assert_eq!(
        err,
        ModelError::TensorShape { name: "blk.0.attn_q_norm.weight".into(), expected: vec![4], found: vec![8] }
    );
    assert!(err.to_string().contains("blk.0.attn_q_norm.weight"), "{err}");

    // Transposed: GGUF order puts the input features first.
    let mut t = Tiny::new("llama");
    t.tensor("blk.0.ffn_down.weight", &[8, 16]);
    let h = t.header();
    let err = ModelConfig::from_gguf(&h).unwrap().validate_tensors(&h).unwrap_err();
    assert!(matches!(&err, ModelError::TensorShape { name, .. } if name == "blk.0.ffn_down.weight"), "{err}");

    // An optional bias that is present must have the right shape; trailing 1s are ignored.
    let mut t = Tiny::new("llama");
    t.tensor("blk.0.attn_q.bias", &[8, 1]);
    let h = t.header();
    ModelConfig::from_gguf(&h).unwrap().validate_tensors(&h).unwrap();
    t.tensor("blk.0.attn_q.bias", &[4]);
    let h = t.header();
    let err = ModelConfig::from_gguf(&h).unwrap().validate_tensors(&h).unwrap_err();
    assert!(matches!(&err, ModelError::TensorShape { name, .. } if name == "blk.0.attn_q.bias"), "{err}");

    // Llama without output.weight is tied, and then validates.
    let mut t = Tiny::new("llama");
    t.drop_tensor("output.weight");
    let h = t.header();
    let c = ModelConfig::from_gguf(&h).unwrap();
    assert!(c.tied_output);
    c.validate_tensors(&h).unwrap();
}

#[test]
fn gemma3_without_a_sliding_window_has_no_local_layers() {
    let mut t = Tiny::new("gemma3");
    t.unset("gemma3.attention.sliding_window");
    let c = t.config().unwrap();
    assert_eq!((c.sliding_window, c.swa_pattern, c.rope_base_local), (None, None, None));
    assert!(!(0..6).any(|il| c.is_local_layer(il)));
}

#[test]
fn gemma3_27b_scales_queries_by_the_model_width() {
    // 62 layers of 2 heads of 2 over a width of 8: the scale is 1/sqrt(8 / 2), not 1/sqrt(2).
    let mut t = Tiny::new("gemma3");
    t.set("gemma3.attention.key_length", Kv::U32(2));
    t.tensor("blk.0.attn_q.weight", &[8, 4]).tensor("blk.0.attn_output.weight", &[4, 8]);
    t.tensor("blk.0.attn_k.weight", &[8, 2]).tensor("blk.0.attn_v.weight", &[8, 2]);
    t.tensor("blk.0.attn_q_norm.weight", &[2]).tensor("blk.0.attn_k_norm.weight", &[2]);
    t.layers(62);
    let h = t.header();
    let c = ModelConfig::from_gguf(&h).unwrap();
    c.validate_tensors(&h).unwrap();
    assert_eq!(c.attention_scale, 0.5);
}

/// The shared hostile-model corpus: real-shaped headers, one defect each, every one rejected
/// with its variant and a message naming the key or tensor; the intact shapes are accepted.
#[test]
fn hostile_models_are_rejected_with_typed_errors() {
    use crate::gguf::corpus::{check_model, hostile_models, valid_models};
    for (name, bytes, len) in valid_models() {
        let h = GgufHeader::parse_with_len(&bytes, Some(len)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = ModelConfig::from_gguf(&h).unwrap_or_else(|e| panic!("{name}: {e}"));
        c.validate_tensors(&h).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let cases = hostile_models();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(|c| check_model(c).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "duplicate case names");
    let covered: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.expected_kind).collect();
    for kind in [
        "unsupported_architecture",
        "metadata",
        "missing_tensor",
        "tensor_shape",
        "unsupported_tensor_type",
        "out_of_range",
        "count_mismatch",
        "not_divisible",
        "invalid_value",
        "inconsistent",
    ] {
        assert!(covered.contains(kind), "no hostile model for {kind}");
    }
    // Headers only: a real-shaped model is a few KB (the tokenizer cases a few hundred).
    for c in &cases {
        assert!(c.bytes.len() < 1 << 20, "{}: {} bytes", c.name, c.bytes.len());
    }
}

/// Every variant is a `ModelFormatError` to JS, with its own code.
#[test]
fn every_model_error_has_a_model_format_code() {
    use crate::error::ErrorClass;
    use crate::gguf::corpus::{check_model, hostile_models};
    let mut codes = std::collections::BTreeMap::new();
    for case in hostile_models() {
        assert_eq!(check_model(&case), Ok(()));
        let h = GgufHeader::parse_with_len(&case.bytes, Some(case.file_len)).unwrap();
        let err = ModelConfig::from_gguf(&h).and_then(|c| c.validate_tensors(&h)).unwrap_err();
        assert_eq!(err.code().class(), ErrorClass::ModelFormat, "{}", case.name);
        let code = err.code().as_str();
        assert!(codes.insert(err.kind(), code).is_none_or(|c| c == code), "{}", case.name);
    }
    let distinct: std::collections::BTreeSet<&str> = codes.values().copied().collect();
    assert_eq!(distinct.len(), codes.len(), "two variants share a code: {codes:?}");
    assert_eq!(codes["out_of_range"], "METADATA_OUT_OF_RANGE");
    assert_eq!(codes["unsupported_tensor_type"], "UNSUPPORTED_TENSOR_TYPE");
}

/// A configuration built by hand gets the caps too: no list of billions of layers.
#[test]
fn validate_tensors_caps_a_hand_made_configuration() {
    let t = Tiny::new("llama");
    let h = t.header();
    let c = ModelConfig { n_layer: u32::MAX, ..t.config().unwrap() };
    assert_eq!(
        c.validate_tensors(&h).unwrap_err(),
        ModelError::OutOfRange { key: "llama.block_count".into(), value: u32::MAX.into(), min: 1, max: 1024 }
    );
    let c = ModelConfig { n_rot: 6, ..t.config().unwrap() };
    assert_eq!(c.validate_tensors(&h).unwrap_err().kind(), "out_of_range");
}
