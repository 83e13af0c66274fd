//! Phase 1 of reading a GGUF file: the header (magic, version, metadata, tensor infos).
//!
//! The header is parsed from a *prefix* of the file, because in the browser it arrives through an
//! HTTP Range request before any tensor data. Every count and length read from the file is capped
//! and checked against the bytes actually present before anything is allocated, and every tensor's
//! byte range is computed and validated up front, so phase 2 ([`GgufHeader::tensor_bytes`]) is a
//! bounds-checked slice and the loader knows every download size in advance.
//!
//! Layout (llama.cpp `gguf/gguf.cpp`, spec in ggml's `docs/gguf.md`), all little-endian:
//!
//! ```text
//! u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//! n_kv     x { string key | u32 value_type | value }
//! n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//! padding to general.alignment (default 32)
//! tensor data; each tensor at data_offset + offset
//! ```
//! where `string` is `u64 len | len bytes of UTF-8` and an array value is
//! `u32 elem_type | u64 count | count values`.

use std::collections::HashMap;
use std::ops::Range;

use super::error::{GgufError, Result};
use super::metadata::{Metadata, MetadataArray, MetadataValue};
use super::types::GgmlType;

/// `"GGUF"` as the first four bytes.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of the data section and of every tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that overrides [`DEFAULT_ALIGNMENT`].
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// `GGML_MAX_DIMS`.
pub const MAX_DIMS: u32 = 4;

/// Sanity caps. Real files are far below them; they exist so that a corrupt count is reported as
/// such instead of turning into a huge allocation or a very long loop. (candle uses 2^20 for the
/// counts; llama.cpp only bounds them by `SIZE_MAX`.)
pub const MAX_TENSORS: u64 = 1 << 20;
/// Cap on the number of metadata entries.
pub const MAX_KV: u64 = 1 << 20;
/// Cap on a metadata key or tensor name (llama.cpp's `GGML_MAX_NAME` is 64 for tensor names;
/// we are more lenient and only stop absurd values).
pub const MAX_NAME_LEN: u64 = 1024;
/// Cap on a string value (chat templates are kilobytes; 64 MiB stops only corrupt lengths).
pub const MAX_STRING_LEN: u64 = 64 << 20;
/// Cap on array elements. Vocabularies reach 262k tokens and merge lists ~1M; 2^24 leaves room.
pub const MAX_ARRAY_LEN: u64 = 1 << 24;
/// Cap on nested arrays (an array of arrays is depth 2). No known model nests at all.
pub const MAX_ARRAY_DEPTH: usize = 4;

/// One tensor as described in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is `ne[0]`, the innermost (contiguous) axis, so a
    /// PyTorch `[out, in]` weight is stored as `[in, out]` here.
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Byte offset relative to the start of the data section ([`GgufHeader::data_offset`]).
    pub offset: u64,
    /// Exact byte size of the tensor's data.
    pub size_bytes: u64,
    /// Product of `dims`.
    pub n_elements: u64,
}

/// A tensor as an app lists it: block type by name and absolute file offset.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorSummary<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub ggml_type: &'static str,
    pub dims: &'a [u64],
    /// From the start of the file.
    pub offset: u64,
    pub size: u64,
}

impl TensorInfo {
    /// Byte range relative to the start of the data section.
    pub fn relative_range(&self) -> Range<u64> {
        // Cannot overflow: checked when the header was parsed.
        self.offset..self.offset + self.size_bytes
    }
}

/// A parsed and validated GGUF header.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    header_len: u64,
    data_offset: u64,
    data_len: u64,
}

impl GgufHeader {
    /// Parses the header from `prefix`, the first bytes of a file of unknown length.
    ///
    /// If the header continues past `prefix`, returns [`GgufError::NeedMoreBytes`]: fetch more
    /// (at least `needed_at_least`, better double) and call again. Tensor data need not be present
    /// and tensor bounds against the file length are not checked; use [`Self::parse_with_len`]
    /// when the length is known (e.g. from `Content-Range`).
    pub fn parse(prefix: &[u8]) -> Result<GgufHeader> {
        Self::parse_with_len(prefix, None)
    }

    /// Parses the header from a complete file: running out of bytes is [`GgufError::Truncated`]
    /// and every tensor must lie inside `bytes`.
    pub fn parse_complete(bytes: &[u8]) -> Result<GgufHeader> {
        Self::parse_with_len(bytes, Some(bytes.len() as u64))
    }

    /// Parses the header from `prefix`, the first bytes of a file whose total length is
    /// `file_len` when known.
    ///
    /// With a known length, a read past `file_len` is [`GgufError::Truncated`], a read past the
    /// prefix but inside the file is [`GgufError::NeedMoreBytes`], and every tensor must end
    /// within `file_len` ([`GgufError::TensorOutOfBounds`]). Bytes of `prefix` beyond `file_len`
    /// are ignored.
    pub fn parse_with_len(prefix: &[u8], file_len: Option<u64>) -> Result<GgufHeader> {
        let bytes = match file_len {
            Some(len) if (prefix.len() as u64) > len => &prefix[..len as usize],
            _ => prefix,
        };
        let mut r = Reader { bytes, pos: 0, file_len };

        let magic = r.array::<4>(|| "magic".into())?;
        if magic != GGUF_MAGIC {
            return Err(GgufError::BadMagic { found: magic });
        }
        let version = r.u32(|| "version".into())?;
        match version {
            2 | 3 => {}
            v if matches!(v.swap_bytes(), 2 | 3) => {
                return Err(GgufError::BigEndian { version: v.swap_bytes() });
            }
            v => return Err(GgufError::UnsupportedVersion(v)),
        }
        let n_tensors = r.u64(|| "tensor count".into())?;
        check_cap("tensor count", n_tensors, MAX_TENSORS)?;
        let n_kv = r.u64(|| "metadata count".into())?;
        check_cap("metadata count", n_kv, MAX_KV)?;

        let mut metadata = Metadata::default();
        for i in 0..n_kv {
            let key = r.string(MAX_NAME_LEN, || format!("key of metadata entry {i}"))?;
            let type_offset = r.pos;
            let type_id = r.u32(|| format!("value type of metadata key `{key}`"))?;
            let value = read_value(&mut r, &key, type_id, type_offset)?;
            metadata.insert(key, value)?;
        }

        // The alignment governs the data section, so validate it before the tensor infos.
        let alignment = match metadata.get(ALIGNMENT_KEY) {
            None => DEFAULT_ALIGNMENT,
            // llama.cpp reads it with gguf_get_val_u32 and gguf-py requires UINT32.
            Some(MetadataValue::U32(a)) => u64::from(*a),
            Some(other) => {
                return Err(GgufError::WrongType {
                    key: ALIGNMENT_KEY.into(),
                    expected: "u32",
                    found: other.type_name(),
                });
            }
        };
        if !alignment.is_power_of_two() {
            return Err(GgufError::BadAlignment(alignment));
        }

        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors.min(4096) as usize);
        let mut tensor_index = HashMap::with_capacity(tensors.capacity());
        for i in 0..n_tensors {
            let info = read_tensor_info(&mut r, i)?;
            if tensor_index.contains_key(&info.name) {
                return Err(GgufError::DuplicateTensor { tensor: info.name });
            }
            if !info.offset.is_multiple_of(alignment) {
                return Err(GgufError::Misaligned { tensor: info.name, offset: info.offset, alignment });
            }
            tensor_index.insert(info.name.clone(), tensors.len());
            tensors.push(info);
        }

        let header_len = r.pos;
        let data_offset = header_len.next_multiple_of(alignment);
        let data_len = check_layout(&tensors, data_offset, file_len)?;

        Ok(GgufHeader { version, metadata, tensors, tensor_index, alignment, header_len, data_offset, data_len })
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// All metadata, in file order.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Every tensor: name, block type, dimensions (ggml order), absolute offset and size.
    pub fn tensor_list(&self) -> Vec<TensorSummary<'_>> {
        let data = self.data_offset();
        self.tensors
            .iter()
            .map(|t| TensorSummary {
                name: &t.name,
                ggml_type: t.ggml_type.name(),
                dims: &t.dims,
                offset: data + t.offset,
                size: t.size_bytes,
            })
            .collect()
    }

    /// The tensor named `name`, if any.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// Alignment of the data section and of tensor offsets.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Bytes of the header proper (up to the end of the last tensor info, before padding).
    pub fn header_len(&self) -> u64 {
        self.header_len
    }

    /// Absolute offset of the tensor data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Sum of all tensors' byte sizes (what has to be downloaded after the header).
    pub fn tensor_bytes_total(&self) -> u64 {
        self.tensors.iter().map(|t| t.size_bytes).sum()
    }

    /// The exact number of file bytes needed to read every tensor: the data section offset plus
    /// the end of the furthest tensor, or just the header for a file without tensors.
    pub fn total_file_bytes(&self) -> u64 {
        if self.tensors.is_empty() { self.header_len } else { self.data_offset + self.data_len }
    }

    /// Absolute byte range of tensor `name` in the file (for an HTTP Range request).
    pub fn tensor_range(&self, name: &str) -> Result<Range<u64>> {
        let info = self.tensor(name).ok_or_else(|| GgufError::MissingTensor(name.into()))?;
        let rel = info.relative_range();
        Ok(self.data_offset + rel.start..self.data_offset + rel.end)
    }

    /// Phase 2: the data of tensor `name`, sliced from the whole `file`.
    pub fn tensor_bytes<'a>(&self, file: &'a [u8], name: &str) -> Result<&'a [u8]> {
        self.tensor_bytes_at(file, 0, name)
    }

    /// Phase 2 for ranged downloads: the data of tensor `name` from `buf`, which holds the file
    /// bytes starting at absolute offset `buf_offset`.
    pub fn tensor_bytes_at<'a>(&self, buf: &'a [u8], buf_offset: u64, name: &str) -> Result<&'a [u8]> {
        let range = self.tensor_range(name)?;
        let buf_end = buf_offset.saturating_add(buf.len() as u64);
        if range.start < buf_offset || range.end > buf_end {
            return Err(GgufError::TensorOutOfBounds { tensor: name.into(), end: range.end, file_len: buf_end });
        }
        // Both ends lie within `buf`, whose length is a usize, so the casts are lossless.
        let start = (range.start - buf_offset) as usize;
        let end = (range.end - buf_offset) as usize;
        Ok(&buf[start..end])
    }

    /// Decodes tensor `name` from the whole `file` to f32 (see [`super::dequantize`]).
    pub fn dequantize_tensor(&self, file: &[u8], name: &str) -> Result<Vec<f32>> {
        let bytes = self.tensor_bytes(file, name)?;
        let info = self.tensor(name).ok_or_else(|| GgufError::MissingTensor(name.into()))?;
        let n = usize::try_from(info.n_elements)
            .map_err(|_| GgufError::DimensionOverflow { tensor: name.into(), dims: info.dims.clone() })?;
        super::dequant::dequantize_to_vec(info.ggml_type, bytes, n)
    }

    /// `general.architecture` (e.g. `"llama"`, `"qwen2"`, `"gemma3"`).
    pub fn architecture(&self) -> Result<&str> {
        self.metadata.get_str("general.architecture")
    }

    /// See [`Metadata::get_u32`].
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.metadata.get_u32(key)
    }

    /// See [`Metadata::get_u64_like`].
    pub fn get_u64_like(&self, key: &str) -> Result<u64> {
        self.metadata.get_u64_like(key)
    }

    /// See [`Metadata::get_f32`].
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.metadata.get_f32(key)
    }

    /// See [`Metadata::get_bool`].
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        self.metadata.get_bool(key)
    }

    /// See [`Metadata::get_str`].
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.metadata.get_str(key)
    }

    /// See [`Metadata::get_str_array`].
    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        self.metadata.get_str_array(key)
    }

    /// See [`Metadata::get_f32_array`].
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        self.metadata.get_f32_array(key)
    }

    /// See [`Metadata::get_i32_array`].
    pub fn get_i32_array(&self, key: &str) -> Result<&[i32]> {
        self.metadata.get_i32_array(key)
    }
}

fn check_cap(what: &str, value: u64, cap: u64) -> Result<()> {
    if value > cap {
        return Err(GgufError::TooLarge { what: what.into(), value, cap });
    }
    Ok(())
}

/// Checks that no two tensors overlap and, with a known file length, that all lie inside the
/// file. Returns the end of the furthest tensor relative to the data section.
fn check_layout(tensors: &[TensorInfo], data_offset: u64, file_len: Option<u64>) -> Result<u64> {
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().collect();
    by_offset.sort_by_key(|t| (t.offset, t.size_bytes));
    // Sorted by start and without overlap so far, the previous tensor is the one reaching
    // furthest, so comparing neighbours finds any overlap.
    let mut prev: Option<&TensorInfo> = None;
    for t in by_offset {
        if let Some(p) = prev
            && t.offset < p.offset + p.size_bytes
        {
            return Err(GgufError::OverlappingTensors { a: p.name.clone(), b: t.name.clone() });
        }
        prev = Some(t);
    }
    let data_len = tensors.iter().map(|t| t.offset + t.size_bytes).max().unwrap_or(0);
    if let Some(len) = file_len {
        for t in tensors {
            // offset and size are each below 2^63 (checked on read), data_offset is below the
            // prefix length: no overflow.
            let end = data_offset + t.offset + t.size_bytes;
            if end > len {
                return Err(GgufError::TensorOutOfBounds { tensor: t.name.clone(), end, file_len: len });
            }
        }
    }
    Ok(data_len)
}

fn read_tensor_info(r: &mut Reader<'_>, index: u64) -> Result<TensorInfo> {
    let name = r.string(MAX_NAME_LEN, || format!("name of tensor {index}"))?;
    let n_dims = r.u32(|| format!("rank of tensor `{name}`"))?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(GgufError::BadRank { tensor: name, n_dims });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for axis in 0..n_dims as usize {
        let d = r.u64(|| format!("dimension {axis} of tensor `{name}`"))?;
        if d == 0 {
            return Err(GgufError::ZeroDimension { tensor: name, axis });
        }
        dims.push(d);
    }
    let type_id = r.u32(|| format!("type of tensor `{name}`"))?;
    let ggml_type =
        GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType { tensor: name.clone(), type_id })?;
    let offset = r.u64(|| format!("data offset of tensor `{name}`"))?;

    // ggml stores ne as int64_t: element count and byte size must fit in 63 bits
    // (llama.cpp gguf.cpp checks `INT64_MAX/ne[1] <= ne[0]` and friends).
    const LIMIT: u64 = i64::MAX as u64;
    let overflow = |name: String, dims: Vec<u64>| GgufError::DimensionOverflow { tensor: name, dims };
    let n_elements = match dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)) {
        Some(n) if n <= LIMIT => n,
        _ => return Err(overflow(name, dims)),
    };
    let block_size = ggml_type.block_size() as u64;
    if dims[0] % block_size != 0 {
        return Err(GgufError::RowNotBlockMultiple { tensor: name, ggml_type, ne0: dims[0], block_size });
    }
    let size_bytes = match ggml_type.byte_size(n_elements) {
        Some(s) if s <= LIMIT => s,
        _ => return Err(overflow(name, dims)),
    };
    if offset > LIMIT || offset + size_bytes > LIMIT {
        return Err(overflow(name, dims));
    }
    Ok(TensorInfo { name, dims, ggml_type, offset, size_bytes, n_elements })
}

/// Byte size of a fixed-size metadata value type, `None` for string (8), array (9) and unknown.
fn scalar_size(type_id: u32) -> Option<u64> {
    match type_id {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;

fn read_value(r: &mut Reader<'_>, key: &str, type_id: u32, type_offset: u64) -> Result<MetadataValue> {
    let offset = r.pos;
    let what = || format!("value of metadata key `{key}`");
    Ok(match type_id {
        0 => MetadataValue::U8(u8::from_le_bytes(r.array(what)?)),
        1 => MetadataValue::I8(i8::from_le_bytes(r.array(what)?)),
        2 => MetadataValue::U16(u16::from_le_bytes(r.array(what)?)),
        3 => MetadataValue::I16(i16::from_le_bytes(r.array(what)?)),
        4 => MetadataValue::U32(u32::from_le_bytes(r.array(what)?)),
        5 => MetadataValue::I32(i32::from_le_bytes(r.array(what)?)),
        6 => MetadataValue::F32(f32::from_le_bytes(r.array(what)?)),
        7 => MetadataValue::Bool(decode_bool(r.array::<1>(what)?[0], key, offset)?),
        TYPE_STRING => {
            MetadataValue::String(r.string(MAX_STRING_LEN, || format!("string value of metadata key `{key}`"))?)
        }
        TYPE_ARRAY => MetadataValue::Array(read_array(r, key, 1)?),
        10 => MetadataValue::U64(u64::from_le_bytes(r.array(what)?)),
        11 => MetadataValue::I64(i64::from_le_bytes(r.array(what)?)),
        12 => MetadataValue::F64(f64::from_le_bytes(r.array(what)?)),
        _ => {
            return Err(GgufError::UnknownValueType { key: key.into(), type_id, offset: type_offset });
        }
    })
}

/// GGUF bools are one byte; anything but 0/1 means the bytes are not what the writer meant, so
/// report it rather than guess.
fn decode_bool(byte: u8, key: &str, offset: u64) -> Result<bool> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(GgufError::InvalidBool { key: key.into(), offset, value }),
    }
}

fn read_array(r: &mut Reader<'_>, key: &str, depth: usize) -> Result<MetadataArray> {
    let type_offset = r.pos;
    let elem_type = r.u32(|| format!("element type of array `{key}`"))?;
    let len = r.u64(|| format!("length of array `{key}`"))?;
    check_cap(&format!("length of array `{key}`"), len, MAX_ARRAY_LEN)?;

    if let Some(size) = scalar_size(elem_type) {
        let offset = r.pos;
        // len <= 2^24 and size <= 8: no overflow. `take` checks the bytes exist before we
        // allocate, so a corrupt length cannot cause a large allocation.
        let b = r.take(len * size, || format!("values of array `{key}`"))?;
        return ScalarDecoder { key, offset, bytes: b }.decode(elem_type, len as usize);
    }
    // Each element needs at least 8 bytes (a string length) or 12 (nested array header), so the
    // bytes present bound the capacity even before the elements are read.
    let capacity = (len as usize).min(r.remaining() / 8);
    match elem_type {
        TYPE_STRING => {
            let mut out = Vec::with_capacity(capacity);
            for i in 0..len {
                out.push(r.string(MAX_STRING_LEN, || format!("element {i} of array `{key}`"))?);
            }
            Ok(MetadataArray::String(out))
        }
        TYPE_ARRAY => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(GgufError::NestingTooDeep { key: key.into(), cap: MAX_ARRAY_DEPTH });
            }
            let mut out = Vec::with_capacity(capacity);
            for _ in 0..len {
                out.push(read_array(r, key, depth + 1)?);
            }
            Ok(MetadataArray::Array(out))
        }
        _ => Err(GgufError::UnknownValueType { key: key.into(), type_id: elem_type, offset: type_offset }),
    }
}

/// Decodes `n` little-endian scalars of one GGUF value type from bytes already bounds-checked.
struct ScalarDecoder<'a, 'k> {
    key: &'k str,
    offset: u64,
    bytes: &'a [u8],
}

impl ScalarDecoder<'_, '_> {
    fn decode(&self, type_id: u32, n: usize) -> Result<MetadataArray> {
        macro_rules! le {
            ($t:ty, $variant:ident) => {
                MetadataArray::$variant(
                    self.bytes
                        .chunks_exact(size_of::<$t>())
                        .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size")))
                        .collect(),
                )
            };
        }
        debug_assert_eq!(Some(self.bytes.len() as u64), scalar_size(type_id).map(|s| s * n as u64));
        Ok(match type_id {
            0 => MetadataArray::U8(self.bytes.to_vec()),
            1 => le!(i8, I8),
            2 => le!(u16, U16),
            3 => le!(i16, I16),
            4 => le!(u32, U32),
            5 => le!(i32, I32),
            6 => le!(f32, F32),
            7 => MetadataArray::Bool(
                self.bytes
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| decode_bool(b, self.key, self.offset + i as u64))
                    .collect::<Result<_>>()?,
            ),
            10 => le!(u64, U64),
            11 => le!(i64, I64),
            12 => le!(f64, F64),
            // Callers only pass ids that have a scalar size.
            _ => {
                return Err(GgufError::UnknownValueType { key: self.key.into(), type_id, offset: self.offset });
            }
        })
    }
}

/// A bounds-checked little-endian reader over a file prefix.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: u64,
    /// Total file length when known; decides between `Truncated` and `NeedMoreBytes`.
    file_len: Option<u64>,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos as usize)
    }

    /// Takes `n` bytes, or explains why they are not there. `what` is only built on error.
    fn take(&mut self, n: u64, what: impl FnOnce() -> String) -> Result<&'a [u8]> {
        let start = self.pos;
        let end = start.checked_add(n);
        let have = self.bytes.len() as u64;
        match end {
            Some(end) if end <= have => {
                self.pos = end;
                // start <= end <= bytes.len(): lossless casts, in-bounds slice.
                Ok(&self.bytes[start as usize..end as usize])
            }
            _ => match self.file_len {
                Some(len) if end.is_none_or(|end| end > len) => Err(GgufError::Truncated {
                    what: what(),
                    offset: start,
                    needed: n,
                    available: len.saturating_sub(start),
                }),
                _ => Err(GgufError::NeedMoreBytes { needed_at_least: end.unwrap_or(u64::MAX) }),
            },
        }
    }

    fn array<const N: usize>(&mut self, what: impl FnOnce() -> String) -> Result<[u8; N]> {
        let b = self.take(N as u64, what)?;
        Ok(b.try_into().expect("take returned N bytes"))
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A length-prefixed UTF-8 string of at most `cap` bytes.
    fn string(&mut self, cap: u64, what: impl Fn() -> String) -> Result<String> {
        let len = self.u64(|| format!("length of {}", what()))?;
        if len > cap {
            return Err(GgufError::TooLarge { what: format!("length of {}", what()), value: len, cap });
        }
        let offset = self.pos;
        let b = self.take(len, &what)?;
        String::from_utf8(b.to_vec()).map_err(|_| GgufError::InvalidUtf8 { what: what(), offset })
    }
}
