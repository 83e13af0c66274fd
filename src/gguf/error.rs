//! The one error type of the GGUF layer.
//!
//! File bytes are hostile: every variant says *which* field, key or tensor was wrong and, where
//! it helps, the absolute byte offset in the file, so a bad download or a broken converter can be
//! diagnosed from the message alone.

use std::fmt;

use super::types::GgmlType;

/// Everything that can go wrong while reading a GGUF header or decoding its tensors.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GgufError {
    /// The bytes given are a prefix of the file that ends inside the header. Not a defect of the
    /// file: fetch at least `needed_at_least` bytes from the start of the file and parse again.
    NeedMoreBytes { needed_at_least: u64 },
    /// The complete file ends before `what` (at `offset`, `needed` bytes long) does.
    Truncated { what: String, offset: u64, needed: u64, available: u64 },
    /// The file does not start with `GGUF`.
    BadMagic { found: [u8; 4] },
    /// A GGUF version other than 2 or 3 (version 1 used 32-bit lengths and is long obsolete).
    UnsupportedVersion(u32),
    /// The version field reads as 2 or 3 only when byte-swapped: a big-endian GGUF file, which
    /// ggml writes for s390x and which this little-endian reader does not support.
    BigEndian { version: u32 },
    /// A count or length exceeds the sanity cap for `what`.
    TooLarge { what: String, value: u64, cap: u64 },
    /// A key, string value or tensor name is not UTF-8.
    InvalidUtf8 { what: String, offset: u64 },
    /// A metadata value type id outside 0..=12.
    UnknownValueType { key: String, type_id: u32, offset: u64 },
    /// Arrays nested deeper than the cap.
    NestingTooDeep { key: String, cap: usize },
    /// A bool metadata byte other than 0 or 1.
    InvalidBool { key: String, offset: u64, value: u8 },
    /// A tensor type id that ggml does not define (or has retired).
    UnknownTensorType { tensor: String, type_id: u32 },
    /// The same metadata key appears twice.
    DuplicateKey { key: String },
    /// The same tensor name appears twice.
    DuplicateTensor { tensor: String },
    /// A tensor with zero or more than four dimensions (`GGML_MAX_DIMS` is 4).
    BadRank { tensor: String, n_dims: u32 },
    /// A tensor dimension of zero (`axis` 0 is `ne[0]`, the innermost).
    ZeroDimension { tensor: String, axis: usize },
    /// The element count or byte size of a tensor does not fit in 63 bits.
    DimensionOverflow { tensor: String, dims: Vec<u64> },
    /// A quantised tensor whose rows (`ne[0]`) are not a whole number of blocks.
    RowNotBlockMultiple { tensor: String, ggml_type: GgmlType, ne0: u64, block_size: u64 },
    /// A tensor offset (relative to the data section) that is not a multiple of the alignment.
    Misaligned { tensor: String, offset: u64, alignment: u64 },
    /// Two tensors whose byte ranges intersect.
    OverlappingTensors { a: String, b: String },
    /// A tensor whose data ends (absolute offset `end`) past the end of the file or buffer.
    TensorOutOfBounds { tensor: String, end: u64, file_len: u64 },
    /// `general.alignment` is zero or not a power of two.
    BadAlignment(u64),
    /// A required metadata key is absent.
    MissingKey(String),
    /// A metadata key holds a different type than the caller asked for.
    WrongType { key: String, expected: &'static str, found: &'static str },
    /// An integer metadata value does not fit the requested type.
    ValueOutOfRange { key: String, value: String, target: &'static str },
    /// No tensor of that name in the header.
    MissingTensor(String),
    /// A tensor type this crate can size but not decode.
    UnsupportedBlockFormat(GgmlType),
    /// A buffer handed to a decoder has the wrong length.
    SizeMismatch { what: String, expected: u64, found: u64 },
}

/// Shorthand used throughout the GGUF layer.
pub type Result<T, E = GgufError> = std::result::Result<T, E>;

/// Declares, from one table, [`GgufError::kind`] (a short code for logs), [`GgufError::code`]
/// (the code JS sees: `GGUF_` and the kind in capitals) and [`GgufError::CODES`].
macro_rules! kinds_and_codes {
    ($($variant:ident $pattern:tt => $kind:literal, $code:literal;)*) => {
        /// A short, stable, machine-readable code for the variant (for logs, metrics and the JS
        /// error mapping), e.g. `"truncated"` or `"bad_magic"`.
        pub fn kind(&self) -> &'static str {
            match self {
                $(GgufError::$variant $pattern => $kind,)*
            }
        }

        /// The code JS sees (`error.code` of a `ModelFormatError`): `GGUF_` and
        /// [`GgufError::kind`] in capitals, e.g. `"GGUF_BAD_MAGIC"`. One of [`GgufError::CODES`].
        pub fn code(&self) -> &'static str {
            match self {
                $(GgufError::$variant $pattern => $code,)*
            }
        }

        /// Every [`GgufError::code`].
        pub const CODES: &'static [&'static str] = &[$($code,)*];
    };
}

impl GgufError {
    kinds_and_codes! {
        NeedMoreBytes { .. } => "need_more_bytes", "GGUF_NEED_MORE_BYTES";
        Truncated { .. } => "truncated", "GGUF_TRUNCATED";
        BadMagic { .. } => "bad_magic", "GGUF_BAD_MAGIC";
        UnsupportedVersion(_) => "unsupported_version", "GGUF_UNSUPPORTED_VERSION";
        BigEndian { .. } => "big_endian", "GGUF_BIG_ENDIAN";
        TooLarge { .. } => "too_large", "GGUF_TOO_LARGE";
        InvalidUtf8 { .. } => "invalid_utf8", "GGUF_INVALID_UTF8";
        UnknownValueType { .. } => "unknown_value_type", "GGUF_UNKNOWN_VALUE_TYPE";
        NestingTooDeep { .. } => "nesting_too_deep", "GGUF_NESTING_TOO_DEEP";
        InvalidBool { .. } => "invalid_bool", "GGUF_INVALID_BOOL";
        UnknownTensorType { .. } => "unknown_tensor_type", "GGUF_UNKNOWN_TENSOR_TYPE";
        DuplicateKey { .. } => "duplicate_key", "GGUF_DUPLICATE_KEY";
        DuplicateTensor { .. } => "duplicate_tensor", "GGUF_DUPLICATE_TENSOR";
        BadRank { .. } => "bad_rank", "GGUF_BAD_RANK";
        ZeroDimension { .. } => "zero_dimension", "GGUF_ZERO_DIMENSION";
        DimensionOverflow { .. } => "dimension_overflow", "GGUF_DIMENSION_OVERFLOW";
        RowNotBlockMultiple { .. } => "row_not_block_multiple", "GGUF_ROW_NOT_BLOCK_MULTIPLE";
        Misaligned { .. } => "misaligned", "GGUF_MISALIGNED";
        OverlappingTensors { .. } => "overlapping_tensors", "GGUF_OVERLAPPING_TENSORS";
        TensorOutOfBounds { .. } => "tensor_out_of_bounds", "GGUF_TENSOR_OUT_OF_BOUNDS";
        BadAlignment(_) => "bad_alignment", "GGUF_BAD_ALIGNMENT";
        MissingKey(_) => "missing_key", "GGUF_MISSING_KEY";
        WrongType { .. } => "wrong_type", "GGUF_WRONG_TYPE";
        ValueOutOfRange { .. } => "value_out_of_range", "GGUF_VALUE_OUT_OF_RANGE";
        MissingTensor(_) => "missing_tensor", "GGUF_MISSING_TENSOR";
        UnsupportedBlockFormat(_) => "unsupported_block_format", "GGUF_UNSUPPORTED_BLOCK_FORMAT";
        SizeMismatch { .. } => "size_mismatch", "GGUF_SIZE_MISMATCH";
    }

    /// True when the input was only a prefix of the file and parsing can succeed with more bytes.
    pub fn is_need_more_bytes(&self) -> bool {
        matches!(self, GgufError::NeedMoreBytes { .. })
    }
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GgufError::*;
        match self {
            NeedMoreBytes { needed_at_least } => {
                write!(f, "GGUF header continues past the bytes given; fetch at least {needed_at_least} bytes")
            }
            Truncated { what, offset, needed, available } => write!(
                f,
                "GGUF file truncated: {what} at offset {offset} needs {needed} bytes, \
                 only {available} left"
            ),
            BadMagic { found } => write!(
                f,
                "not a GGUF file: magic is {found:02x?} ({:?}), expected \"GGUF\"",
                String::from_utf8_lossy(found)
            ),
            UnsupportedVersion(v) => {
                write!(f, "unsupported GGUF version {v} (supported: 2 and 3)")
            }
            BigEndian { version } => write!(
                f,
                "big-endian GGUF file (version {version} byte-swapped); only little-endian \
                 files are supported"
            ),
            TooLarge { what, value, cap } => {
                write!(f, "{what} is {value}, above the limit of {cap}")
            }
            InvalidUtf8 { what, offset } => write!(f, "{what} at offset {offset} is not UTF-8"),
            UnknownValueType { key, type_id, offset } => {
                write!(f, "metadata key `{key}` has unknown value type {type_id} at offset {offset}")
            }
            NestingTooDeep { key, cap } => {
                write!(f, "metadata key `{key}` nests arrays deeper than {cap} levels")
            }
            InvalidBool { key, offset, value } => {
                write!(f, "metadata key `{key}` has bool byte {value} at offset {offset} (expected 0 or 1)")
            }
            UnknownTensorType { tensor, type_id } => {
                write!(f, "tensor `{tensor}` has unknown ggml type id {type_id}")
            }
            DuplicateKey { key } => write!(f, "duplicate metadata key `{key}`"),
            DuplicateTensor { tensor } => write!(f, "duplicate tensor name `{tensor}`"),
            BadRank { tensor, n_dims } => {
                write!(f, "tensor `{tensor}` has {n_dims} dimensions (expected 1 to 4)")
            }
            ZeroDimension { tensor, axis } => {
                write!(f, "tensor `{tensor}` has size 0 along dimension {axis}")
            }
            DimensionOverflow { tensor, dims } => {
                write!(f, "tensor `{tensor}` with dimensions {dims:?} is too large to address")
            }
            RowNotBlockMultiple { tensor, ggml_type, ne0, block_size } => write!(
                f,
                "tensor `{tensor}` of type {ggml_type} has rows of {ne0} elements, \
                 not a multiple of the block size {block_size}"
            ),
            Misaligned { tensor, offset, alignment } => {
                write!(f, "tensor `{tensor}` data offset {offset} is not a multiple of the alignment {alignment}")
            }
            OverlappingTensors { a, b } => write!(f, "tensors `{a}` and `{b}` overlap"),
            TensorOutOfBounds { tensor, end, file_len } => {
                write!(f, "tensor `{tensor}` data ends at byte {end}, past the end of the data ({file_len} bytes)")
            }
            BadAlignment(a) => {
                write!(f, "general.alignment is {a}; it must be a non-zero power of two")
            }
            MissingKey(key) => write!(f, "required metadata key `{key}` is missing"),
            WrongType { key, expected, found } => {
                write!(f, "metadata key `{key}` is {found}, expected {expected}")
            }
            ValueOutOfRange { key, value, target } => {
                write!(f, "metadata key `{key}` value {value} does not fit in {target}")
            }
            MissingTensor(name) => write!(f, "no tensor named `{name}`"),
            UnsupportedBlockFormat(ty) => {
                write!(f, "decoding ggml type {ty} to f32 is not supported")
            }
            SizeMismatch { what, expected, found } => {
                write!(f, "{what}: expected {expected}, found {found}")
            }
        }
    }
}

impl std::error::Error for GgufError {}

/// A broken container is a `ModelFormatError` coded `GGUF_` and the variant; the message names
/// the field or tensor.
impl crate::error::Coded for GgufError {
    fn code(&self) -> crate::error::ErrorCode {
        crate::error::ErrorCode::Gguf(GgufError::code(self))
    }

    fn message(&self) -> String {
        format!("Not a valid GGUF model file: {self}.")
    }
}
