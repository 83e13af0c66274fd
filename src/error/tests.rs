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

/// Each layer's errors say their code, class, message and fields (what JS shows) themselves.
#[test]
fn layer_errors_are_coded() {
    use crate::backend::BackendError;
    use crate::gguf::GgufError;
    use crate::infer::InferError;
    use crate::memory::AccountError;
    use crate::tokenizer::TokenizerError;

    let gguf = GgufError::MissingTensor("output.weight".into());
    assert_eq!(Coded::code(&gguf), ErrorCode::Gguf("GGUF_MISSING_TENSOR"));
    assert_eq!(Coded::code(&gguf).class(), ErrorClass::ModelFormat);
    assert_eq!(Coded::message(&gguf), format!("Not a valid GGUF model file: {gguf}."));
    // Wrapped in the inference error, the container's error keeps its code and wording.
    let wrapped = InferError::Gguf(gguf.clone());
    assert_eq!((wrapped.code(), wrapped.message()), (Coded::code(&gguf), Coded::message(&gguf)));

    let overflow = InferError::ContextOverflow { needed: 300, context: 256 };
    assert_eq!(overflow.code(), ErrorCode::ContextOverflow);
    assert_eq!(overflow.details(), vec![("needed", Detail::Number(300.0)), ("contextLength", Detail::Number(256.0))]);
    let invalid = InferError::invalid("topP", "topP must be in (0, 1]");
    assert_eq!((invalid.code(), invalid.code().class()), (ErrorCode::InvalidParams, ErrorClass::InvalidInput));
    assert_eq!(invalid.details(), vec![("field", Detail::Text("topP".into()))]);
    let weight = InferError::BadWeight { tensor: "blk.0.attn_q.weight".into(), detail: "short".into() };
    assert_eq!(weight.details(), vec![("tensor", Detail::Text("blk.0.attn_q.weight".into()))]);
    assert_eq!(InferError::Cancelled.code().class(), ErrorClass::Cancelled);
    assert!(InferError::Device("lost".into()).details().is_empty());

    let role = TokenizerError::UnknownRole { role: "robot".into(), template: "chatml" };
    assert_eq!(role.code(), ErrorCode::InvalidMessages);
    assert_eq!(TokenizerError::UnsupportedChatTemplate { family: "x" }.code(), ErrorCode::UnsupportedChatTemplate);
    assert_eq!(TokenizerError::EmptyVocab.code(), ErrorCode::Tokenizer);

    assert_eq!(BackendError::NoAdapter { detail: "none".into() }.code(), ErrorCode::NoAdapter);
    assert_eq!(BackendError::Readback { detail: "x".into() }.code(), ErrorCode::ReadbackFailed);
    assert_eq!(AccountError::Read("gone".into()).code(), ErrorCode::DeviceReadFailed);
    assert_eq!(AccountError::Init("no".into()).message(), "no");

    let frame = crate::status::sse::EncodeError::NulInId;
    assert_eq!(frame.code(), ErrorCode::InvalidSseFrame);
    assert!(frame.message().ends_with('.'));
}
