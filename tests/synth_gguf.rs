#![cfg(not(target_arch = "wasm32"))] // reads model files from disk
//! The synthetic GGUFs of the GPU bench (`examples/gpu_bench/synth.rs`): a real file's header
//! with random valid blocks of the same formats and sizes is a whole model. It parses with the
//! real file's tensors, every tensor decodes to finite values, and the CPU engine runs it to
//! finite logits; a header that is not exactly the real one's prefix is rejected.
//!
//! Models live in `$HEARTH_MODELS_DIR` (default `models/`); missing models fail the test unless
//! `HEARTH_SKIP_REAL_MODELS=1`.

#[path = "../examples/gpu_bench/synth.rs"]
mod synth;

use std::path::PathBuf;

use futures::executor::block_on;
use hearth::gguf::GgufHeader;
use hearth::infer::{Cpu, Model, Shape, load_weights};
use hearth::model::ModelConfig;

fn model(name: &str) -> Option<Vec<u8>> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED synthetic GGUF checks: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("HEARTH_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("models"));
    let path = dir.join(name);
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (./run test downloads the models)", path.display())))
}

#[test]
fn a_synthesized_smollm2_is_the_real_shape_with_finite_weights_and_logits() {
    let Some(real) = model("smollm2-135m-instruct-q4_1.gguf") else { return };
    let prefix = synth::header_prefix(&real).unwrap();
    let real_header = GgufHeader::parse_complete(&real).unwrap();
    assert_eq!(prefix.len() as u64, real_header.data_offset());

    let mut file = Vec::new();
    let written = synth::synthesize(&prefix, 7, &mut file).unwrap();
    assert_eq!(written, file.len() as u64);
    assert_eq!(file.len(), real.len(), "same size as the real file");
    assert_eq!(&file[..prefix.len()], &real[..prefix.len()], "the header is the real one");
    let header = GgufHeader::parse_complete(&file).unwrap();
    assert_eq!(header.tensors(), real_header.tensors());
    for t in header.tensors() {
        let v = header.dequantize_tensor(&file, &t.name).unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{}: a non-finite weight", t.name);
        let rms = (v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!((0.005..2.0).contains(&rms), "{}: rms {rms} is not a plausible weight size", t.name);
    }
    // Same seed, same bytes; another seed, other bytes.
    let mut again = Vec::new();
    synth::synthesize(&prefix, 7, &mut again).unwrap();
    assert!(again == file);
    let mut other = Vec::new();
    synth::synthesize(&prefix, 8, &mut other).unwrap();
    assert!(other[prefix.len()..] != file[prefix.len()..]);

    let cfg = ModelConfig::from_gguf(&header).unwrap();
    let cpu = Cpu::new();
    let weights = load_weights(&cpu, &cfg, &header, &file).unwrap();
    let mut m = Model::new(cpu, cfg, weights, Shape::for_context(32)).unwrap();
    let logits = block_on(m.next_logits(&[1, 504, 3575, 282])).unwrap();
    assert!(logits.iter().all(|v| v.is_finite()), "non-finite logits");
    assert!(logits.iter().any(|v| *v != 0.0), "all-zero logits");
    let next = block_on(m.next_greedy(&[17])).unwrap();
    assert!(next < 49152);
}

#[test]
fn a_header_that_is_not_exactly_the_prefix_is_rejected() {
    let Some(real) = model("smollm2-135m-instruct-q4_1.gguf") else { return };
    let prefix = synth::header_prefix(&real).unwrap();
    let mut longer = prefix.clone();
    longer.push(0);
    let err = synth::synthesize(&longer, 1, &mut Vec::new()).unwrap_err();
    assert!(err.contains("exactly the header prefix"), "{err}");
    let err = synth::synthesize(&prefix[..prefix.len() / 2], 1, &mut Vec::new()).unwrap_err();
    assert!(err.starts_with("header:"), "{err}");
    assert!(synth::header_prefix(&real[..100]).is_err());
}
