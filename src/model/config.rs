//! [`ModelConfig`]: the hyperparameters of one GGUF model, and the checks that the file's
//! tensors agree with them.
//!
//! Metadata keys are `{arch}.…` as written by llama.cpp's `convert_hf_to_gguf.py`; every getter
//! goes through [`crate::gguf::Metadata`], whose errors name the missing or mistyped key. Tensor
//! shapes are given in GGUF/ggml order, `ne[0]` (the contiguous, input-feature axis) first: a
//! projection from `n_embd` to `n_ff` is `[n_embd, n_ff]`, as llama.cpp's `create_tensor` writes
//! it.

use std::fmt;

use crate::gguf::{GgufError, GgufHeader};

use super::error::*;

/// The model families Hearth can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// `llama`: Llama 2/3, SmolLM2, TinyLlama… Pre-norm blocks, SiLU-gated FFN, NORM RoPE.
    Llama,
    /// `qwen2`: Qwen2 / Qwen2.5. As llama plus `attn_{q,k,v}.bias`, NEOX RoPE.
    Qwen2,
    /// `gemma3`: Gemma 3 (text). Per-head Q/K norms, post-attention and post-FFN norms, scaled
    /// embeddings, sliding-window attention on five layers out of six.
    Gemma3,
}

impl Architecture {
    /// The `general.architecture` values Hearth accepts, in [`Architecture`] order.
    pub const SUPPORTED: &'static [&'static str] = &["llama", "qwen2", "gemma3"];

    /// The architecture for a `general.architecture` value, if supported.
    pub fn from_name(name: &str) -> Option<Architecture> {
        match name {
            "llama" => Some(Architecture::Llama),
            "qwen2" => Some(Architecture::Qwen2),
            "gemma3" => Some(Architecture::Gemma3),
            _ => None,
        }
    }

    /// The `general.architecture` value, which is also the metadata key prefix.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Gemma3 => "gemma3",
        }
    }

    /// The RoPE layout llama.cpp uses for this architecture (`llama_model_rope_type`).
    pub fn rope_style(self) -> RopeStyle {
        match self {
            Architecture::Llama => RopeStyle::Normal,
            Architecture::Qwen2 | Architecture::Gemma3 => RopeStyle::Neox,
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How RoPE pairs the dimensions of a head (llama.cpp `LLAMA_ROPE_TYPE_NORM` / `_NEOX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RopeStyle {
    /// Rotates adjacent pairs `(x[2i], x[2i+1])` (the original Llama/Meta layout).
    Normal,
    /// Rotates `(x[i], x[i + n_rot/2])` (GPT-NeoX / Hugging Face layout).
    Neox,
}

/// Every 6th layer of Gemma 3 is global, the others local (`set_swa_pattern(6)` in
/// `src/llama-hparams.cpp`).
pub const GEMMA3_SWA_PATTERN: u32 = 6;
/// RoPE base of Gemma 3's local (sliding-window) layers (`rope_freq_base_train_swa`).
pub const GEMMA3_ROPE_BASE_LOCAL: f32 = 10_000.0;

/// The hyperparameters of one model, as llama.cpp reads them from GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub arch: Architecture,
    /// Rows of `token_embd.weight` (checked against the tokenizer's token count).
    pub n_vocab: u32,
    /// `{arch}.embedding_length`.
    pub n_embd: u32,
    /// `{arch}.block_count`.
    pub n_layer: u32,
    /// `{arch}.attention.head_count` (query heads).
    pub n_head: u32,
    /// `{arch}.attention.head_count_kv`, default `n_head`.
    pub n_head_kv: u32,
    /// `{arch}.attention.key_length` when present, else `n_embd / n_head`. Gemma 3 270M has
    /// `n_head * head_dim` (1024) != `n_embd` (640).
    pub head_dim: u32,
    /// Dimensions RoPE rotates: `{arch}.rope.dimension_count`, default `head_dim`.
    pub n_rot: u32,
    /// `{arch}.feed_forward_length`.
    pub n_ff: u32,
    /// `{arch}.context_length`: the training context, the most positions worth allocating.
    pub context_length: u32,
    /// `{arch}.attention.layer_norm_rms_epsilon`.
    pub rms_eps: f32,
    /// `{arch}.rope.freq_base`, default 10000 (global layers, for Gemma 3).
    pub rope_base: f32,
    /// Position multiplier: `1 / {arch}.rope.scaling.factor` for linear scaling, else 1.
    /// Applies to global layers only on Gemma 3.
    pub rope_freq_scale: f32,
    /// RoPE base of the local (sliding-window) layers: Gemma 3 only, 10000.
    pub rope_base_local: Option<f32>,
    pub rope: RopeStyle,
    /// `{arch}.attention.sliding_window` (Gemma 3 only, when > 0): a local query at `p` sees
    /// keys at `p'` with `p - p' < n_swa`.
    pub sliding_window: Option<u32>,
    /// With a sliding window: layer `il` is local when `il % pattern < pattern - 1`.
    pub swa_pattern: Option<u32>,
    /// Qwen2: `attn_{q,k,v}.bias` are required.
    pub qkv_bias: bool,
    /// Gemma 3: per-head RMSNorm of Q and K (`attn_q_norm`, `attn_k_norm`) before RoPE.
    pub qk_norm: bool,
    /// Gemma 3: `post_attention_norm` and `post_ffw_norm` on each sublayer's output.
    pub post_norms: bool,
    /// Gemma 3: input embeddings multiplied by `sqrt(n_embd)`.
    pub embedding_scale: Option<f32>,
    /// No `output.weight`: the LM head reuses `token_embd.weight` (llama.cpp
    /// `TENSOR_DUPLICATED`).
    pub tied_output: bool,
    /// Gemma 3: `tanh` softcapping of the final logits, when `{arch}.final_logit_softcapping`
    /// is present and > 0.
    pub final_logit_softcapping: Option<f32>,
    /// The factor applied to `q·k`: `1/sqrt(head_dim)`; on Gemma 3 llama.cpp applies it to Q
    /// (`f_attention_scale`), `1/sqrt(n_embd/n_head)` for the 62-layer 27B.
    pub attention_scale: f32,
}

impl ModelConfig {
    /// Reads the hyperparameters from a parsed header. Needs the header only (metadata and
    /// tensor infos), not the tensor data.
    ///
    /// The file is hostile: every count is checked against its cap ([`MAX_LAYERS`], ...) and
    /// against the tensors that are there (`block_count` against the `blk.N` tensors, the
    /// vocabulary against `token_embd.weight` and `tokenizer.ggml.tokens`, the heads against
    /// the rows of `blk.0.attn_q`/`attn_k`, `feed_forward_length` against `blk.0.ffn_up`) before
    /// anything is sized from it.
    ///
    /// # Errors
    /// [`ModelError::UnsupportedArchitecture`] for an architecture not in
    /// [`Architecture::SUPPORTED`], [`ModelError::Metadata`] naming a missing or mistyped key,
    /// [`ModelError::OutOfRange`] for a count that is zero or over its cap,
    /// [`ModelError::CountMismatch`] for one the tensors (or another key) contradict,
    /// [`ModelError::NotDivisible`], [`ModelError::InvalidValue`] for a float that is not a
    /// positive finite number, [`ModelError::MissingTensor`] without `token_embd.weight`, and
    /// [`ModelError::Inconsistent`] for an unsupported RoPE scaling.
    pub fn from_gguf(header: &GgufHeader) -> Result<ModelConfig, ModelError> {
        let md = header.metadata();
        let arch_name = md.get_str("general.architecture")?;
        let arch = Architecture::from_name(arch_name).ok_or_else(|| ModelError::UnsupportedArchitecture {
            arch: arch_name.to_owned(),
            supported: Architecture::SUPPORTED,
        })?;
        let key = |k: &str| format!("{arch_name}.{k}");
        // Counts are read as any non-negative integer (so that a 2^40 stored as u64 is reported
        // as out of range with its value) and checked against `min..=max` before any use.
        let opt_count = |k: &str, min: u32, max: u32| -> Result<Option<u32>, ModelError> {
            let k = key(k);
            if md.get(&k).is_none() {
                return Ok(None);
            }
            let value = md.get_u64_like(&k)?;
            in_range(&k, value, min, max).map(Some)
        };
        let count = |k: &str, min: u32, max: u32| -> Result<u32, ModelError> {
            opt_count(k, min, max)?.ok_or_else(|| ModelError::Metadata(GgufError::MissingKey(key(k))))
        };
        let positive_f32 = |k: &str, v: f32| -> Result<f32, ModelError> {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(ModelError::InvalidValue { key: k.to_owned(), value: v.to_string(), expected: POSITIVE })
            }
        };
        let opt_f32 = |k: &str| -> Result<Option<f32>, ModelError> {
            let k = key(k);
            match md.get(&k) {
                None => Ok(None),
                Some(_) => Ok(Some(md.get_f32(&k)?)),
            }
        };

        let n_embd = count("embedding_length", 1, MAX_EMBD)?;
        let n_layer = count("block_count", 1, MAX_LAYERS)?;
        let n_ff = count("feed_forward_length", 1, MAX_FF)?;
        let context_length = count("context_length", 1, MAX_CONTEXT)?;
        let n_head = count("attention.head_count", 1, MAX_HEADS)?;
        let n_head_kv = opt_count("attention.head_count_kv", 1, MAX_HEADS)?.unwrap_or(n_head);
        if n_head % n_head_kv != 0 {
            return Err(ModelError::NotDivisible {
                key: key("attention.head_count"),
                value: n_head.into(),
                divisor: n_head_kv.into(),
                divisor_from: key("attention.head_count_kv"),
            });
        }
        let head_dim = match opt_count("attention.key_length", 1, MAX_HEAD_DIM)? {
            Some(k) => k,
            None => {
                if n_embd % n_head != 0 {
                    return Err(ModelError::NotDivisible {
                        key: key("embedding_length"),
                        value: n_embd.into(),
                        divisor: n_head.into(),
                        divisor_from: format!(
                            "{}, and there is no {}",
                            key("attention.head_count"),
                            key("attention.key_length")
                        ),
                    });
                }
                in_range(
                    &format!("{} / {}", key("embedding_length"), key("attention.head_count")),
                    (n_embd / n_head).into(),
                    1,
                    MAX_HEAD_DIM,
                )?
            }
        };
        if let Some(v) = opt_count("attention.value_length", 1, MAX_HEAD_DIM)?
            && v != head_dim
        {
            return Err(ModelError::CountMismatch {
                key: key("attention.value_length"),
                value: v.into(),
                with: "the key length".to_owned(),
                found: head_dim.into(),
            });
        }
        let n_rot = opt_count("rope.dimension_count", 2, head_dim)?.unwrap_or(head_dim);
        if n_rot % 2 != 0 {
            return Err(ModelError::NotDivisible {
                key: key("rope.dimension_count"),
                value: n_rot.into(),
                divisor: 2,
                divisor_from: "RoPE rotates pairs of dimensions".to_owned(),
            });
        }
        let rms_key = key("attention.layer_norm_rms_epsilon");
        let rms_eps = positive_f32(&rms_key, md.get_f32(&rms_key)?)?;
        let rope_base = positive_f32(&key("rope.freq_base"), opt_f32("rope.freq_base")?.unwrap_or(10_000.0))?;
        // YaRN / LongRoPE change the frequencies in ways this crate does not implement: refuse
        // rather than approximate (as tools/reference_forward.py does).
        let scaling_key = key("rope.scaling.type");
        let rope_freq_scale = match md.get(&scaling_key) {
            None => 1.0,
            Some(_) => match md.get_str(&scaling_key)? {
                "none" => 1.0,
                "linear" => {
                    let factor_key = key("rope.scaling.factor");
                    1.0 / positive_f32(&factor_key, md.get_f32(&factor_key)?)?
                }
                other => {
                    return Err(ModelError::inconsistent(format!(
                        "{scaling_key} {other:?} is not supported (only none and linear)"
                    )));
                }
            },
        };

        // The counts against the tensors that are there, before anything is sized from them.
        let token_embd = header
            .tensor("token_embd.weight")
            .ok_or_else(|| ModelError::MissingTensor { name: "token_embd.weight".to_owned() })?;
        if token_embd.dims.len() != 2 {
            return Err(ModelError::TensorShape {
                name: "token_embd.weight".to_owned(),
                expected: vec![u64::from(n_embd), 0],
                found: token_embd.dims.clone(),
            });
        }
        if token_embd.dims[0] != u64::from(n_embd) {
            return Err(ModelError::CountMismatch {
                key: key("embedding_length"),
                value: n_embd.into(),
                with: "the columns (ne[0]) of token_embd.weight".to_owned(),
                found: token_embd.dims[0],
            });
        }
        let n_vocab =
            in_range("the vocabulary (the row count of token_embd.weight)", token_embd.dims[1], 1, MAX_VOCAB)?;
        let layers = layers_present(header);
        if layers != u64::from(n_layer) {
            let with = match layers {
                0 => "the layers with blk.N tensors (none)".to_owned(),
                n => format!("the layers with blk.N tensors (blk.0 to blk.{})", n - 1),
            };
            return Err(ModelError::CountMismatch {
                key: key("block_count"),
                value: n_layer.into(),
                with,
                found: layers,
            });
        }
        let rows = |name: &str| header.tensor(name).filter(|t| t.dims.len() == 2).map(|t| t.dims[1]);
        let (q_dim, kv_dim) = (u64::from(n_head) * u64::from(head_dim), u64::from(n_head_kv) * u64::from(head_dim));
        for (name, k, value, want) in [
            ("blk.0.attn_q.weight", "attention.head_count", n_head, q_dim),
            ("blk.0.attn_k.weight", "attention.head_count_kv", n_head_kv, kv_dim),
            ("blk.0.ffn_up.weight", "feed_forward_length", n_ff, u64::from(n_ff)),
        ] {
            // A missing or misshapen tensor is validate_tensors' to name.
            if let Some(found) = rows(name)
                && found != want
            {
                let with = if want == u64::from(value) {
                    format!("the rows of {name}")
                } else {
                    format!("the rows of {name} ({value} heads × {head_dim} dimensions would be {want})")
                };
                return Err(ModelError::CountMismatch { key: key(k), value: value.into(), with, found });
            }
        }
        // llama.cpp sizes token_embd from the tokenizer's token count, so the two must agree.
        if md.get("tokenizer.ggml.tokens").is_some() {
            let n_tokens = md.get_str_array("tokenizer.ggml.tokens")?.len();
            if n_tokens as u64 != u64::from(n_vocab) {
                return Err(ModelError::CountMismatch {
                    key: "tokenizer.ggml.tokens (its length)".to_owned(),
                    value: n_tokens as u64,
                    with: "the rows of token_embd.weight".to_owned(),
                    found: n_vocab.into(),
                });
            }
        }
        if let Some(v) = opt_count("vocab_size", 0, u32::MAX)?
            && v != n_vocab
        {
            return Err(ModelError::CountMismatch {
                key: key("vocab_size"),
                value: v.into(),
                with: "the rows of token_embd.weight".to_owned(),
                found: n_vocab.into(),
            });
        }

        let gemma = arch == Architecture::Gemma3;
        let sliding_window =
            if gemma { opt_count("attention.sliding_window", 0, MAX_CONTEXT)?.filter(|&w| w > 0) } else { None };
        let final_logit_softcapping = match opt_f32("final_logit_softcapping")? {
            Some(c) if gemma && !c.is_finite() => {
                return Err(ModelError::InvalidValue {
                    key: key("final_logit_softcapping"),
                    value: c.to_string(),
                    expected: "a finite number (0 or less for none)",
                });
            }
            Some(c) if gemma && c > 0.0 => Some(c),
            _ => None,
        };
        let attention_scale = if gemma && n_layer == 62 {
            // Gemma 3 27B: query_pre_attn_scalar = n_embd / n_head (llama.cpp LLM_TYPE_27B).
            1.0 / ((n_embd as f32) / (n_head as f32)).sqrt()
        } else {
            1.0 / (head_dim as f32).sqrt()
        };

        Ok(ModelConfig {
            arch,
            n_vocab,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            n_rot,
            n_ff,
            context_length,
            rms_eps,
            rope_base,
            rope_freq_scale,
            rope_base_local: sliding_window.map(|_| GEMMA3_ROPE_BASE_LOCAL),
            rope: arch.rope_style(),
            sliding_window,
            swa_pattern: sliding_window.map(|_| GEMMA3_SWA_PATTERN),
            qkv_bias: arch == Architecture::Qwen2,
            qk_norm: gemma,
            post_norms: gemma,
            embedding_scale: gemma.then(|| (n_embd as f32).sqrt()),
            tied_output: header.tensor("output.weight").is_none(),
            final_logit_softcapping,
            attention_scale,
        })
    }

    /// True when layer `il` uses the sliding window (and the local RoPE base).
    pub fn is_local_layer(&self, il: u32) -> bool {
        match (self.sliding_window, self.swa_pattern) {
            (Some(_), Some(p)) => il % p < p - 1,
            _ => false,
        }
    }

    /// The RoPE base and frequency scale of layer `il`.
    pub fn rope_for_layer(&self, il: u32) -> (f32, f32) {
        match self.rope_base_local {
            Some(base) if self.is_local_layer(il) => (base, 1.0),
            _ => (self.rope_base, self.rope_freq_scale),
        }
    }

    /// Query width `n_head * head_dim` (the input of `attn_output`).
    pub fn q_dim(&self) -> u64 {
        u64::from(self.n_head) * u64::from(self.head_dim)
    }

    /// Key/value width `n_head_kv * head_dim`.
    pub fn kv_dim(&self) -> u64 {
        u64::from(self.n_head_kv) * u64::from(self.head_dim)
    }

    /// Every tensor this configuration reads, with its shape in ggml order (`ne[0]` first) and
    /// whether it must be present. Optional entries are checked only when the file has them.
    /// At most 17 a layer: [`MAX_LAYERS`] bounds the list for a configuration from
    /// [`Self::from_gguf`].
    pub fn expected_tensors(&self) -> Vec<(String, Vec<u64>, bool)> {
        let embd = u64::from(self.n_embd);
        let ff = u64::from(self.n_ff);
        let hd = u64::from(self.head_dim);
        let (q, kv) = (self.q_dim(), self.kv_dim());
        let mut out = vec![("token_embd.weight".to_owned(), vec![embd, u64::from(self.n_vocab)], true)];
        for il in 0..self.n_layer {
            let p = |s: &str| format!("blk.{il}.{s}");
            out.push((p("attn_norm.weight"), vec![embd], true));
            out.push((p("attn_q.weight"), vec![embd, q], true));
            out.push((p("attn_k.weight"), vec![embd, kv], true));
            out.push((p("attn_v.weight"), vec![embd, kv], true));
            out.push((p("attn_output.weight"), vec![q, embd], true));
            // llama.cpp loads these biases as TENSOR_NOT_REQUIRED for llama; qwen2 needs them.
            out.push((p("attn_q.bias"), vec![q], self.qkv_bias));
            out.push((p("attn_k.bias"), vec![kv], self.qkv_bias));
            out.push((p("attn_v.bias"), vec![kv], self.qkv_bias));
            if self.qk_norm {
                out.push((p("attn_q_norm.weight"), vec![hd], true));
                out.push((p("attn_k_norm.weight"), vec![hd], true));
            }
            if self.post_norms {
                out.push((p("post_attention_norm.weight"), vec![embd], true));
                out.push((p("post_ffw_norm.weight"), vec![embd], true));
            }
            out.push((p("ffn_norm.weight"), vec![embd], true));
            out.push((p("ffn_gate.weight"), vec![embd, ff], true));
            out.push((p("ffn_up.weight"), vec![embd, ff], true));
            out.push((p("ffn_down.weight"), vec![ff, embd], true));
        }
        out.push(("output_norm.weight".to_owned(), vec![embd], true));
        out.push(("output.weight".to_owned(), vec![embd, u64::from(self.n_vocab)], !self.tied_output));
        // Llama 3.1+ frequency factors: one per rotated pair.
        out.push(("rope_freqs.weight".to_owned(), vec![u64::from(self.n_rot / 2)], false));
        out
    }

    /// Checks that every tensor the architecture needs is in the header with the shape the
    /// hyperparameters imply (and that optional ones, when present, have theirs). Trailing
    /// dimensions of 1 are ignored, as in llama.cpp's `create_tensor` check.
    ///
    /// # Errors
    /// [`ModelError::OutOfRange`] for a configuration over the caps (one built by hand), then the
    /// first [`ModelError::MissingTensor`], [`ModelError::TensorShape`] or
    /// [`ModelError::UnsupportedTensorType`], in layer order.
    pub fn validate_tensors(&self, header: &GgufHeader) -> Result<(), ModelError> {
        // A configuration built by hand gets the caps `from_gguf` applies, before
        // `expected_tensors` lists a name per layer.
        self.check_caps()?;
        for (name, expected, required) in self.expected_tensors() {
            let Some(info) = header.tensor(&name) else {
                if required {
                    return Err(ModelError::MissingTensor { name });
                }
                continue;
            };
            if !same_shape(&info.dims, &expected) {
                return Err(ModelError::TensorShape { name, expected, found: info.dims.clone() });
            }
            // Every backend decodes what it computes with (the CPU all of these, the GPU a subset
            // it reports before loading): the integer types and the IQ/TQ families cannot run.
            if !info.ggml_type.is_supported_for_decode() {
                return Err(ModelError::UnsupportedTensorType { name, ty: info.ggml_type });
            }
        }
        Ok(())
    }

    /// The caps [`Self::from_gguf`] checks, for a configuration that did not come from it.
    fn check_caps(&self) -> Result<(), ModelError> {
        let arch = self.arch.name();
        let caps = [
            ("block_count", self.n_layer, 1, MAX_LAYERS),
            ("embedding_length", self.n_embd, 1, MAX_EMBD),
            ("feed_forward_length", self.n_ff, 1, MAX_FF),
            ("context_length", self.context_length, 1, MAX_CONTEXT),
            ("attention.head_count", self.n_head, 1, MAX_HEADS),
            ("attention.head_count_kv", self.n_head_kv, 1, self.n_head),
            ("attention.key_length", self.head_dim, 1, MAX_HEAD_DIM),
            ("rope.dimension_count", self.n_rot, 2, self.head_dim),
        ];
        for (k, value, min, max) in caps {
            in_range(&format!("{arch}.{k}"), value.into(), min, max)?;
        }
        in_range("the vocabulary (the row count of token_embd.weight)", self.n_vocab.into(), 1, MAX_VOCAB)?;
        Ok(())
    }

    /// Bytes of a K and V cache for `context` positions over all layers, at
    /// `bytes_per_element` (2 for f16, 4 for f32): `2 * n_layer * context * n_head_kv *
    /// head_dim * bytes_per_element`. Gemma 3's local layers are counted at full length, as a
    /// cache that does not evict would hold them.
    pub fn kv_cache_bytes(&self, context: u32, bytes_per_element: u32) -> u64 {
        2 * u64::from(self.n_layer) * u64::from(context) * self.kv_dim() * u64::from(bytes_per_element)
    }
}

/// Equal after dropping trailing 1s from both (ggml pads every tensor to 4 dims with 1s).
fn same_shape(found: &[u64], expected: &[u64]) -> bool {
    fn trim(d: &[u64]) -> &[u64] {
        let n = d.iter().rposition(|&x| x != 1).map_or(0, |i| i + 1);
        &d[..n]
    }
    trim(found) == trim(expected)
}

/// What the caps say of a number that is not a finite positive float.
const POSITIVE: &str = "a positive finite number";

/// `value` as a `u32` when it is in `min..=max`, else [`ModelError::OutOfRange`] naming `key`.
fn in_range(key: &str, value: u64, min: u32, max: u32) -> Result<u32, ModelError> {
    match u32::try_from(value) {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(ModelError::OutOfRange { key: key.to_owned(), value, min: min.into(), max: max.into() }),
    }
}

/// One more than the highest `N` of the `blk.N.*` tensors (0 when there are none): the layers
/// the file has weights for. An index too large for a `u64` counts as `u64::MAX`.
fn layers_present(header: &GgufHeader) -> u64 {
    header
        .tensors()
        .iter()
        .filter_map(|t| {
            let index = t.name.strip_prefix("blk.")?.split('.').next()?;
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(index.parse::<u64>().unwrap_or(u64::MAX).saturating_add(1))
        })
        .max()
        .unwrap_or(0)
}
