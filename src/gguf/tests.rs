//! Unit tests: hand-made GGUF headers (valid and corrupt) and hand-computed quantised blocks.
//!
//! Every corrupt input must be rejected with the specific error variant, never a panic.

use super::*;

// ---------------------------------------------------------------------------------------------
// Hand-made headers come from the shared writer in `corpus.rs`.

use super::corpus::{
    Builder, T_ARRAY, T_BOOL, T_F32, T_F64, T_I8, T_I16, T_I32, T_I64, T_STRING, T_U8, T_U16, T_U32, T_U64,
    array_header, gguf_str, sample,
};

/// Asserts that the complete file is rejected with an error matching `$pat`, and that prefix
/// parsing of the same bytes does not panic.
macro_rules! assert_rejects {
    ($bytes:expr, $pat:pat $(if $guard:expr)?) => {{
        let bytes: Vec<u8> = $bytes;
        let result = GgufHeader::parse_complete(&bytes);
        match &result {
            Err(e) if matches!(e, $pat $(if $guard)?) => {
                assert!(!e.to_string().is_empty());
                assert!(!e.kind().is_empty());
                assert_eq!(e.code(), format!("GGUF_{}", e.kind().to_ascii_uppercase()));
                assert!(GgufError::CODES.contains(&e.code()));
            }
            other => panic!("expected {}, got {other:?}", stringify!($pat)),
        }
        let _ = GgufHeader::parse(&bytes);
        result.unwrap_err()
    }};
}

// ---------------------------------------------------------------------------------------------
// Valid headers.

#[test]
fn accepts_valid_v3_and_computes_layout() {
    let b = sample();
    let bytes = b.build();
    let h = GgufHeader::parse_complete(&bytes).expect("valid");
    assert_eq!(h.version(), 3);
    assert_eq!(h.architecture().unwrap(), "llama");
    assert_eq!(h.get_u32("llama.context_length").unwrap(), 2048);
    assert_eq!(h.header_len(), b.header().len() as u64);
    assert_eq!(h.data_offset(), h.header_len().next_multiple_of(32));
    assert_eq!(h.alignment(), 32);

    let a = h.tensor("a").unwrap();
    assert_eq!((a.ggml_type, a.n_elements, a.size_bytes), (GgmlType::F32, 8, 32));
    let t = h.tensor("b").unwrap();
    assert_eq!(t.dims, vec![256, 2]);
    assert_eq!((t.ggml_type, t.n_elements, t.size_bytes), (GgmlType::Q4_K, 512, 288));
    assert_eq!(h.tensor_range("b").unwrap(), h.data_offset() + 32..h.data_offset() + 320);
    assert_eq!(h.tensor_bytes_total(), 320);
    assert_eq!(h.total_file_bytes(), bytes.len() as u64);
    assert_eq!(h.tensors().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert!(h.tensor("c").is_none());
}

#[test]
fn accepts_valid_v2() {
    let bytes = sample().version(2).build();
    let h = GgufHeader::parse_complete(&bytes).expect("valid v2");
    assert_eq!(h.version(), 2);
    assert_eq!(h.tensors().len(), 2);
}

#[test]
fn accepts_empty_file_header() {
    let bytes = Builder::new().build();
    let h = GgufHeader::parse_complete(&bytes).unwrap();
    assert!(h.metadata().is_empty() && h.tensors().is_empty());
    assert_eq!(h.total_file_bytes(), 24);
    assert_eq!(h.header_len(), 24);
}

#[test]
fn reads_every_value_type() {
    let mut nested = array_header(T_ARRAY, 2);
    nested.extend(array_header(T_U8, 2));
    nested.extend([7, 8]);
    nested.extend(array_header(T_STRING, 1));
    nested.extend(gguf_str(b"x"));
    let mut strs = array_header(T_STRING, 2);
    strs.extend(gguf_str(b"hello"));
    strs.extend(gguf_str("wörld".as_bytes()));
    let mut f32s = array_header(T_F32, 2);
    f32s.extend(1.5f32.to_le_bytes());
    f32s.extend((-2.0f32).to_le_bytes());
    let mut i32s = array_header(T_I32, 3);
    for v in [1i32, -1, 3] {
        i32s.extend(v.to_le_bytes());
    }
    let mut bools = array_header(T_BOOL, 2);
    bools.extend([1, 0]);

    let bytes = Builder::new()
        .kv("u8", T_U8, &[200])
        .kv("i8", T_I8, &[0xff])
        .kv("u16", T_U16, &60000u16.to_le_bytes())
        .kv("i16", T_I16, &(-300i16).to_le_bytes())
        .kv("u32", T_U32, &4_000_000_000u32.to_le_bytes())
        .kv("i32", T_I32, &(-5i32).to_le_bytes())
        .kv("f32", T_F32, &0.25f32.to_le_bytes())
        .kv("bool", T_BOOL, &[1])
        .kv("string", T_STRING, &gguf_str(b"abc"))
        .kv("u64", T_U64, &(1u64 << 40).to_le_bytes())
        .kv("i64", T_I64, &(-7i64).to_le_bytes())
        .kv("f64", T_F64, &0.5f64.to_le_bytes())
        .kv("strs", T_ARRAY, &strs)
        .kv("f32s", T_ARRAY, &f32s)
        .kv("i32s", T_ARRAY, &i32s)
        .kv("bools", T_ARRAY, &bools)
        .kv("nested", T_ARRAY, &nested)
        .build();
    let h = GgufHeader::parse_complete(&bytes).unwrap();
    let m = h.metadata();
    assert_eq!(m.len(), 17);
    assert_eq!(m.get("u8"), Some(&MetadataValue::U8(200)));
    assert_eq!(m.get("i8"), Some(&MetadataValue::I8(-1)));
    assert_eq!(m.get("u16"), Some(&MetadataValue::U16(60000)));
    assert_eq!(m.get("i16"), Some(&MetadataValue::I16(-300)));
    assert_eq!(m.get("i32"), Some(&MetadataValue::I32(-5)));
    assert_eq!(m.get("i64"), Some(&MetadataValue::I64(-7)));
    assert_eq!(m.get("f64"), Some(&MetadataValue::F64(0.5)));
    assert_eq!(h.get_u32("u32").unwrap(), 4_000_000_000);
    assert_eq!(h.get_f32("f32").unwrap(), 0.25);
    assert!(h.get_bool("bool").unwrap());
    assert_eq!(h.get_str("string").unwrap(), "abc");
    assert_eq!(h.get_u64_like("u64").unwrap(), 1 << 40);
    assert_eq!(h.get_u64_like("u8").unwrap(), 200);
    assert_eq!(h.get_str_array("strs").unwrap(), ["hello", "wörld"]);
    assert_eq!(h.get_f32_array("f32s").unwrap(), [1.5, -2.0]);
    assert_eq!(h.get_i32_array("i32s").unwrap(), [1, -1, 3]);
    assert_eq!(m.get_array("bools").unwrap(), &MetadataArray::Bool(vec![true, false]));
    assert_eq!(
        m.get_array("nested").unwrap(),
        &MetadataArray::Array(vec![MetadataArray::U8(vec![7, 8]), MetadataArray::String(vec!["x".into()])])
    );
    // File order is kept.
    assert_eq!(m.iter().next().map(|(k, _)| k), Some("u8"));
}

#[test]
fn getters_name_the_key_in_errors() {
    let bytes = Builder::new()
        .kv_str("s", "x")
        .kv("neg", T_I32, &(-1i32).to_le_bytes())
        .kv("big", T_U64, &(u64::from(u32::MAX) + 1).to_le_bytes())
        .build();
    let h = GgufHeader::parse_complete(&bytes).unwrap();
    assert_eq!(h.get_u32("nope"), Err(GgufError::MissingKey("nope".into())));
    assert!(h.get_u32("nope").unwrap_err().to_string().contains("`nope`"));
    assert_eq!(h.get_u32("s"), Err(GgufError::WrongType { key: "s".into(), expected: "an integer", found: "string" }));
    assert!(matches!(h.get_u32("big"), Err(GgufError::ValueOutOfRange { key, .. }) if key == "big"));
    assert!(matches!(h.get_u64_like("neg"), Err(GgufError::ValueOutOfRange { .. })));
    assert!(matches!(h.get_f32_array("s"), Err(GgufError::WrongType { found: "string", .. })));
    assert!(matches!(h.architecture(), Err(GgufError::MissingKey(k)) if k == "general.architecture"));
}

#[test]
fn respects_custom_alignment() {
    let bytes = Builder::new()
        .alignment(64)
        .tensor("a", &[4], GgmlType::F32, 0)
        .tensor("b", &[4], GgmlType::F32, 64)
        .data(80)
        .build();
    let h = GgufHeader::parse_complete(&bytes).unwrap();
    assert_eq!(h.alignment(), 64);
    assert_eq!(h.data_offset() % 64, 0);
    assert_eq!(h.total_file_bytes(), h.data_offset() + 80);
}

#[test]
fn tensor_bytes_slices_whole_file_and_ranged_buffers() {
    let bytes = sample().build();
    let h = GgufHeader::parse_complete(&bytes).unwrap();
    let range = h.tensor_range("b").unwrap();
    let (s, e) = (range.start as usize, range.end as usize);
    assert_eq!(h.tensor_bytes(&bytes, "b").unwrap(), &bytes[s..e]);
    // A ranged download holding exactly the tensor.
    assert_eq!(h.tensor_bytes_at(&bytes[s..e], range.start, "b").unwrap(), &bytes[s..e]);
    // A buffer that starts too late or ends too early.
    assert!(matches!(
        h.tensor_bytes_at(&bytes[s + 1..e], range.start + 1, "b"),
        Err(GgufError::TensorOutOfBounds { .. })
    ));
    assert!(matches!(
        h.tensor_bytes(&bytes[..e - 1], "b"),
        Err(GgufError::TensorOutOfBounds { end, .. }) if end == range.end
    ));
    assert_eq!(h.tensor_bytes(&bytes, "zzz"), Err(GgufError::MissingTensor("zzz".into())));
    // F32 tensor "a" decodes to its raw bytes.
    let a = h.dequantize_tensor(&bytes, "a").unwrap();
    let raw = h.tensor_bytes(&bytes, "a").unwrap();
    assert_eq!(a[0].to_le_bytes(), raw[..4]);
}

// ---------------------------------------------------------------------------------------------
// Prefix parsing: NeedMoreBytes versus Truncated.

#[test]
fn every_short_prefix_needs_more_bytes() {
    let b = sample();
    let header_len = b.header().len();
    let bytes = b.build();
    for n in 0..header_len {
        match GgufHeader::parse(&bytes[..n]) {
            Err(GgufError::NeedMoreBytes { needed_at_least }) => {
                assert!(needed_at_least > n as u64, "prefix {n}: asked for {needed_at_least}");
                assert!(needed_at_least <= header_len as u64, "prefix {n}: overshoot");
            }
            other => panic!("prefix of {n} bytes: {other:?}"),
        }
        // The same prefix with the true file length known is still just incomplete.
        assert!(matches!(
            GgufHeader::parse_with_len(&bytes[..n], Some(bytes.len() as u64)),
            Err(GgufError::NeedMoreBytes { .. })
        ));
    }
    // The header alone (no tensor data) is enough for phase 1.
    let h = GgufHeader::parse(&bytes[..header_len]).unwrap();
    assert_eq!(h.total_file_bytes(), bytes.len() as u64);
    assert_eq!(h, GgufHeader::parse_complete(&bytes).unwrap());
}

#[test]
fn every_truncation_of_a_complete_file_is_truncated() {
    let b = sample();
    let header_len = b.header().len();
    let bytes = b.build();
    for n in 0..header_len {
        assert_rejects!(bytes[..n].to_vec(), GgufError::Truncated { .. });
    }
    // Cut inside the tensor data: the header is whole but a tensor is out of bounds.
    for n in header_len..bytes.len() {
        assert_rejects!(bytes[..n].to_vec(), GgufError::TensorOutOfBounds { .. });
    }
}

#[test]
fn truncated_error_names_the_field_and_offset() {
    let bytes = Builder::new().kv_str("general.name", "hello").build();
    let err = assert_rejects!(bytes[..bytes.len() - 2].to_vec(), GgufError::Truncated { .. });
    let GgufError::Truncated { what, offset, needed, available } = err else { unreachable!() };
    assert!(what.contains("general.name"), "{what}");
    assert_eq!((offset, needed, available), (bytes.len() as u64 - 5, 5, 3));
}

#[test]
fn known_length_shorter_than_header_is_truncated() {
    let bytes = sample().build();
    // The caller says the file is 30 bytes long; the prefix has more than that.
    assert!(matches!(GgufHeader::parse_with_len(&bytes, Some(30)), Err(GgufError::Truncated { .. })));
}

// ---------------------------------------------------------------------------------------------
// Corrupt inputs.

#[test]
fn rejects_bad_magic() {
    let b = sample().magic(*b"GGML");
    assert_rejects!(b.build(), GgufError::BadMagic { found } if found == b"GGML");
}

#[test]
fn rejects_empty_input() {
    assert_rejects!(Vec::new(), GgufError::Truncated { offset: 0, .. });
}

#[test]
fn rejects_version_1() {
    assert_rejects!(sample().version(1).build(), GgufError::UnsupportedVersion(1));
}

#[test]
fn rejects_unknown_versions() {
    assert_rejects!(sample().version(0).build(), GgufError::UnsupportedVersion(0));
    assert_rejects!(sample().version(4).build(), GgufError::UnsupportedVersion(4));
}

#[test]
fn rejects_big_endian() {
    let bytes = sample().version(3u32.swap_bytes()).build();
    assert_rejects!(bytes, GgufError::BigEndian { version: 3 });
}

#[test]
fn rejects_absurd_tensor_count() {
    let bytes = Builder::new().counts(MAX_TENSORS + 1, 0).build();
    assert_rejects!(bytes, GgufError::TooLarge { value, .. } if *value == MAX_TENSORS + 1);
    let bytes = Builder::new().counts(u64::MAX, 0).build();
    assert_rejects!(bytes, GgufError::TooLarge { .. });
}

#[test]
fn rejects_absurd_kv_count() {
    let bytes = Builder::new().counts(0, u64::MAX).build();
    assert_rejects!(bytes, GgufError::TooLarge { what, .. } if what.contains("metadata"));
}

#[test]
fn rejects_counts_larger_than_the_file() {
    let bytes = Builder::new().kv_u32("a", 1).kv_u32("b", 2).counts(0, 1000).build();
    assert_rejects!(bytes, GgufError::Truncated { what, .. } if what.contains("entry 2"));
    let bytes = sample().data(0).counts(3, 2).build();
    assert_rejects!(bytes, GgufError::Truncated { what, .. } if what.contains("tensor 2"));
}

#[test]
fn rejects_absurd_key_length() {
    let mut bytes = Builder::new().counts(0, 1).build();
    bytes.extend(u64::MAX.to_le_bytes());
    assert_rejects!(bytes, GgufError::TooLarge { .. });
}

#[test]
fn rejects_absurd_string_length() {
    let mut value = (MAX_STRING_LEN + 1).to_le_bytes().to_vec();
    value.extend(b"abc");
    let bytes = Builder::new().kv("k", T_STRING, &value).build();
    assert_rejects!(bytes, GgufError::TooLarge { what, .. } if what.contains("`k`"));
}

#[test]
fn rejects_string_past_end_of_file() {
    let mut value = 1000u64.to_le_bytes().to_vec();
    value.extend(b"abc");
    let bytes = Builder::new().kv("k", T_STRING, &value).build();
    assert_rejects!(bytes, GgufError::Truncated { needed: 1000, available: 3, .. });
}

#[test]
fn rejects_absurd_array_length() {
    let bytes = Builder::new().kv("k", T_ARRAY, &array_header(T_U32, MAX_ARRAY_LEN + 1)).build();
    assert_rejects!(bytes, GgufError::TooLarge { .. });
    let bytes = Builder::new().kv("k", T_ARRAY, &array_header(T_STRING, u64::MAX)).build();
    assert_rejects!(bytes, GgufError::TooLarge { .. });
}

#[test]
fn rejects_array_past_end_of_file() {
    let mut value = array_header(T_U64, 1000);
    value.extend(5u64.to_le_bytes());
    let bytes = Builder::new().kv("k", T_ARRAY, &value).build();
    assert_rejects!(bytes, GgufError::Truncated { needed: 8000, .. });
    // Strings: runs out on the second element.
    let mut value = array_header(T_STRING, 1_000_000);
    value.extend(gguf_str(b"a"));
    let bytes = Builder::new().kv("k", T_ARRAY, &value).build();
    assert_rejects!(bytes, GgufError::Truncated { what, .. } if what.contains("element 1"));
}

#[test]
fn rejects_deeply_nested_arrays() {
    let mut value = Vec::new();
    for _ in 0..MAX_ARRAY_DEPTH {
        value.extend(array_header(T_ARRAY, 1));
    }
    value.extend(array_header(T_U8, 0));
    let bytes = Builder::new().kv("deep", T_ARRAY, &value).build();
    assert_rejects!(bytes, GgufError::NestingTooDeep { key, .. } if key == "deep");
    // One level less is fine.
    let ok = Builder::new().kv("deep", T_ARRAY, &value[12..]).build();
    assert!(GgufHeader::parse_complete(&ok).is_ok());
}

#[test]
fn rejects_unknown_value_type() {
    let bytes = Builder::new().kv("k", 13, &[0; 8]).build();
    let err = assert_rejects!(bytes, GgufError::UnknownValueType { type_id: 13, .. });
    assert!(err.to_string().contains("`k`"));
}

#[test]
fn rejects_unknown_array_element_type() {
    let bytes = Builder::new().kv("k", T_ARRAY, &array_header(99, 1)).build();
    assert_rejects!(bytes, GgufError::UnknownValueType { type_id: 99, .. });
}

#[test]
fn rejects_invalid_bool() {
    let bytes = Builder::new().kv("flag", T_BOOL, &[2]).build();
    assert_rejects!(bytes, GgufError::InvalidBool { value: 2, .. });
    let mut arr = array_header(T_BOOL, 3);
    arr.extend([0, 1, 7]);
    let bytes = Builder::new().kv("flags", T_ARRAY, &arr).build();
    assert_rejects!(bytes, GgufError::InvalidBool { value: 7, .. });
}

#[test]
fn rejects_non_utf8_key() {
    let bytes = Builder::new().kv_raw(b"bad\xff", T_U8, &[1]).build();
    assert_rejects!(bytes, GgufError::InvalidUtf8 { offset: 32, .. });
}

#[test]
fn rejects_non_utf8_string_value() {
    let bytes = Builder::new().kv("k", T_STRING, &gguf_str(b"\xc3\x28")).build();
    assert_rejects!(bytes, GgufError::InvalidUtf8 { what, .. } if what.contains("`k`"));
}

#[test]
fn rejects_non_utf8_string_in_array() {
    let mut arr = array_header(T_STRING, 2);
    arr.extend(gguf_str(b"ok"));
    arr.extend(gguf_str(b"\x80"));
    let bytes = Builder::new().kv("tokens", T_ARRAY, &arr).build();
    assert_rejects!(bytes, GgufError::InvalidUtf8 { what, .. } if what.contains("element 1"));
}

#[test]
fn rejects_non_utf8_tensor_name() {
    let bytes = Builder::new().tensor_raw(b"w\xfe", &[4], 0, 0).data(16).build();
    assert_rejects!(bytes, GgufError::InvalidUtf8 { what, .. } if what.contains("tensor 0"));
}

#[test]
fn rejects_duplicate_key() {
    let bytes = Builder::new().kv_u32("dup", 1).kv_u32("dup", 2).build();
    assert_rejects!(bytes, GgufError::DuplicateKey { key } if key == "dup");
}

#[test]
fn rejects_duplicate_tensor() {
    let bytes =
        Builder::new().tensor("w", &[8], GgmlType::F32, 0).tensor("w", &[8], GgmlType::F32, 32).data(64).build();
    assert_rejects!(bytes, GgufError::DuplicateTensor { tensor } if tensor == "w");
}

#[test]
fn rejects_bad_alignment() {
    assert_rejects!(Builder::new().alignment(0).build(), GgufError::BadAlignment(0));
    assert_rejects!(Builder::new().alignment(3).build(), GgufError::BadAlignment(3));
    assert_rejects!(Builder::new().alignment(96).build(), GgufError::BadAlignment(96));
}

#[test]
fn rejects_alignment_of_wrong_type() {
    let bytes = Builder::new().kv("general.alignment", T_U64, &32u64.to_le_bytes()).build();
    assert_rejects!(bytes, GgufError::WrongType { expected: "u32", found: "u64", .. });
}

#[test]
fn rejects_rank_zero() {
    let bytes = Builder::new().tensor("s", &[], GgmlType::F32, 0).data(32).build();
    assert_rejects!(bytes, GgufError::BadRank { n_dims: 0, .. });
}

#[test]
fn rejects_rank_above_four() {
    let bytes = Builder::new().tensor("t", &[1, 1, 1, 1, 1], GgmlType::F32, 0).data(32).build();
    assert_rejects!(bytes, GgufError::BadRank { n_dims: 5, .. });
    // A huge rank must not be trusted for allocation either.
    let mut bytes = Builder::new().counts(1, 0).build();
    bytes.extend(gguf_str(b"t"));
    bytes.extend(u32::MAX.to_le_bytes());
    assert_rejects!(bytes, GgufError::BadRank { .. });
}

#[test]
fn rejects_zero_dimension() {
    let bytes = Builder::new().tensor("z", &[4, 0], GgmlType::F32, 0).data(32).build();
    assert_rejects!(bytes, GgufError::ZeroDimension { axis: 1, .. });
}

#[test]
fn rejects_dimension_product_overflow() {
    let bytes = Builder::new().tensor("o", &[1 << 32, 1 << 32], GgmlType::F32, 0).build();
    assert_rejects!(bytes, GgufError::DimensionOverflow { tensor, .. } if tensor == "o");
    // Fits in u64 but not in ggml's int64_t.
    let bytes = Builder::new().tensor("o", &[1 << 32, 1 << 31], GgmlType::I8, 0).build();
    assert_rejects!(bytes, GgufError::DimensionOverflow { .. });
}

#[test]
fn rejects_byte_size_overflow() {
    // 2^61 elements fit in int64_t, but 8 bytes each do not.
    let bytes = Builder::new().tensor("f", &[1 << 31, 1 << 30], GgmlType::F64, 0).build();
    assert_rejects!(bytes, GgufError::DimensionOverflow { .. });
}

#[test]
fn rejects_offset_overflow() {
    let bytes = Builder::new().tensor("f", &[8], GgmlType::F32, u64::MAX - 31).build();
    assert_rejects!(bytes, GgufError::DimensionOverflow { .. });
}

#[test]
fn rejects_row_not_multiple_of_block() {
    let bytes = Builder::new().tensor("q", &[16, 2], GgmlType::Q4_0, 0).data(64).build();
    assert_rejects!(bytes, GgufError::RowNotBlockMultiple { ne0: 16, block_size: 32, ggml_type: GgmlType::Q4_0, .. });
    let bytes = Builder::new().tensor("k", &[128], GgmlType::Q6_K, 0).data(256).build();
    assert_rejects!(bytes, GgufError::RowNotBlockMultiple { block_size: 256, .. });
}

#[test]
fn rejects_unknown_tensor_type() {
    let bytes = Builder::new().tensor_raw(b"t", &[32], 99, 0).data(256).build();
    assert_rejects!(bytes, GgufError::UnknownTensorType { type_id: 99, tensor } if tensor == "t");
}

#[test]
fn rejects_retired_tensor_types() {
    // Q4_2 (4) and Q4_0_4_4 (31) were removed from ggml; their size is undefined.
    for id in [4, 5, 31, 32, 33, 36, 37, 38, 42, u32::MAX] {
        let bytes = Builder::new().tensor_raw(b"t", &[32], id, 0).data(256).build();
        assert_rejects!(bytes, GgufError::UnknownTensorType { .. });
    }
}

#[test]
fn rejects_misaligned_offset() {
    let bytes =
        Builder::new().tensor("a", &[4], GgmlType::F32, 0).tensor("b", &[4], GgmlType::F32, 16).data(64).build();
    assert_rejects!(bytes, GgufError::Misaligned { offset: 16, alignment: 32, .. });
    // Aligned to the default 32 but not to a custom 64.
    let bytes = Builder::new().alignment(64).tensor("a", &[4], GgmlType::F32, 32).data(64).build();
    assert_rejects!(bytes, GgufError::Misaligned { alignment: 64, .. });
}

#[test]
fn rejects_overlapping_tensors() {
    // "a" is 64 bytes at 0, "b" starts at 32.
    let bytes =
        Builder::new().tensor("a", &[16], GgmlType::F32, 0).tensor("b", &[8], GgmlType::F32, 32).data(96).build();
    assert_rejects!(bytes, GgufError::OverlappingTensors { a, b } if a == "a" && b == "b");
    // Same offset, listed in the other order.
    let bytes =
        Builder::new().tensor("x", &[8], GgmlType::F32, 64).tensor("y", &[4], GgmlType::F32, 64).data(96).build();
    assert_rejects!(bytes, GgufError::OverlappingTensors { .. });
}

#[test]
fn rejects_tensor_past_end_of_file() {
    let bytes = Builder::new().tensor("far", &[8], GgmlType::F32, 1 << 20).data(32).build();
    let err = assert_rejects!(bytes, GgufError::TensorOutOfBounds { tensor, .. } if tensor == "far");
    assert!(err.to_string().contains("far"));
}

#[test]
fn known_length_checks_bounds_even_from_a_prefix() {
    let bytes = sample().build();
    let header_len = sample().header().len();
    let prefix = &bytes[..header_len];
    assert!(GgufHeader::parse_with_len(prefix, Some(bytes.len() as u64)).is_ok());
    assert!(matches!(
        GgufHeader::parse_with_len(prefix, Some(bytes.len() as u64 - 1)),
        Err(GgufError::TensorOutOfBounds { .. })
    ));
}

/// The shared corpus (also run in the browser by tests/web.rs): every case rejected with its
/// kind, names unique, and every kind the header parser can produce covered.
#[test]
fn corrupt_corpus_is_rejected_with_the_expected_kinds() {
    let cases = corpus::corrupt_cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(|c| corpus::check(c).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "duplicate case names");

    let covered: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.expected_kind).collect();
    for kind in [
        "truncated",
        "bad_magic",
        "unsupported_version",
        "big_endian",
        "too_large",
        "invalid_utf8",
        "unknown_value_type",
        "nesting_too_deep",
        "invalid_bool",
        "unknown_tensor_type",
        "duplicate_key",
        "duplicate_tensor",
        "bad_rank",
        "zero_dimension",
        "dimension_overflow",
        "row_not_block_multiple",
        "misaligned",
        "overlapping_tensors",
        "tensor_out_of_bounds",
        "bad_alignment",
        "wrong_type",
    ] {
        assert!(covered.contains(kind), "no corpus case for {kind}");
    }
    // Parsing any prefix of a corrupt file, without its length, never panics.
    for case in &cases {
        for n in 0..=case.bytes.len().min(256) {
            let _ = GgufHeader::parse(&case.bytes[..n]);
        }
    }
}

#[test]
fn corpus_check_reports_mismatches() {
    let mut case = corpus::corrupt_cases().remove(0);
    case.expected_kind = "bad_magic";
    assert!(corpus::check(&case).unwrap_err().contains("expected bad_magic"));
    case.bytes = sample().build();
    case.file_len = None;
    assert!(corpus::check(&case).unwrap_err().contains("accepted"));
    case.bytes.truncate(10);
    assert!(corpus::check(&case).unwrap_err().contains("more bytes"));
}

#[test]
fn valid_samples_parse() {
    for (name, bytes) in corpus::valid_samples() {
        let h = GgufHeader::parse_complete(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        for t in h.tensors() {
            if t.ggml_type.is_supported_for_decode() {
                let v = h.dequantize_tensor(&bytes, &t.name).unwrap();
                assert_eq!(v.len() as u64, t.n_elements, "{name}/{}", t.name);
            }
        }
    }
}

/// Flipping bytes of a valid file must give errors or (rarely) another valid header, never a
/// panic or a huge allocation.
#[test]
fn mutations_never_panic() {
    let base = sample().kv_str("tokenizer.chat_template", "{{ x }}").build();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..20_000 {
        let mut bytes = base.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() % bytes.len() as u64) as usize;
            bytes[i] = match next() % 3 {
                0 => next() as u8,
                1 => 0xff,
                _ => bytes[i] ^ (1 << (next() % 8)),
            };
        }
        let cut = (next() % (bytes.len() as u64 + 1)) as usize;
        let _ = GgufHeader::parse_complete(&bytes);
        let _ = GgufHeader::parse(&bytes[..cut]);
    }
}

// ---------------------------------------------------------------------------------------------
// Types.

#[test]
fn type_table_matches_ggml() {
    let mut n = 0;
    for ty in GgmlType::all() {
        assert_eq!(GgmlType::from_id(ty.id()), Some(ty));
        assert!(ty.block_size() > 0 && ty.type_size() > 0);
        n += 1;
    }
    assert_eq!(n, 34);
    let expect = [
        (GgmlType::F32, 0, 1, 4),
        (GgmlType::F16, 1, 1, 2),
        (GgmlType::Q4_0, 2, 32, 18),
        (GgmlType::Q4_1, 3, 32, 20),
        (GgmlType::Q5_0, 6, 32, 22),
        (GgmlType::Q5_1, 7, 32, 24),
        (GgmlType::Q8_0, 8, 32, 34),
        (GgmlType::Q8_1, 9, 32, 40),
        (GgmlType::Q2_K, 10, 256, 84),
        (GgmlType::Q3_K, 11, 256, 110),
        (GgmlType::Q4_K, 12, 256, 144),
        (GgmlType::Q5_K, 13, 256, 176),
        (GgmlType::Q6_K, 14, 256, 210),
        (GgmlType::Q8_K, 15, 256, 292),
        (GgmlType::IQ4_XS, 23, 256, 136),
        (GgmlType::I8, 24, 1, 1),
        (GgmlType::BF16, 30, 1, 2),
        (GgmlType::TQ1_0, 34, 256, 54),
        (GgmlType::MXFP4, 39, 32, 17),
    ];
    for (ty, id, bs, ts) in expect {
        assert_eq!((ty.id(), ty.block_size(), ty.type_size()), (id, bs, ts), "{ty}");
    }
    assert_eq!(GgmlType::Q4_K.to_string(), "Q4_K");
    assert_eq!(GgmlType::Q6_K.byte_size(512), Some(420));
    assert_eq!(GgmlType::Q6_K.byte_size(100), None);
    assert!(GgmlType::Q4_K.is_supported_for_decode());
    assert!(!GgmlType::IQ2_XXS.is_supported_for_decode());
    for id in [4, 5, 31, 32, 33, 36, 37, 38, 42] {
        assert_eq!(GgmlType::from_id(id), None);
    }
}

#[test]
fn sizes_known_for_undecodable_types() {
    let bytes = Builder::new().tensor("iq", &[512, 3], GgmlType::IQ2_XXS, 0).data(6 * 66).build();
    let h = GgufHeader::parse_complete(&bytes).unwrap();
    assert_eq!(h.tensor("iq").unwrap().size_bytes, 6 * 66);
    assert_eq!(h.dequantize_tensor(&bytes, "iq"), Err(GgufError::UnsupportedBlockFormat(GgmlType::IQ2_XXS)));
}

// ---------------------------------------------------------------------------------------------
// Decoding.

const F16_ONE: [u8; 2] = 0x3c00u16.to_le_bytes();
const F16_HALF: [u8; 2] = 0x3800u16.to_le_bytes();
const F16_TWO: [u8; 2] = 0x4000u16.to_le_bytes();
const F16_MINUS_ONE: [u8; 2] = 0xbc00u16.to_le_bytes();

#[test]
fn f16_conversion_is_exact() {
    assert_eq!(f16_to_f32(0x3c00), 1.0);
    assert_eq!(f16_to_f32(0xc000), -2.0);
    assert_eq!(f16_to_f32(0x7bff), 65504.0);
    assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
    assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
    assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
    assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
    assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
    assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
    // NaN payload kept, as numpy does.
    assert_eq!(f16_to_f32(0x7c01).to_bits(), 0x7f80_2000);
    assert_eq!(f16_to_f32(0x7e00).to_bits(), 0x7fc0_0000);
    // Every finite value against the definition, computed in f64.
    for h in 0..=u16::MAX {
        let exp = i32::from((h >> 10) & 0x1f);
        if exp == 0x1f {
            continue;
        }
        let man = f64::from(h & 0x3ff);
        let mag = if exp == 0 { man * 2f64.powi(-24) } else { (1.0 + man / 1024.0) * 2f64.powi(exp - 15) };
        let v = if h & 0x8000 != 0 { -mag } else { mag };
        assert_eq!(f16_to_f32(h).to_bits(), (v as f32).to_bits(), "{h:#06x}");
    }
}

#[test]
fn bf16_conversion() {
    assert_eq!(bf16_to_f32(0x3f80), 1.0);
    assert_eq!(bf16_to_f32(0xc040), -3.0);
    assert_eq!(bf16_to_f32(0x7f81).to_bits(), 0x7f81_0000);
}

#[test]
fn decodes_f32_f16_bf16() {
    let bytes: Vec<u8> = [1.5f32, -0.0, 3.25].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(dequantize_to_vec(GgmlType::F32, &bytes, 3).unwrap(), [1.5, -0.0, 3.25]);
    let bytes = [F16_ONE, F16_MINUS_ONE].concat();
    assert_eq!(dequantize_to_vec(GgmlType::F16, &bytes, 2).unwrap(), [1.0, -1.0]);
    let bytes = [0x80, 0x3f, 0x40, 0xc0];
    assert_eq!(dequantize_to_vec(GgmlType::BF16, &bytes, 2).unwrap(), [1.0, -3.0]);
}

#[test]
fn decodes_q8_0() {
    let mut block = F16_HALF.to_vec();
    block.extend((0..32).map(|i| (i as i8 * 4 - 64) as u8));
    let out = dequantize_to_vec(GgmlType::Q8_0, &block, 32).unwrap();
    let want: Vec<f32> = (0..32).map(|i| (i * 4 - 64) as f32 * 0.5).collect();
    assert_eq!(out, want);
}

#[test]
fn decodes_q4_0() {
    // qs[j] = low nibble j % 16, high nibble 15 - j % 16.
    let mut block = F16_TWO.to_vec();
    block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let out = dequantize_to_vec(GgmlType::Q4_0, &block, 32).unwrap();
    for j in 0..16 {
        assert_eq!(out[j], 2.0 * (j as f32 - 8.0));
        assert_eq!(out[j + 16], 2.0 * (7.0 - j as f32));
    }
}

#[test]
fn decodes_q4_1() {
    let mut block = [F16_HALF, F16_MINUS_ONE].concat();
    block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let out = dequantize_to_vec(GgmlType::Q4_1, &block, 32).unwrap();
    for j in 0..16 {
        assert_eq!(out[j], 0.5 * j as f32 - 1.0);
        assert_eq!(out[j + 16], 0.5 * (15 - j) as f32 - 1.0);
    }
}

#[test]
fn decodes_q5_0() {
    // High bits set for elements 0 and 31 only.
    let qh: u32 = 1 | (1 << 31);
    let mut block = F16_ONE.to_vec();
    block.extend(qh.to_le_bytes());
    block.extend([0x21u8; 16]); // low nibble 1, high nibble 2
    let out = dequantize_to_vec(GgmlType::Q5_0, &block, 32).unwrap();
    assert_eq!(out[0], (16 + 1 - 16) as f32);
    assert_eq!(out[1], (1 - 16) as f32);
    assert_eq!(out[16], (2 - 16) as f32);
    assert_eq!(out[31], (16 + 2 - 16) as f32);
}

#[test]
fn decodes_q5_1() {
    let qh: u32 = 1 << 16;
    let mut block = [F16_TWO, F16_HALF].concat();
    block.extend(qh.to_le_bytes());
    block.extend([0xf3u8; 16]);
    let out = dequantize_to_vec(GgmlType::Q5_1, &block, 32).unwrap();
    assert_eq!(out[0], 2.0 * 3.0 + 0.5);
    assert_eq!(out[16], 2.0 * 31.0 + 0.5);
    assert_eq!(out[17], 2.0 * 15.0 + 0.5);
}

#[test]
fn decodes_q4_k_by_hand() {
    // d = 1, dmin = 0.5; sub-block j has scale j + 1 and min j (all below 16, so bytes 8..12
    // carry them for j >= 4 and the top bits of bytes 0..8 stay clear).
    let mut block = [F16_ONE, F16_HALF].concat();
    let mut scales = [0u8; 12];
    for j in 0..4 {
        scales[j] = j as u8 + 1;
        scales[j + 4] = j as u8;
        scales[j + 8] = (j as u8 + 5) | ((j as u8 + 4) << 4);
    }
    block.extend(scales);
    // Chunk c: low nibble 3, high nibble 12.
    block.extend([0xc3u8; 128]);
    let out = dequantize_to_vec(GgmlType::Q4_K, &block, 256).unwrap();
    for j in 0..8 {
        let q = if j % 2 == 0 { 3.0 } else { 12.0 };
        let want = (j as f32 + 1.0) * q - 0.5 * j as f32;
        assert!(out[j * 32..j * 32 + 32].iter().all(|&x| x == want), "sub-block {j}");
    }
}

#[test]
fn decodes_q6_k_by_hand() {
    // ql all 0x21 (nibbles 1 and 2), qh all 0b11_10_01_00, scales i - 8, d = 0.5.
    let mut block = vec![0x21u8; 128];
    block.extend([0b1110_0100u8; 64]);
    block.extend((0..16).map(|i| (i as i8 - 8) as u8));
    block.extend(F16_HALF);
    let out = dequantize_to_vec(GgmlType::Q6_K, &block, 256).unwrap();
    for (e, &x) in out.iter().enumerate() {
        let r = e % 128;
        let lo = if r < 64 { 1 } else { 2 };
        let hi = (r / 32) as i32;
        let q = (lo | (hi << 4)) - 32;
        let want = (0.5 * (e / 16) as f32 - 4.0) * q as f32;
        assert_eq!(x, want, "element {e}");
    }
}

#[test]
fn rejects_bad_decode_sizes() {
    let block = vec![0u8; 34];
    let mut out = vec![0.0; 32];
    assert!(dequantize(GgmlType::Q8_0, &block, 32, &mut out).is_ok());
    assert!(matches!(
        dequantize(GgmlType::Q8_0, &block[..33], 32, &mut out),
        Err(GgufError::SizeMismatch { expected: 34, found: 33, .. })
    ));
    assert!(matches!(dequantize(GgmlType::Q8_0, &block, 16, &mut out), Err(GgufError::SizeMismatch { .. })));
    assert!(matches!(dequantize(GgmlType::Q8_0, &block, 32, &mut out[..31]), Err(GgufError::SizeMismatch { .. })));
    assert!(matches!(dequantize_to_vec(GgmlType::Q8_0, &block, usize::MAX - 31), Err(GgufError::SizeMismatch { .. })));
    assert_eq!(
        dequantize_to_vec(GgmlType::IQ4_NL, &block[..18], 32),
        Err(GgufError::UnsupportedBlockFormat(GgmlType::IQ4_NL))
    );
}

// Independent references: ports of ggml's `dequantize_row_*` (ggml-quants.c), whose loop
// structure differs from ours, run on pseudo-random blocks.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Random bytes with finite f16 values at the given offsets (exponent below 16: |x| < 2).
    fn block(&mut self, len: usize, f16_at: &[usize]) -> Vec<u8> {
        let mut b: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
        for &i in f16_at {
            let h = (self.next() as u16) & 0xbfff;
            b[i..i + 2].copy_from_slice(&h.to_le_bytes());
        }
        b
    }
}

fn ggml_scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

fn ggml_q4_k(b: &[u8]) -> Vec<f32> {
    let (d, min) = (f16_to_f32(u16::from_le_bytes([b[0], b[1]])), f16_to_f32(u16::from_le_bytes([b[2], b[3]])));
    let scales = &b[4..16];
    let mut q = &b[16..];
    let mut y = Vec::new();
    let mut is = 0;
    for _ in (0..QK_K).step_by(64) {
        let (sc, m) = ggml_scale_min_k4(is, scales);
        let (d1, m1) = (d * sc as f32, min * m as f32);
        let (sc, m) = ggml_scale_min_k4(is + 1, scales);
        let (d2, m2) = (d * sc as f32, min * m as f32);
        y.extend((0..32).map(|l| d1 * (q[l] & 0xF) as f32 - m1));
        y.extend((0..32).map(|l| d2 * (q[l] >> 4) as f32 - m2));
        q = &q[32..];
        is += 2;
    }
    y
}

fn ggml_q5_k(b: &[u8]) -> Vec<f32> {
    let (d, min) = (f16_to_f32(u16::from_le_bytes([b[0], b[1]])), f16_to_f32(u16::from_le_bytes([b[2], b[3]])));
    let scales = &b[4..16];
    let qh = &b[16..48];
    let mut ql = &b[48..];
    let mut y = Vec::new();
    let (mut is, mut u1, mut u2) = (0, 1u8, 2u8);
    for _ in (0..QK_K).step_by(64) {
        let (sc, m) = ggml_scale_min_k4(is, scales);
        let (d1, m1) = (d * sc as f32, min * m as f32);
        let (sc, m) = ggml_scale_min_k4(is + 1, scales);
        let (d2, m2) = (d * sc as f32, min * m as f32);
        y.extend((0..32).map(|l| d1 * ((ql[l] & 0xF) + if qh[l] & u1 != 0 { 16 } else { 0 }) as f32 - m1));
        y.extend((0..32).map(|l| d2 * ((ql[l] >> 4) + if qh[l] & u2 != 0 { 16 } else { 0 }) as f32 - m2));
        ql = &ql[32..];
        is += 2;
        u1 = u1.wrapping_shl(2);
        u2 = u2.wrapping_shl(2);
    }
    y
}

fn ggml_q6_k(b: &[u8]) -> Vec<f32> {
    let d = f16_to_f32(u16::from_le_bytes([b[208], b[209]]));
    let mut y = vec![0.0f32; QK_K];
    for n in 0..2 {
        let ql = &b[64 * n..];
        let qh = &b[128 + 32 * n..];
        let sc = &b[192 + 8 * n..];
        let y = &mut y[128 * n..];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i8 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
            y[l] = d * sc[is] as i8 as f32 * q1 as f32;
            y[l + 32] = d * sc[is + 2] as i8 as f32 * q2 as f32;
            y[l + 64] = d * sc[is + 4] as i8 as f32 * q3 as f32;
            y[l + 96] = d * sc[is + 6] as i8 as f32 * q4 as f32;
        }
    }
    y
}

fn ggml_q2_k(b: &[u8]) -> Vec<f32> {
    let scales = &b[0..16];
    let d = f16_to_f32(u16::from_le_bytes([b[80], b[81]]));
    let min = f16_to_f32(u16::from_le_bytes([b[82], b[83]]));
    let mut q = &b[16..80];
    let mut y = Vec::new();
    let mut is = 0;
    for _ in (0..QK_K).step_by(128) {
        for shift in [0, 2, 4, 6] {
            for half in 0..2 {
                let sc = scales[is];
                is += 1;
                let (dl, ml) = (d * (sc & 0xF) as f32, min * (sc >> 4) as f32);
                y.extend((0..16).map(|l| dl * ((q[l + 16 * half] >> shift) & 3) as f32 - ml));
            }
        }
        q = &q[32..];
    }
    y
}

type Reference = fn(&[u8]) -> Vec<f32>;

#[test]
fn k_quants_match_ggml_reference_loops() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..200 {
        let cases: [(GgmlType, Vec<u8>, Reference); 4] = [
            (GgmlType::Q4_K, rng.block(144, &[0, 2]), ggml_q4_k),
            (GgmlType::Q5_K, rng.block(176, &[0, 2]), ggml_q5_k),
            (GgmlType::Q6_K, rng.block(210, &[208]), ggml_q6_k),
            (GgmlType::Q2_K, rng.block(84, &[80, 82]), ggml_q2_k),
        ];
        for (ty, block, reference) in cases {
            let ours = dequantize_to_vec(ty, &block, QK_K).unwrap();
            let theirs = reference(&block);
            let same = ours.iter().zip(&theirs).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{ty} differs on block {block:02x?}");
        }
    }
}

#[test]
fn decodes_multiple_blocks_in_order() {
    let mut bytes = Vec::new();
    for d in [F16_ONE, F16_TWO, F16_HALF] {
        bytes.extend(d);
        bytes.extend([1u8; 32]);
    }
    let out = dequantize_to_vec(GgmlType::Q8_0, &bytes, 96).unwrap();
    assert_eq!((out[0], out[32], out[95]), (1.0, 2.0, 0.5));
}

// ---------------------------------------------------------------------------------------------
// What an app reads: the tensor list and metadata values, serialized.

#[test]
fn tensor_list_gives_absolute_offsets_and_type_names() {
    let h = GgufHeader::parse_complete(&sample().build()).expect("valid");
    let list = serde_json::to_value(h.tensor_list()).unwrap();
    let b = &list[1];
    assert_eq!(b["name"], "b");
    assert_eq!(b["type"], "Q4_K");
    assert_eq!(b["dims"], serde_json::json!([256, 2]));
    assert_eq!(b["offset"], h.data_offset() + 32);
    assert_eq!(b["size"], 288);
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[test]
fn metadata_serializes_64_bit_integers_as_numbers_only_when_exact() {
    let json = |v: MetadataValue| serde_json::to_value(v).unwrap();
    // Exact as a JS number: a plain (f64) number.
    assert_eq!(json(MetadataValue::U64(42)), serde_json::json!(42.0));
    assert_eq!(json(MetadataValue::I64(-(1 << 53) + 1)), serde_json::json!(-9_007_199_254_740_991.0));
    // Beyond 2^53 - 1: the 64-bit integer itself (a BigInt in JS).
    assert_eq!(json(MetadataValue::U64(1 << 53)), serde_json::json!(9_007_199_254_740_992u64));
    assert_eq!(json(MetadataValue::I64(i64::MIN)), serde_json::json!(i64::MIN));
    assert_eq!(json(MetadataValue::U32(7)), serde_json::json!(7));
    assert_eq!(json(MetadataValue::Bool(true)), serde_json::json!(true));
    assert_eq!(json(MetadataValue::String("llama".into())), serde_json::json!("llama"));
    let nested = MetadataArray::Array(vec![
        MetadataArray::U64(vec![1, u64::MAX]),
        MetadataArray::String(vec!["a".into()]),
        MetadataArray::F32(vec![0.5]),
    ]);
    assert_eq!(json(MetadataValue::Array(nested)), serde_json::json!([[1.0, u64::MAX], ["a"], [0.5]]));
}
