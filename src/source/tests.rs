use super::*;

fn entry(key: &str, sha256: Option<&str>, file_bytes: u64) -> CatalogEntry {
    CatalogEntry {
        key: key.to_owned(),
        url: format!("/models/{key}.gguf"),
        sha256: sha256.map(str::to_owned),
        arch: "llama".to_owned(),
        quant: "Q4_0".to_owned(),
        file_bytes,
        context_length: 4096,
        description: String::new(),
        required_bytes: None,
    }
}

#[test]
fn throttle_admits_each_percent_once_and_the_end_once() {
    let mut t = Throttle::default();
    let admitted: Vec<u64> =
        [0, 1, 5, 10, 15, 20, 20, 999, 1000, 1000].into_iter().filter(|&n| t.admit(n, Some(1000))).collect();
    assert_eq!(admitted, [0, 10, 20, 999, 1000]);
}

#[test]
fn throttle_without_a_total_admits_once_per_mib() {
    let mut t = Throttle::default();
    let mib = 1 << 20;
    let admitted: Vec<u64> = [1, 2, mib - 1, mib, mib + 7, 3 * mib].into_iter().filter(|&n| t.admit(n, None)).collect();
    assert_eq!(admitted, [1, mib, 3 * mib]);
    // A zero total is an unknown one, never a division by zero.
    assert!(Throttle::default().admit(5, Some(0)));
}

#[test]
fn http_headers_parse_and_format() {
    assert_eq!(range_header(&(0..1024)), "bytes=0-1023");
    assert_eq!(range_header(&(10..11)), "bytes=10-10");
    assert_eq!(content_range_total("bytes 0-1023/4096"), Some(4096));
    assert_eq!(content_range_total("bytes 0-1023/*"), None);
    assert_eq!(content_range_total(""), None);
    assert_eq!(content_length(" 42 "), Some(42));
    assert_eq!(content_length("-1"), None);
}

#[test]
fn a_body_shorter_or_longer_than_announced_is_truncated() {
    assert_eq!(check_complete("u", Some(10), 10), Ok(()));
    assert_eq!(check_complete("u", None, 3), Ok(()));
    assert_eq!(
        check_complete("u", Some(10), 4),
        Err(SourceError::Truncated { url: "u".into(), expected: 10, received: 4 })
    );
}

#[test]
fn source_errors_carry_their_code_and_fields() {
    let http = SourceError::Http { url: "/m.gguf".into(), status: 404, status_text: "Not Found".into() };
    assert_eq!(http.code(), ErrorCode::HttpStatus);
    assert_eq!(http.code().class(), crate::error::ErrorClass::Download);
    assert_eq!(http.details(), vec![("url", Detail::Text("/m.gguf".into())), ("status", Detail::Number(404.0))]);
    assert!(http.message().contains("HTTP 404 Not Found."));
    let offline = SourceError::Network { url: "/m".into(), detail: "TypeError".into() };
    assert_eq!(offline.details()[1], ("status", Detail::Number(0.0)));
    let cut = SourceError::Truncated { url: "/m".into(), expected: 9, received: 3 };
    assert_eq!(cut.code(), ErrorCode::TruncatedBody);
    assert_eq!(cut.details()[1..], [("expectedBytes", Detail::Number(9.0)), ("receivedBytes", Detail::Number(3.0))]);
    assert_eq!(SourceError::Aborted { url: "/m".into() }.code().class(), crate::error::ErrorClass::Cancelled);
    let big = SourceError::too_large("/m", Some(5_000_000_000));
    assert_eq!(big.code(), ErrorCode::ReadFailed);
    assert!(big.to_string().contains("5000000000 bytes, too large"), "{big}");
    assert!(SourceError::too_large("/m", None).to_string().contains("larger than one browser buffer"));
}

#[test]
fn cache_file_names_tell_changed_files_apart_and_give_back_the_key() {
    let hashed = entry("smollm2-135m", Some("0123456789abcdef0123456789abcdef"), 7);
    assert_eq!(cache_file_name(&hashed), "smollm2-135m-0123456789abcdef.gguf");
    assert_eq!(cache_file_name(&entry("tiny", None, 1234)), "tiny-1234.gguf");
    // A short hash is used whole rather than cut out of bounds.
    assert_eq!(cache_file_name(&entry("tiny", Some("abc"), 1)), "tiny-abc.gguf");
    assert_eq!(cache_key_of("smollm2-135m-0123456789abcdef.gguf"), "smollm2-135m");
    assert_eq!(cache_key_of("plain.gguf"), "plain.gguf");
}
