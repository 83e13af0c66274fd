//! GGUF metadata values and the typed getters the model code uses.
//!
//! Arrays are stored as typed vectors ([`MetadataArray`]) rather than a `Vec` of boxed values:
//! a tokenizer vocabulary is hundreds of thousands of entries, and a `Vec<f32>` or `Vec<String>`
//! is what the tokenizer wants anyway.

use std::collections::HashMap;

use super::error::{GgufError, Result};

/// A scalar or array metadata value, one variant per GGUF value type (`gguf_type`).
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(MetadataArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A homogeneous metadata array. Arrays of arrays may mix element types between the inner arrays.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<MetadataArray>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl MetadataValue {
    /// The GGUF name of the value's type, as used in error messages (`"u32"`, `"array[string]"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            MetadataValue::U8(_) => "u8",
            MetadataValue::I8(_) => "i8",
            MetadataValue::U16(_) => "u16",
            MetadataValue::I16(_) => "i16",
            MetadataValue::U32(_) => "u32",
            MetadataValue::I32(_) => "i32",
            MetadataValue::F32(_) => "f32",
            MetadataValue::Bool(_) => "bool",
            MetadataValue::String(_) => "string",
            MetadataValue::Array(a) => a.type_name(),
            MetadataValue::U64(_) => "u64",
            MetadataValue::I64(_) => "i64",
            MetadataValue::F64(_) => "f64",
        }
    }

    /// The value as an `i128` if it is any integer type (bools are not integers here).
    fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            MetadataValue::U8(v) => v.into(),
            MetadataValue::I8(v) => v.into(),
            MetadataValue::U16(v) => v.into(),
            MetadataValue::I16(v) => v.into(),
            MetadataValue::U32(v) => v.into(),
            MetadataValue::I32(v) => v.into(),
            MetadataValue::U64(v) => v.into(),
            MetadataValue::I64(v) => v.into(),
            _ => return None,
        })
    }
}

impl MetadataArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            MetadataArray::U8(v) => v.len(),
            MetadataArray::I8(v) => v.len(),
            MetadataArray::U16(v) => v.len(),
            MetadataArray::I16(v) => v.len(),
            MetadataArray::U32(v) => v.len(),
            MetadataArray::I32(v) => v.len(),
            MetadataArray::F32(v) => v.len(),
            MetadataArray::Bool(v) => v.len(),
            MetadataArray::String(v) => v.len(),
            MetadataArray::Array(v) => v.len(),
            MetadataArray::U64(v) => v.len(),
            MetadataArray::I64(v) => v.len(),
            MetadataArray::F64(v) => v.len(),
        }
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The GGUF name of the array's type (`"array[f32]"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            MetadataArray::U8(_) => "array[u8]",
            MetadataArray::I8(_) => "array[i8]",
            MetadataArray::U16(_) => "array[u16]",
            MetadataArray::I16(_) => "array[i16]",
            MetadataArray::U32(_) => "array[u32]",
            MetadataArray::I32(_) => "array[i32]",
            MetadataArray::F32(_) => "array[f32]",
            MetadataArray::Bool(_) => "array[bool]",
            MetadataArray::String(_) => "array[string]",
            MetadataArray::Array(_) => "array[array]",
            MetadataArray::U64(_) => "array[u64]",
            MetadataArray::I64(_) => "array[i64]",
            MetadataArray::F64(_) => "array[f64]",
        }
    }
}

/// The key/value section of a GGUF file, in file order, with lookup by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, MetadataValue)>,
    index: HashMap<String, usize>,
}

impl Metadata {
    /// Appends an entry; a key that is already present is a [`GgufError::DuplicateKey`].
    pub(crate) fn insert(&mut self, key: String, value: MetadataValue) -> Result<()> {
        if self.index.contains_key(&key) {
            return Err(GgufError::DuplicateKey { key });
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
        Ok(())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// All entries in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetadataValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn require(&self, key: &str) -> Result<&MetadataValue> {
        self.get(key).ok_or_else(|| GgufError::MissingKey(key.to_owned()))
    }

    fn wrong(key: &str, expected: &'static str, found: &MetadataValue) -> GgufError {
        GgufError::WrongType { key: key.to_owned(), expected, found: found.type_name() }
    }

    /// Any integer value that fits in a `u32` (converters disagree on u32 vs u64 for counts).
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        let value = self.require(key)?;
        let int = value.as_integer().ok_or_else(|| Self::wrong(key, "an integer", value))?;
        u32::try_from(int).map_err(|_| GgufError::ValueOutOfRange {
            key: key.to_owned(),
            value: int.to_string(),
            target: "u32",
        })
    }

    /// Any non-negative integer value, widened to `u64`.
    pub fn get_u64_like(&self, key: &str) -> Result<u64> {
        let value = self.require(key)?;
        let int = value.as_integer().ok_or_else(|| Self::wrong(key, "an integer", value))?;
        u64::try_from(int).map_err(|_| GgufError::ValueOutOfRange {
            key: key.to_owned(),
            value: int.to_string(),
            target: "u64",
        })
    }

    /// An `f32` value (no silent narrowing from `f64`).
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        match self.require(key)? {
            MetadataValue::F32(v) => Ok(*v),
            other => Err(Self::wrong(key, "f32", other)),
        }
    }

    /// A `bool` value.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        match self.require(key)? {
            MetadataValue::Bool(v) => Ok(*v),
            other => Err(Self::wrong(key, "bool", other)),
        }
    }

    /// A string value.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        match self.require(key)? {
            MetadataValue::String(v) => Ok(v),
            other => Err(Self::wrong(key, "string", other)),
        }
    }

    /// Any array value.
    pub fn get_array(&self, key: &str) -> Result<&MetadataArray> {
        match self.require(key)? {
            MetadataValue::Array(a) => Ok(a),
            other => Err(Self::wrong(key, "an array", other)),
        }
    }

    /// An array of strings (e.g. `tokenizer.ggml.tokens`).
    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        match self.require(key)? {
            MetadataValue::Array(MetadataArray::String(v)) => Ok(v),
            other => Err(Self::wrong(key, "array[string]", other)),
        }
    }

    /// An array of `f32` (e.g. `tokenizer.ggml.scores`).
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        match self.require(key)? {
            MetadataValue::Array(MetadataArray::F32(v)) => Ok(v),
            other => Err(Self::wrong(key, "array[f32]", other)),
        }
    }

    /// An array of `i32` (e.g. `tokenizer.ggml.token_type`).
    pub fn get_i32_array(&self, key: &str) -> Result<&[i32]> {
        match self.require(key)? {
            MetadataValue::Array(MetadataArray::I32(v)) => Ok(v),
            other => Err(Self::wrong(key, "array[i32]", other)),
        }
    }
}

/// The largest integer a JS number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A 64-bit integer as a plain number when a JS number holds it exactly, else as a 64-bit
/// integer (a BigInt, for a serializer that makes them).
fn serialize_wide<S: serde::Serializer>(
    as_f64: f64,
    wide: impl FnOnce(S) -> Result<S::Ok, S::Error>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    if as_f64.abs() <= MAX_SAFE_INTEGER { s.serialize_f64(as_f64) } else { wide(s) }
}

/// A value as an app reads it: numbers, booleans, strings and (nested) arrays; 64-bit integers
/// beyond 2^53 stay 64-bit integers.
impl serde::Serialize for MetadataValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            MetadataValue::U8(v) => s.serialize_u8(*v),
            MetadataValue::I8(v) => s.serialize_i8(*v),
            MetadataValue::U16(v) => s.serialize_u16(*v),
            MetadataValue::I16(v) => s.serialize_i16(*v),
            MetadataValue::U32(v) => s.serialize_u32(*v),
            MetadataValue::I32(v) => s.serialize_i32(*v),
            MetadataValue::F32(v) => s.serialize_f32(*v),
            MetadataValue::Bool(v) => s.serialize_bool(*v),
            MetadataValue::String(v) => s.serialize_str(v),
            MetadataValue::Array(a) => a.serialize(s),
            MetadataValue::U64(v) => serialize_wide(*v as f64, |s: S| s.serialize_u64(*v), s),
            MetadataValue::I64(v) => serialize_wide(*v as f64, |s: S| s.serialize_i64(*v), s),
            MetadataValue::F64(v) => s.serialize_f64(*v),
        }
    }
}

impl serde::Serialize for MetadataArray {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        /// One element, serialized as the scalar value of its type.
        fn each<S: serde::Serializer, T: Clone>(
            s: S,
            items: &[T],
            f: impl Fn(T) -> MetadataValue,
        ) -> std::result::Result<S::Ok, S::Error> {
            s.collect_seq(items.iter().cloned().map(f))
        }
        match self {
            MetadataArray::U8(v) => each(s, v, MetadataValue::U8),
            MetadataArray::I8(v) => each(s, v, MetadataValue::I8),
            MetadataArray::U16(v) => each(s, v, MetadataValue::U16),
            MetadataArray::I16(v) => each(s, v, MetadataValue::I16),
            MetadataArray::U32(v) => each(s, v, MetadataValue::U32),
            MetadataArray::I32(v) => each(s, v, MetadataValue::I32),
            MetadataArray::F32(v) => each(s, v, MetadataValue::F32),
            MetadataArray::Bool(v) => each(s, v, MetadataValue::Bool),
            MetadataArray::String(v) => s.collect_seq(v),
            MetadataArray::Array(v) => s.collect_seq(v),
            MetadataArray::U64(v) => each(s, v, MetadataValue::U64),
            MetadataArray::I64(v) => each(s, v, MetadataValue::I64),
            MetadataArray::F64(v) => each(s, v, MetadataValue::F64),
        }
    }
}
