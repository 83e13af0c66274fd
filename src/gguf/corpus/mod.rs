//! Hand-made GGUF files for tests: a small writer ([`Builder`]), a few valid headers
//! ([`valid_samples`]) and a corpus of corrupt files ([`corrupt_cases`]) with the
//! [`GgufError::kind`] each must be rejected with.
//!
//! [`hostile_models`] (in `model.rs`) adds files whose header is sound but whose model is not:
//! counts that disagree with the tensors, absurd sizes, misshapen or mistyped tensors, each with
//! the [`crate::model::ModelError::kind`] it must be rejected with.
//!
//! One corpus serves three consumers, so that a rejection checked natively is also checked where
//! it matters and a fuzzer starts from the interesting corners:
//! - the native unit tests (`src/gguf/tests.rs`),
//! - the browser tests (`tests/web.rs`, wasm32), through `hearth::gguf::corpus::corrupt_cases()`,
//! - the fuzzer's seed corpus (`fuzz/`, written at run time by `tools/fuzz.sh`).
//!
//! Plain `std`, no I/O: it builds for wasm32. Not part of the supported API (`#[doc(hidden)]`).

mod model;

pub use model::{HostileModel, check_model, hostile_models, valid_models};

use super::error::GgufError;
use super::header::{GgufHeader, MAX_ARRAY_DEPTH, MAX_ARRAY_LEN, MAX_NAME_LEN, MAX_STRING_LEN};
use super::header::{MAX_KV, MAX_TENSORS};
use super::types::GgmlType;

/// GGUF metadata value type ids (`gguf_type`).
pub const T_U8: u32 = 0;
pub const T_I8: u32 = 1;
pub const T_U16: u32 = 2;
pub const T_I16: u32 = 3;
pub const T_U32: u32 = 4;
pub const T_I32: u32 = 5;
pub const T_F32: u32 = 6;
pub const T_BOOL: u32 = 7;
pub const T_STRING: u32 = 8;
pub const T_ARRAY: u32 = 9;
pub const T_U64: u32 = 10;
pub const T_I64: u32 = 11;
pub const T_F64: u32 = 12;

/// A GGUF string: `u64` length, then the bytes (not checked for UTF-8, on purpose).
pub fn gguf_str(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

/// The start of an array value: element type and element count.
pub fn array_header(elem_type: u32, len: u64) -> Vec<u8> {
    let mut out = elem_type.to_le_bytes().to_vec();
    out.extend_from_slice(&len.to_le_bytes());
    out
}

/// Writes GGUF files byte by byte, including wrong ones: counts, key bytes, type ids, dimensions
/// and offsets are taken as given.
#[derive(Clone, Debug)]
pub struct Builder {
    magic: [u8; 4],
    version: u32,
    n_tensors: Option<u64>,
    n_kv: Option<u64>,
    kv: Vec<u8>,
    kv_count: u64,
    tensors: Vec<u8>,
    tensor_count: u64,
    alignment: u64,
    data_len: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// An empty v3 file: magic, version and zero counts.
    pub fn new() -> Self {
        Builder {
            magic: *b"GGUF",
            version: 3,
            n_tensors: None,
            n_kv: None,
            kv: Vec::new(),
            kv_count: 0,
            tensors: Vec::new(),
            tensor_count: 0,
            alignment: 32,
            data_len: 0,
        }
    }

    /// Replaces the magic bytes.
    pub fn magic(mut self, magic: [u8; 4]) -> Self {
        self.magic = magic;
        self
    }

    /// Replaces the version field.
    pub fn version(mut self, v: u32) -> Self {
        self.version = v;
        self
    }

    /// Overrides the tensor and kv counts written in the fixed header.
    pub fn counts(mut self, n_tensors: u64, n_kv: u64) -> Self {
        self.n_tensors = Some(n_tensors);
        self.n_kv = Some(n_kv);
        self
    }

    /// A metadata entry with a raw key and raw value bytes.
    pub fn kv_raw(mut self, key: &[u8], type_id: u32, value: &[u8]) -> Self {
        self.kv.extend(gguf_str(key));
        self.kv.extend(type_id.to_le_bytes());
        self.kv.extend_from_slice(value);
        self.kv_count += 1;
        self
    }

    /// A metadata entry with raw value bytes.
    pub fn kv(self, key: &str, type_id: u32, value: &[u8]) -> Self {
        self.kv_raw(key.as_bytes(), type_id, value)
    }

    /// A `u32` metadata entry.
    pub fn kv_u32(self, key: &str, v: u32) -> Self {
        self.kv(key, T_U32, &v.to_le_bytes())
    }

    /// A string metadata entry.
    pub fn kv_str(self, key: &str, v: &str) -> Self {
        self.kv(key, T_STRING, &gguf_str(v.as_bytes()))
    }

    /// A string-array metadata entry.
    pub fn kv_str_array(self, key: &str, items: &[&str]) -> Self {
        let mut value = array_header(T_STRING, items.len() as u64);
        for s in items {
            value.extend(gguf_str(s.as_bytes()));
        }
        self.kv(key, T_ARRAY, &value)
    }

    /// Sets `general.alignment` and pads the data section to it.
    pub fn alignment(mut self, a: u32) -> Self {
        self.alignment = u64::from(a).max(1);
        self.kv_u32("general.alignment", a)
    }

    /// A tensor info with a raw name and raw type id.
    pub fn tensor_raw(mut self, name: &[u8], dims: &[u64], type_id: u32, offset: u64) -> Self {
        self.tensors.extend(gguf_str(name));
        self.tensors.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.tensors.extend(d.to_le_bytes());
        }
        self.tensors.extend(type_id.to_le_bytes());
        self.tensors.extend(offset.to_le_bytes());
        self.tensor_count += 1;
        self
    }

    /// A tensor info.
    pub fn tensor(self, name: &str, dims: &[u64], ty: GgmlType, offset: u64) -> Self {
        self.tensor_raw(name.as_bytes(), dims, ty.id(), offset)
    }

    /// Bytes of tensor data after the aligned data offset.
    pub fn data(mut self, n: u64) -> Self {
        self.data_len = n;
        self
    }

    /// The header proper: fixed fields, metadata and tensor infos, without padding.
    pub fn header(&self) -> Vec<u8> {
        let mut out = self.magic.to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend(self.n_tensors.unwrap_or(self.tensor_count).to_le_bytes());
        out.extend(self.n_kv.unwrap_or(self.kv_count).to_le_bytes());
        out.extend_from_slice(&self.kv);
        out.extend_from_slice(&self.tensors);
        out
    }

    /// The whole file: header, padding to the alignment and `data` bytes of tensor data.
    pub fn build(&self) -> Vec<u8> {
        let mut out = self.header();
        if self.data_len > 0 {
            let padded = (out.len() as u64).next_multiple_of(self.alignment);
            out.resize(padded as usize, 0);
            // Recognisable bytes so slicing mistakes show up.
            out.extend((0..self.data_len).map(|i| (i % 251) as u8));
        }
        out
    }
}

/// A valid v3 file with one of everything: two tensors (F32 and Q4_K) and a few keys.
pub fn sample() -> Builder {
    Builder::new()
        .kv_str("general.architecture", "llama")
        .kv_u32("llama.context_length", 2048)
        .tensor("a", &[8], GgmlType::F32, 0)
        .tensor("b", &[256, 2], GgmlType::Q4_K, 32)
        .data(32 + 2 * 144)
}

/// Small valid files (name, bytes), e.g. as fuzzer seeds: each parses with `parse_complete`.
pub fn valid_samples() -> Vec<(&'static str, Vec<u8>)> {
    let mut nested = array_header(T_ARRAY, 2);
    nested.extend(array_header(T_U8, 2));
    nested.extend([7, 8]);
    nested.extend(array_header(T_STRING, 1));
    nested.extend(gguf_str(b"x"));
    let mut bools = array_header(T_BOOL, 2);
    bools.extend([1, 0]);
    let mut scores = array_header(T_F32, 3);
    for v in [0.0f32, -1.0, -2.5] {
        scores.extend(v.to_le_bytes());
    }
    // One block of each decodable type, so the fuzzer reaches every decoder.
    let mut all_types = Builder::new();
    let mut offset = 0u64;
    for ty in GgmlType::all().filter(|t| t.is_supported_for_decode()) {
        let n = ty.block_size() as u64;
        all_types = all_types.tensor(ty.name(), &[n], ty, offset);
        offset += (ty.type_size() as u64).next_multiple_of(32);
    }
    vec![
        ("empty", Builder::new().build()),
        ("sample_v3", sample().build()),
        ("sample_v2", sample().version(2).build()),
        (
            "tokenizer_and_values",
            Builder::new()
                .kv_str("general.architecture", "llama")
                .kv_str("tokenizer.ggml.model", "llama")
                .kv_str_array("tokenizer.ggml.tokens", &["<unk>", "<s>", "</s>"])
                .kv("tokenizer.ggml.scores", T_ARRAY, &scores)
                .kv("tokenizer.ggml.add_bos_token", T_BOOL, &[1])
                .kv("u64", T_U64, &(1u64 << 40).to_le_bytes())
                .kv("f64", T_F64, &0.5f64.to_le_bytes())
                .kv("i16", T_I16, &(-3i16).to_le_bytes())
                .kv("bools", T_ARRAY, &bools)
                .kv("nested", T_ARRAY, &nested)
                .build(),
        ),
        (
            "alignment_64",
            Builder::new()
                .alignment(64)
                .tensor("a", &[4], GgmlType::F32, 0)
                .tensor("b", &[4, 2], GgmlType::F16, 64)
                .data(80)
                .build(),
        ),
        ("every_decodable_type", all_types.data(offset).build()),
    ]
}

/// One hand-made corrupt file and the error it must be rejected with.
#[derive(Clone, Debug)]
pub struct CorruptCase {
    /// Unique, stable name (`snake_case`), e.g. `"bad_magic"`.
    pub name: &'static str,
    /// The file (or prefix of it, when `file_len` is `None` or longer).
    pub bytes: Vec<u8>,
    /// The file length passed to [`GgufHeader::parse_with_len`]: `Some(bytes.len())` for a
    /// complete file, `None` for a prefix of unknown length.
    pub file_len: Option<u64>,
    /// The [`GgufError::kind`] code expected.
    pub expected_kind: &'static str,
}

/// A complete file.
fn complete(name: &'static str, bytes: Vec<u8>, expected_kind: &'static str) -> CorruptCase {
    CorruptCase { name, file_len: Some(bytes.len() as u64), bytes, expected_kind }
}

/// A prefix of a file whose length is unknown (how the browser parses the first Range request):
/// only errors visible in the bytes themselves can be reported.
fn prefix(name: &'static str, bytes: Vec<u8>, expected_kind: &'static str) -> CorruptCase {
    CorruptCase { name, bytes, file_len: None, expected_kind }
}

fn cut(mut bytes: Vec<u8>, len: usize) -> Vec<u8> {
    bytes.truncate(len);
    bytes
}

/// Offset just inside the first metadata key of [`sample`] (after the 24-byte fixed header and
/// the key's 8-byte length).
const IN_FIRST_KEY: usize = 24 + 8 + 3;

/// The corrupt-file corpus: every rejection the reader promises, at least one file each.
pub fn corrupt_cases() -> Vec<CorruptCase> {
    use GgmlType::*;
    let good = sample().build();
    let header_len = sample().header().len();
    let one_tensor = |dims: &[u64], ty: GgmlType, data: u64| Builder::new().tensor("t", dims, ty, 0).data(data).build();
    let mut deep = Vec::new();
    for _ in 0..MAX_ARRAY_DEPTH {
        deep.extend(array_header(T_ARRAY, 1));
    }
    deep.extend(array_header(T_U8, 0));

    let mut cases = vec![
        // Fixed header.
        complete("empty_file", Vec::new(), "truncated"),
        complete("bad_magic", sample().magic(*b"GGML").build(), "bad_magic"),
        prefix("bad_magic_prefix", sample().magic(*b"\0\0\0\0").build(), "bad_magic"),
        complete("version_0", sample().version(0).build(), "unsupported_version"),
        complete("version_1", sample().version(1).build(), "unsupported_version"),
        complete("version_4", sample().version(4).build(), "unsupported_version"),
        prefix("version_huge_prefix", sample().version(0xdead_beef).build(), "unsupported_version"),
        complete("big_endian", sample().version(3u32.swap_bytes()).build(), "big_endian"),
        // Truncated headers, at several points.
        complete("truncated_in_magic", cut(good.clone(), 2), "truncated"),
        complete("truncated_in_version", cut(good.clone(), 6), "truncated"),
        complete("truncated_in_counts", cut(good.clone(), 20), "truncated"),
        complete("truncated_in_key", cut(good.clone(), IN_FIRST_KEY), "truncated"),
        complete("truncated_in_string_value", cut(good.clone(), 24 + 8 + 20 + 4 + 8 + 2), "truncated"),
        complete("truncated_in_tensor_info", cut(good.clone(), header_len - 5), "truncated"),
        CorruptCase {
            name: "file_len_shorter_than_header",
            bytes: good.clone(),
            file_len: Some(30),
            expected_kind: "truncated",
        },
        // Truncated tensor data: the header is whole, the last tensor is cut.
        complete("truncated_tensor_data", cut(good.clone(), good.len() - 1), "tensor_out_of_bounds"),
        CorruptCase {
            name: "header_prefix_of_short_file",
            bytes: cut(good.clone(), header_len),
            file_len: Some(good.len() as u64 - 1),
            expected_kind: "tensor_out_of_bounds",
        },
        // Absurd counts and lengths.
        complete("tensor_count_over_cap", Builder::new().counts(MAX_TENSORS + 1, 0).build(), "too_large"),
        prefix("tensor_count_u64_max_prefix", Builder::new().counts(u64::MAX, 0).build(), "too_large"),
        complete("kv_count_u64_max", Builder::new().counts(0, u64::MAX).build(), "too_large"),
        complete("kv_count_over_cap", Builder::new().counts(0, MAX_KV + 1).build(), "too_large"),
        complete(
            "kv_count_past_end_of_file",
            Builder::new().kv_u32("a", 1).kv_u32("b", 2).counts(0, 1000).build(),
            "truncated",
        ),
        complete("tensor_count_past_end_of_file", sample().data(0).counts(3, 2).build(), "truncated"),
        complete(
            "key_length_u64_max",
            {
                let mut b = Builder::new().counts(0, 1).build();
                b.extend(u64::MAX.to_le_bytes());
                b
            },
            "too_large",
        ),
        complete(
            "key_length_over_cap",
            Builder::new().kv_raw(&vec![b'k'; MAX_NAME_LEN as usize + 1], T_U8, &[0]).build(),
            "too_large",
        ),
        complete(
            "string_length_over_cap",
            Builder::new()
                .kv("k", T_STRING, &{
                    let mut v = (MAX_STRING_LEN + 1).to_le_bytes().to_vec();
                    v.extend(b"abc");
                    v
                })
                .build(),
            "too_large",
        ),
        complete(
            "string_past_end_of_file",
            Builder::new()
                .kv("k", T_STRING, &{
                    let mut v = 1000u64.to_le_bytes().to_vec();
                    v.extend(b"abc");
                    v
                })
                .build(),
            "truncated",
        ),
        complete(
            "array_length_over_cap",
            Builder::new().kv("k", T_ARRAY, &array_header(T_U32, MAX_ARRAY_LEN + 1)).build(),
            "too_large",
        ),
        complete(
            "string_array_length_u64_max",
            Builder::new().kv("k", T_ARRAY, &array_header(T_STRING, u64::MAX)).build(),
            "too_large",
        ),
        complete(
            "array_past_end_of_file",
            Builder::new()
                .kv("k", T_ARRAY, &{
                    let mut v = array_header(T_U64, 1000);
                    v.extend(5u64.to_le_bytes());
                    v
                })
                .build(),
            "truncated",
        ),
        complete(
            "string_array_past_end_of_file",
            Builder::new()
                .kv("k", T_ARRAY, &{
                    let mut v = array_header(T_STRING, 1_000_000);
                    v.extend(gguf_str(b"a"));
                    v
                })
                .build(),
            "truncated",
        ),
        complete("arrays_nested_too_deep", Builder::new().kv("deep", T_ARRAY, &deep).build(), "nesting_too_deep"),
        // Metadata values.
        complete("unknown_value_type", Builder::new().kv("k", 13, &[0; 8]).build(), "unknown_value_type"),
        complete(
            "unknown_array_element_type",
            Builder::new().kv("k", T_ARRAY, &array_header(99, 1)).build(),
            "unknown_value_type",
        ),
        complete("invalid_bool", Builder::new().kv("flag", T_BOOL, &[2]).build(), "invalid_bool"),
        complete(
            "invalid_bool_in_array",
            Builder::new()
                .kv("flags", T_ARRAY, &{
                    let mut v = array_header(T_BOOL, 3);
                    v.extend([0, 1, 7]);
                    v
                })
                .build(),
            "invalid_bool",
        ),
        complete("non_utf8_key", Builder::new().kv_raw(b"bad\xff", T_U8, &[1]).build(), "invalid_utf8"),
        complete(
            "non_utf8_string_value",
            Builder::new().kv("k", T_STRING, &gguf_str(b"\xc3\x28")).build(),
            "invalid_utf8",
        ),
        complete(
            "non_utf8_string_in_array",
            Builder::new()
                .kv("tokens", T_ARRAY, &{
                    let mut v = array_header(T_STRING, 2);
                    v.extend(gguf_str(b"ok"));
                    v.extend(gguf_str(b"\x80"));
                    v
                })
                .build(),
            "invalid_utf8",
        ),
        complete(
            "non_utf8_tensor_name",
            Builder::new().tensor_raw(b"w\xfe", &[4], F32.id(), 0).data(16).build(),
            "invalid_utf8",
        ),
        complete("duplicate_key", Builder::new().kv_u32("dup", 1).kv_u32("dup", 2).build(), "duplicate_key"),
        complete("alignment_0", Builder::new().alignment(0).build(), "bad_alignment"),
        complete("alignment_3", Builder::new().alignment(3).build(), "bad_alignment"),
        complete("alignment_96", Builder::new().alignment(96).build(), "bad_alignment"),
        complete(
            "alignment_u64",
            Builder::new().kv("general.alignment", T_U64, &32u64.to_le_bytes()).build(),
            "wrong_type",
        ),
        // Tensor infos.
        complete(
            "duplicate_tensor",
            Builder::new().tensor("w", &[8], F32, 0).tensor("w", &[8], F32, 32).data(64).build(),
            "duplicate_tensor",
        ),
        complete("rank_0", one_tensor(&[], F32, 32), "bad_rank"),
        complete("rank_5", one_tensor(&[1, 1, 1, 1, 1], F32, 32), "bad_rank"),
        complete(
            "rank_u32_max",
            {
                let mut b = Builder::new().counts(1, 0).build();
                b.extend(gguf_str(b"t"));
                b.extend(u32::MAX.to_le_bytes());
                b
            },
            "bad_rank",
        ),
        complete("zero_dimension", one_tensor(&[4, 0], F32, 32), "zero_dimension"),
        complete("element_count_overflows_u64", one_tensor(&[1 << 32, 1 << 32], F32, 0), "dimension_overflow"),
        complete("element_count_over_i64", one_tensor(&[1 << 32, 1 << 31], I8, 0), "dimension_overflow"),
        complete("byte_size_over_i64", one_tensor(&[1 << 31, 1 << 30], F64, 0), "dimension_overflow"),
        complete("offset_overflow", Builder::new().tensor("f", &[8], F32, u64::MAX - 31).build(), "dimension_overflow"),
        complete("row_not_block_multiple_q4_0", one_tensor(&[16, 2], Q4_0, 64), "row_not_block_multiple"),
        complete("row_not_block_multiple_q6_k", one_tensor(&[128], Q6_K, 256), "row_not_block_multiple"),
        complete(
            "unknown_tensor_type",
            Builder::new().tensor_raw(b"t", &[32], 99, 0).data(256).build(),
            "unknown_tensor_type",
        ),
        prefix(
            "retired_tensor_type_prefix",
            Builder::new().tensor_raw(b"t", &[32], 4, 0).build(),
            "unknown_tensor_type",
        ),
        complete(
            "misaligned_offset",
            Builder::new().tensor("a", &[4], F32, 0).tensor("b", &[4], F32, 16).data(64).build(),
            "misaligned",
        ),
        complete(
            "misaligned_custom_alignment",
            Builder::new().alignment(64).tensor("a", &[4], F32, 32).data(64).build(),
            "misaligned",
        ),
        complete(
            "overlapping_tensors",
            Builder::new().tensor("a", &[16], F32, 0).tensor("b", &[8], F32, 32).data(96).build(),
            "overlapping_tensors",
        ),
        prefix(
            "overlapping_same_offset_prefix",
            Builder::new().tensor("x", &[8], F32, 64).tensor("y", &[4], F32, 64).build(),
            "overlapping_tensors",
        ),
        complete(
            "tensor_past_end_of_file",
            Builder::new().tensor("far", &[8], F32, 1 << 20).data(32).build(),
            "tensor_out_of_bounds",
        ),
    ];
    // A download that stopped in the middle of a quantised block.
    cases.push(complete("tensor_data_cut_mid_block", cut(good.clone(), good.len() - 100), "tensor_out_of_bounds"));
    cases
}

/// Parses `case` with [`GgufHeader::parse_with_len`] and explains any way the result differs
/// from the expected rejection: accepted, rejected with another kind, or asked for more bytes
/// where the bytes given should already prove the file corrupt.
pub fn check(case: &CorruptCase) -> Result<(), String> {
    let name = case.name;
    let want = case.expected_kind;
    match GgufHeader::parse_with_len(&case.bytes, case.file_len) {
        Ok(h) => Err(format!(
            "{name}: accepted ({} tensors, {} keys), expected {want}",
            h.tensors().len(),
            h.metadata().len()
        )),
        Err(e @ GgufError::NeedMoreBytes { .. }) => {
            Err(format!("{name}: asked for more bytes ({e}) instead of the hard error {want}"))
        }
        Err(e) if e.kind() != want => Err(format!("{name}: got {} ({e}), expected {want}", e.kind())),
        Err(e) if e.to_string().is_empty() => Err(format!("{name}: empty error message")),
        Err(_) => Ok(()),
    }
}
