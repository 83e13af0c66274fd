//! Hostile models: sound GGUF headers shaped like the three real models (SmolLM2 135M, Qwen2.5
//! 0.5B, Gemma 3 270M: the same keys, counts, tensor names, shapes and types), each with one
//! defect the header reader cannot see, and the [`crate::model::ModelError::kind`] it must be rejected with.
//!
//! Only headers are built: the tensor data is declared by the file length the case carries, so
//! every case is a few kilobytes (the tokenizer cases a few hundred) however large the model it
//! describes.

use super::{Builder, T_F32, T_I32, T_U32, T_U64};
use crate::gguf::{GgmlType, GgufHeader};
use crate::model::ModelConfig;

/// The hyperparameters of a real model, as its GGUF file has them.
struct Shape {
    arch: &'static str,
    n_embd: u64,
    n_layer: u64,
    n_head: u64,
    n_head_kv: u64,
    /// `{arch}.attention.key_length` (and `value_length`), when the file has it.
    key_length: Option<u64>,
    n_ff: u64,
    n_vocab: u64,
    context: u64,
    tied: bool,
}

const SMOLLM2: Shape = Shape {
    arch: "llama",
    n_embd: 576,
    n_layer: 30,
    n_head: 9,
    n_head_kv: 3,
    key_length: None,
    n_ff: 1536,
    n_vocab: 49152,
    context: 8192,
    tied: true,
};
const QWEN25: Shape = Shape {
    arch: "qwen2",
    n_embd: 896,
    n_layer: 24,
    n_head: 14,
    n_head_kv: 2,
    key_length: None,
    n_ff: 4864,
    n_vocab: 151936,
    context: 32768,
    tied: false,
};
const GEMMA3: Shape = Shape {
    arch: "gemma3",
    n_embd: 640,
    n_layer: 18,
    n_head: 4,
    n_head_kv: 1,
    key_length: Some(256),
    n_ff: 2048,
    n_vocab: 262144,
    context: 32768,
    tied: true,
};

#[derive(Clone)]
enum Value {
    U32(u32),
    U64(u64),
    I32(i32),
    F32(f32),
    Str(&'static str),
    /// A `tokenizer.ggml.tokens` list of this many distinct tokens.
    Tokens(usize),
}

/// A model header in the making: metadata and tensor infos, edited one defect at a time.
#[derive(Clone)]
struct Model {
    arch: &'static str,
    kv: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, GgmlType)>,
}

impl Model {
    fn of(s: &Shape) -> Model {
        let mut m = Model { arch: s.arch, kv: Vec::new(), tensors: Vec::new() };
        m = m.set("general.architecture", Value::Str(s.arch));
        for (k, v) in [
            ("context_length", s.context),
            ("embedding_length", s.n_embd),
            ("block_count", s.n_layer),
            ("feed_forward_length", s.n_ff),
            ("attention.head_count", s.n_head),
            ("attention.head_count_kv", s.n_head_kv),
        ] {
            m = m.arch_key(k, Value::U32(v as u32));
        }
        let eps = if s.arch == "llama" { 1e-5 } else { 1e-6 };
        m = m.arch_key("attention.layer_norm_rms_epsilon", Value::F32(eps));
        m = m.arch_key("rope.freq_base", Value::F32(if s.arch == "llama" { 100_000.0 } else { 1e6 }));
        if let Some(k) = s.key_length {
            m = m.arch_key("attention.key_length", Value::U32(k as u32));
            m = m.arch_key("attention.value_length", Value::U32(k as u32));
        }
        if s.arch == "gemma3" {
            m = m.arch_key("attention.sliding_window", Value::U32(512));
        }
        let head_dim = s.key_length.unwrap_or(s.n_embd / s.n_head);
        let (e, q, kv, ff) = (s.n_embd, s.n_head * head_dim, s.n_head_kv * head_dim, s.n_ff);
        let (f32, q8) = (GgmlType::F32, GgmlType::Q8_0);
        m = m.tensor("token_embd.weight", &[e, s.n_vocab], q8);
        for il in 0..s.n_layer {
            let p = |n: &str| format!("blk.{il}.{n}");
            m = m.tensor(&p("attn_norm.weight"), &[e], f32);
            m = m.tensor(&p("attn_q.weight"), &[e, q], q8);
            m = m.tensor(&p("attn_k.weight"), &[e, kv], q8);
            m = m.tensor(&p("attn_v.weight"), &[e, kv], q8);
            m = m.tensor(&p("attn_output.weight"), &[q, e], q8);
            if s.arch == "qwen2" {
                m = m.tensor(&p("attn_q.bias"), &[q], f32);
                m = m.tensor(&p("attn_k.bias"), &[kv], f32);
                m = m.tensor(&p("attn_v.bias"), &[kv], f32);
            }
            if s.arch == "gemma3" {
                m = m.tensor(&p("attn_q_norm.weight"), &[head_dim], f32);
                m = m.tensor(&p("attn_k_norm.weight"), &[head_dim], f32);
                m = m.tensor(&p("post_attention_norm.weight"), &[e], f32);
                m = m.tensor(&p("post_ffw_norm.weight"), &[e], f32);
            }
            m = m.tensor(&p("ffn_norm.weight"), &[e], f32);
            m = m.tensor(&p("ffn_gate.weight"), &[e, ff], q8);
            m = m.tensor(&p("ffn_up.weight"), &[e, ff], q8);
            m = m.tensor(&p("ffn_down.weight"), &[ff, e], q8);
        }
        m = m.tensor("output_norm.weight", &[e], f32);
        if !s.tied {
            m = m.tensor("output.weight", &[e, s.n_vocab], q8);
        }
        m
    }

    fn set(mut self, key: &str, v: Value) -> Self {
        match self.kv.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.kv.push((key.to_owned(), v)),
        }
        self
    }

    /// Sets `{arch}.{key}`.
    fn arch_key(self, key: &str, v: Value) -> Self {
        let key = format!("{}.{key}", self.arch);
        self.set(&key, v)
    }

    fn tensor(mut self, name: &str, dims: &[u64], ty: GgmlType) -> Self {
        match self.tensors.iter_mut().find(|(n, _, _)| n == name) {
            Some(slot) => (slot.1, slot.2) = (dims.to_vec(), ty),
            None => self.tensors.push((name.to_owned(), dims.to_vec(), ty)),
        }
        self
    }

    /// New dimensions for an existing tensor, its type kept.
    fn dims(self, name: &str, dims: &[u64]) -> Self {
        let ty = self.tensors.iter().find(|(n, _, _)| n == name).map_or(GgmlType::F32, |t| t.2);
        self.tensor(name, dims, ty)
    }

    /// A new type for an existing tensor, its dimensions kept.
    fn ty(self, name: &str, ty: GgmlType) -> Self {
        let dims = self.tensors.iter().find(|(n, _, _)| n == name).map(|t| t.1.clone()).unwrap_or_default();
        self.tensor(name, &dims, ty)
    }

    fn drop(mut self, name: &str) -> Self {
        self.tensors.retain(|(n, _, _)| n != name);
        self
    }

    /// The header bytes and the length of the file they describe (tensors packed in order).
    fn build(&self) -> (Vec<u8>, u64) {
        let mut b = Builder::new();
        for (k, v) in &self.kv {
            b = match v {
                Value::U32(x) => b.kv(k, T_U32, &x.to_le_bytes()),
                Value::U64(x) => b.kv(k, T_U64, &x.to_le_bytes()),
                Value::I32(x) => b.kv(k, T_I32, &x.to_le_bytes()),
                Value::F32(x) => b.kv(k, T_F32, &x.to_le_bytes()),
                Value::Str(s) => b.kv_str(k, s),
                Value::Tokens(n) => {
                    let tokens: Vec<String> = (0..*n).map(|i| format!("t{i}")).collect();
                    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
                    b.kv_str_array(k, &tokens)
                }
            };
        }
        let mut offset = 0u64;
        for (name, dims, ty) in &self.tensors {
            b = b.tensor(name, dims, *ty, offset);
            let n = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).unwrap_or(0);
            offset += ty.byte_size(n).unwrap_or(0).next_multiple_of(32);
        }
        let header = b.header();
        let file_len = (header.len() as u64).next_multiple_of(32) + offset;
        (header, file_len)
    }
}

/// One hostile model and the error it must be rejected with.
#[derive(Clone, Debug)]
pub struct HostileModel {
    /// Unique, stable name (`snake_case`), e.g. `"block_count_u32_max"`.
    pub name: &'static str,
    /// The header (no tensor data).
    pub bytes: Vec<u8>,
    /// The length of the file the header describes, passed to
    /// [`GgufHeader::parse_with_len`].
    pub file_len: u64,
    /// The [`crate::model::ModelError::kind`] expected.
    pub expected_kind: &'static str,
    /// Text the error message must contain: the key or tensor at fault.
    pub mentions: &'static str,
}

/// The three real-shaped models, intact (name, header, file length): each is accepted.
pub fn valid_models() -> Vec<(&'static str, Vec<u8>, u64)> {
    [("smollm2", &SMOLLM2), ("qwen25", &QWEN25), ("gemma3", &GEMMA3)]
        .into_iter()
        .map(|(name, s)| {
            let (bytes, len) = Model::of(s).build();
            (name, bytes, len)
        })
        .collect()
}

/// The hostile-model corpus: at least one file for every [`crate::model::ModelError`] variant a file can
/// cause, most of them several times.
pub fn hostile_models() -> Vec<HostileModel> {
    use GgmlType::*;
    let smol = || Model::of(&SMOLLM2);
    let qwen = || Model::of(&QWEN25);
    let gemma = || Model::of(&GEMMA3);
    let case = |name, m: Model, expected_kind, mentions| {
        let (bytes, file_len) = m.build();
        HostileModel { name, bytes, file_len, expected_kind, mentions }
    };
    let u32v = Value::U32;
    vec![
        // block_count: the 4-byte edit that used to size a list for billions of layers.
        case(
            "block_count_u32_max",
            smol().arch_key("block_count", u32v(u32::MAX)),
            "out_of_range",
            "llama.block_count",
        ),
        case(
            "block_count_2_40_as_u64",
            smol().arch_key("block_count", Value::U64(1 << 40)),
            "out_of_range",
            "block_count",
        ),
        case("block_count_zero", smol().arch_key("block_count", u32v(0)), "out_of_range", "llama.block_count"),
        case("block_count_one_more", smol().arch_key("block_count", u32v(31)), "count_mismatch", "llama.block_count"),
        case("block_count_one_fewer", smol().arch_key("block_count", u32v(29)), "count_mismatch", "blk.0 to blk.29"),
        case(
            "stray_layer_tensor",
            smol().tensor("blk.4000000000.attn_norm.weight", &[576], F32),
            "count_mismatch",
            "blk.4000000000",
        ),
        case(
            "block_count_as_string",
            smol().arch_key("block_count", Value::Str("30")),
            "metadata",
            "llama.block_count",
        ),
        // Heads.
        case("head_count_zero", smol().arch_key("attention.head_count", u32v(0)), "out_of_range", "head_count"),
        case("head_count_huge", smol().arch_key("attention.head_count", u32v(1 << 20)), "out_of_range", "head_count"),
        case("head_count_negative", smol().arch_key("attention.head_count", Value::I32(-9)), "metadata", "head_count"),
        case(
            "head_count_kv_zero",
            smol().arch_key("attention.head_count_kv", u32v(0)),
            "out_of_range",
            "head_count_kv",
        ),
        case(
            "heads_not_multiple_of_kv_heads",
            smol().arch_key("attention.head_count", u32v(10)),
            "not_divisible",
            "head_count_kv",
        ),
        case(
            "more_kv_heads_than_heads",
            smol().arch_key("attention.head_count_kv", u32v(18)),
            "not_divisible",
            "head_count",
        ),
        case(
            "embedding_not_multiple_of_heads",
            smol().arch_key("attention.head_count", u32v(15)),
            "not_divisible",
            "llama.embedding_length",
        ),
        case(
            "head_count_doubled",
            smol().arch_key("attention.head_count", u32v(18)),
            "count_mismatch",
            "blk.0.attn_k.weight",
        ),
        case(
            "kv_heads_disagree_with_attn_k",
            smol().arch_key("attention.head_count_kv", u32v(1)),
            "count_mismatch",
            "head_count_kv",
        ),
        case(
            "key_length_disagrees_with_attn_q",
            smol().arch_key("attention.key_length", u32v(128)),
            "count_mismatch",
            "blk.0.attn_q.weight",
        ),
        case("key_length_huge", smol().arch_key("attention.key_length", u32v(1 << 20)), "out_of_range", "key_length"),
        case(
            "value_length_differs",
            qwen().arch_key("attention.value_length", u32v(128)),
            "count_mismatch",
            "value_length",
        ),
        // Widths.
        case(
            "embedding_length_u32_max",
            smol().arch_key("embedding_length", u32v(u32::MAX)),
            "out_of_range",
            "embedding_length",
        ),
        case(
            "embedding_length_disagrees_with_token_embd",
            smol().arch_key("embedding_length", u32v(594)),
            "count_mismatch",
            "token_embd.weight",
        ),
        case("ffn_size_zero", smol().arch_key("feed_forward_length", u32v(0)), "out_of_range", "feed_forward_length"),
        case(
            "ffn_size_2_31",
            smol().arch_key("feed_forward_length", u32v(1 << 31)),
            "out_of_range",
            "feed_forward_length",
        ),
        case(
            "ffn_size_disagrees_with_ffn_up",
            smol().arch_key("feed_forward_length", u32v(1537)),
            "count_mismatch",
            "blk.0.ffn_up.weight",
        ),
        // Context.
        case(
            "context_length_2_40",
            smol().arch_key("context_length", Value::U64(1 << 40)),
            "out_of_range",
            "context_length",
        ),
        case("context_length_zero", smol().arch_key("context_length", u32v(0)), "out_of_range", "context_length"),
        case(
            "sliding_window_2_31",
            gemma().arch_key("attention.sliding_window", u32v(1 << 31)),
            "out_of_range",
            "sliding_window",
        ),
        // Vocabulary.
        case(
            "tokenizer_one_token_more",
            smol().set("tokenizer.ggml.tokens", Value::Tokens(49153)),
            "count_mismatch",
            "tokenizer.ggml.tokens",
        ),
        case(
            "vocab_size_key_disagrees",
            smol().arch_key("vocab_size", u32v(50000)),
            "count_mismatch",
            "llama.vocab_size",
        ),
        case(
            "vocabulary_over_cap",
            smol().dims("token_embd.weight", &[576, 1 << 22]),
            "out_of_range",
            "token_embd.weight",
        ),
        case("output_rows_disagree", qwen().dims("output.weight", &[896, 151935]), "tensor_shape", "output.weight"),
        // RoPE and the float parameters.
        case(
            "rope_dims_over_head_dim",
            smol().arch_key("rope.dimension_count", u32v(128)),
            "out_of_range",
            "rope.dimension_count",
        ),
        case(
            "rope_dims_odd",
            smol().arch_key("rope.dimension_count", u32v(63)),
            "not_divisible",
            "rope.dimension_count",
        ),
        case(
            "rope_dims_zero",
            smol().arch_key("rope.dimension_count", u32v(0)),
            "out_of_range",
            "rope.dimension_count",
        ),
        case(
            "rms_epsilon_nan",
            smol().arch_key("attention.layer_norm_rms_epsilon", Value::F32(f32::NAN)),
            "invalid_value",
            "layer_norm_rms_epsilon",
        ),
        case(
            "rms_epsilon_negative",
            qwen().arch_key("attention.layer_norm_rms_epsilon", Value::F32(-1e-6)),
            "invalid_value",
            "layer_norm_rms_epsilon",
        ),
        case(
            "rope_base_infinite",
            smol().arch_key("rope.freq_base", Value::F32(f32::INFINITY)),
            "invalid_value",
            "rope.freq_base",
        ),
        case(
            "rope_scaling_factor_zero",
            smol().arch_key("rope.scaling.type", Value::Str("linear")).arch_key("rope.scaling.factor", Value::F32(0.0)),
            "invalid_value",
            "rope.scaling.factor",
        ),
        case(
            "softcapping_nan",
            gemma().arch_key("final_logit_softcapping", Value::F32(f32::NAN)),
            "invalid_value",
            "final_logit_softcapping",
        ),
        case("rope_scaling_yarn", gemma().arch_key("rope.scaling.type", Value::Str("yarn")), "inconsistent", "yarn"),
        // Tensors missing, misshapen or of a type nothing computes with.
        case("missing_output_norm", smol().drop("output_norm.weight"), "missing_tensor", "output_norm.weight"),
        case("missing_token_embd", smol().drop("token_embd.weight"), "missing_tensor", "token_embd.weight"),
        case("missing_layer_tensor", smol().drop("blk.17.ffn_down.weight"), "missing_tensor", "blk.17.ffn_down.weight"),
        case("missing_qwen_bias", qwen().drop("blk.5.attn_v.bias"), "missing_tensor", "blk.5.attn_v.bias"),
        case(
            "missing_gemma_post_ffw_norm",
            gemma().drop("blk.9.post_ffw_norm.weight"),
            "missing_tensor",
            "post_ffw_norm",
        ),
        case(
            "ffn_down_transposed",
            smol().dims("blk.3.ffn_down.weight", &[576, 1536]),
            "tensor_shape",
            "blk.3.ffn_down.weight",
        ),
        case(
            "norm_of_rank_2",
            smol().dims("blk.0.attn_norm.weight", &[576, 2]),
            "tensor_shape",
            "blk.0.attn_norm.weight",
        ),
        case(
            "token_embd_of_rank_3",
            smol().dims("token_embd.weight", &[576, 49152, 2]),
            "tensor_shape",
            "token_embd.weight",
        ),
        case("qwen_bias_too_long", qwen().dims("blk.0.attn_k.bias", &[256]), "tensor_shape", "blk.0.attn_k.bias"),
        case("gemma_q_norm_too_short", gemma().dims("blk.0.attn_q_norm.weight", &[128]), "tensor_shape", "attn_q_norm"),
        case(
            "gemma_key_length_disagrees",
            gemma().arch_key("attention.key_length", u32v(128)).arch_key("attention.value_length", u32v(128)),
            "count_mismatch",
            "blk.0.attn_q.weight",
        ),
        case("norm_as_i32", smol().ty("output_norm.weight", I32), "unsupported_tensor_type", "output_norm.weight"),
        case("token_embd_as_f64", smol().ty("token_embd.weight", F64), "unsupported_tensor_type", "token_embd.weight"),
        case(
            "ffn_down_as_iq2_xxs",
            smol().ty("blk.2.ffn_down.weight", IQ2_XXS),
            "unsupported_tensor_type",
            "blk.2.ffn_down",
        ),
        case(
            "attn_q_as_mxfp4",
            gemma().ty("blk.0.attn_q.weight", MXFP4),
            "unsupported_tensor_type",
            "blk.0.attn_q.weight",
        ),
        // The architecture.
        case(
            "architecture_unknown",
            smol().set("general.architecture", Value::Str("mamba")),
            "unsupported_architecture",
            "mamba",
        ),
        case(
            "architecture_not_a_string",
            smol().set("general.architecture", u32v(1)),
            "metadata",
            "general.architecture",
        ),
    ]
}

/// Parses `case`'s header (which must be sound) and reads and validates its model, and
/// explains any way the result differs from the expected rejection.
pub fn check_model(case: &HostileModel) -> Result<(), String> {
    let (name, want) = (case.name, case.expected_kind);
    let header = GgufHeader::parse_with_len(&case.bytes, Some(case.file_len))
        .map_err(|e| format!("{name}: the header is rejected ({e}); a hostile model needs a sound header"))?;
    let result = ModelConfig::from_gguf(&header).and_then(|c| c.validate_tensors(&header));
    match result {
        Ok(()) => Err(format!("{name}: accepted, expected {want}")),
        Err(e) if e.kind() != want => Err(format!("{name}: got {} ({e}), expected {want}", e.kind())),
        Err(e) if !e.to_string().contains(case.mentions) => {
            Err(format!("{name}: the message does not name {:?}: {e}", case.mentions))
        }
        Err(_) => Ok(()),
    }
}
