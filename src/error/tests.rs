use std::collections::HashSet;
use std::path::Path;

use super::*;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn codes_are_unique_screaming_snake_and_parse_back() {
    let mut seen = HashSet::new();
    let all = ErrorCode::ALL.iter().copied().chain(crate::gguf::GgufError::CODES.iter().map(|&c| ErrorCode::Gguf(c)));
    for code in all {
        let s = code.as_str();
        assert!(seen.insert(s), "{s} twice");
        assert!(!s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'), "{s}");
        assert_eq!(ErrorCode::parse(s), Some(code));
        assert_eq!(code.to_string(), s);
    }
    assert_eq!(ErrorCode::parse("NOT_A_CODE"), None);
    assert_eq!(ErrorCode::parse("GGUF_BAD_MAGIC"), Some(ErrorCode::Gguf("GGUF_BAD_MAGIC")));
    assert_eq!(ErrorCode::Gguf("GGUF_TRUNCATED").class(), ErrorClass::ModelFormat);
}

#[test]
fn classes_follow_from_codes() {
    assert_eq!(ErrorCode::Aborted.class(), ErrorClass::Cancelled);
    assert_eq!(ErrorCode::ContextOverflow.class(), ErrorClass::InvalidInput);
    assert_eq!(ErrorCode::NotEnoughMemory.class(), ErrorClass::ModelLoad);
    assert_eq!(ErrorCode::HttpStatus.class(), ErrorClass::Download);
    assert_eq!(ErrorCode::NoAdapter.class(), ErrorClass::GpuUnavailable);
    assert_eq!(ErrorCode::DeviceLost.class(), ErrorClass::DeviceLost);
    assert_eq!(ErrorCode::OutOfMemory.class(), ErrorClass::OutOfMemory);
    // Every class is reachable from some code.
    for class in ErrorClass::ALL {
        assert!(ErrorCode::ALL.iter().any(|c| c.class() == class), "{class:?}");
    }
}

/// The JS classes in `errors.js` are exactly [`ErrorClass`]'s, under the same names.
#[test]
fn classes_match_errors_js() {
    let js = read("src/web/errors.js");
    let declared: HashSet<&str> = js
        .lines()
        .filter_map(|l| l.strip_prefix("export class ")?.split_once(" extends HearthError"))
        .map(|(name, _)| name)
        .collect();
    let ours: HashSet<&str> = ErrorClass::ALL.iter().map(|c| c.js_name()).collect();
    assert_eq!(declared, ours);
}

/// Every code the page tests expect (`assert.equal(x.code, 'CODE')`) is one of ours.
#[test]
fn codes_the_page_tests_expect_exist() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "mjs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (at, _) in text.match_indices(".code, '") {
            let rest = &text[at + ".code, '".len()..];
            let code = &rest[..rest.find('\'').unwrap()];
            assert!(ErrorCode::parse(code).is_some(), "{}: {code}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} codes found: did the tests change shape?");
}
