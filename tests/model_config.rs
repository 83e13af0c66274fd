#![cfg(not(target_arch = "wasm32"))] // reads model files from disk; the browser tier has its own tests
//! [`ModelConfig`] on the three real models (`$HEARTH_MODELS_DIR`, default `models/`) and the 12
//! random-weight fixtures (`$HEARTH_FIXTURES_DIR`, default `.cache/fixtures/`): the
//! hyperparameters read from each header match the values in the files (as gguf-py prints them),
//! and every tensor the architecture needs is there with the right shape.
//!
//! Only a header prefix is read, grown on `NeedMoreBytes`, with the file length known: the way
//! the browser reads it. Missing files fail the test unless `HEARTH_SKIP_REAL_MODELS=1`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hearth::gguf::corpus::{check_model, hostile_models};
use hearth::gguf::{GgufError, GgufHeader};
use hearth::model::{Architecture, MAX_LAYERS, ModelConfig, ModelError, RopeStyle};

/// Counts the bytes each thread holds, so a test can bound what one rejection allocates.
struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn track(delta: i64) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as i64);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as i64));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes this thread held above the start.
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    (out, (PEAK.with(Cell::get) - start).max(0) as u64)
}

fn dir(var: &str, default: &str) -> Option<PathBuf> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED model config checks: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Some(std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| root.join(default)))
}

/// Parses the header from a growing prefix of the file, as the browser does with Range requests.
fn read_header(path: &Path) -> GgufHeader {
    let mut file = File::open(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (tools/fetch_models.sh for the models, python3 tools/make_fixtures.py for the \
             fixtures; HEARTH_SKIP_REAL_MODELS=1 skips)",
            path.display()
        )
    });
    let file_len = file.metadata().unwrap().len();
    let mut prefix = Vec::new();
    let mut want: u64 = 64 * 1024;
    loop {
        let have = prefix.len() as u64;
        if want > have {
            (&mut file)
                .take(want - have)
                .read_to_end(&mut prefix)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        match GgufHeader::parse_with_len(&prefix, Some(file_len)) {
            Ok(h) => return h,
            Err(GgufError::NeedMoreBytes { needed_at_least }) if (prefix.len() as u64) < file_len => {
                want = needed_at_least.max(2 * want).min(file_len);
            }
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

fn config_of(path: &Path) -> (GgufHeader, ModelConfig) {
    let header = read_header(path);
    let config = ModelConfig::from_gguf(&header).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    config.validate_tensors(&header).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (header, config)
}

/// What a test asserts about one file; every number was read from the files with gguf-py.
struct Expected {
    arch: Architecture,
    n_layer: u32,
    n_embd: u32,
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    n_ff: u32,
    n_vocab: u32,
    context_length: u32,
    rope_base: f32,
    tied: bool,
    sliding_window: Option<u32>,
}

fn check(path: &Path, e: &Expected) -> ModelConfig {
    let name = path.display();
    let (_, c) = config_of(path);
    assert_eq!(c.arch, e.arch, "{name}");
    assert_eq!(
        (c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.n_ff),
        (e.n_layer, e.n_embd, e.n_head, e.n_head_kv, e.head_dim, e.n_ff),
        "{name}: n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff"
    );
    assert_eq!((c.n_vocab, c.context_length), (e.n_vocab, e.context_length), "{name}");
    assert_eq!(c.rope_base, e.rope_base, "{name}");
    assert_eq!(c.tied_output, e.tied, "{name}: tied output");
    assert_eq!(c.sliding_window, e.sliding_window, "{name}");
    assert_eq!(c.n_rot, c.head_dim, "{name}: these models rotate whole heads");
    assert_eq!(c.rope_freq_scale, 1.0, "{name}");
    let gemma = e.arch == Architecture::Gemma3;
    assert_eq!(c.qkv_bias, e.arch == Architecture::Qwen2, "{name}");
    assert_eq!((c.qk_norm, c.post_norms), (gemma, gemma), "{name}");
    assert_eq!(c.embedding_scale, gemma.then(|| (e.n_embd as f32).sqrt()), "{name}");
    assert_eq!(c.swa_pattern, e.sliding_window.map(|_| 6), "{name}");
    assert_eq!(c.rope_base_local, e.sliding_window.map(|_| 10_000.0), "{name}");
    assert_eq!(c.rope, if e.arch == Architecture::Llama { RopeStyle::Normal } else { RopeStyle::Neox }, "{name}");
    assert_eq!(c.attention_scale, 1.0 / (e.head_dim as f32).sqrt(), "{name}");
    c
}

const SMOLLM2: Expected = Expected {
    arch: Architecture::Llama,
    n_layer: 30,
    n_embd: 576,
    n_head: 9,
    n_head_kv: 3,
    head_dim: 64,
    n_ff: 1536,
    n_vocab: 49152,
    context_length: 8192,
    rope_base: 100_000.0,
    tied: true,
    sliding_window: None,
};
const QWEN25: Expected = Expected {
    arch: Architecture::Qwen2,
    n_layer: 24,
    n_embd: 896,
    n_head: 14,
    n_head_kv: 2,
    head_dim: 64,
    n_ff: 4864,
    n_vocab: 151936,
    context_length: 32768,
    rope_base: 1_000_000.0,
    // This Qwen2.5-Coder conversion ships a separate output.weight (Q8_0).
    tied: false,
    sliding_window: None,
};
const GEMMA3: Expected = Expected {
    arch: Architecture::Gemma3,
    n_layer: 18,
    n_embd: 640,
    n_head: 4,
    n_head_kv: 1,
    head_dim: 256,
    n_ff: 2048,
    n_vocab: 262144,
    context_length: 32768,
    rope_base: 1_000_000.0,
    tied: true,
    sliding_window: Some(512),
};

#[test]
fn real_models_have_their_published_hyperparameters() {
    let Some(models) = dir("HEARTH_MODELS_DIR", "models") else {
        return;
    };
    let smol = check(&models.join("smollm2-135m-instruct-q4_1.gguf"), &SMOLLM2);
    assert!((smol.rms_eps - 1e-5).abs() < 1e-9);
    // 30 layers * 3 KV heads * 64 * 2 (K and V) * 2 bytes = 23040 bytes a position.
    assert_eq!(smol.kv_cache_bytes(8192, 2), 8192 * 23_040);

    let qwen = check(&models.join("qwen2.5-coder-0.5b-instruct.gguf"), &QWEN25);
    assert!((qwen.rms_eps - 1e-6).abs() < 1e-10);
    assert_eq!(qwen.kv_cache_bytes(1, 4), 2 * 24 * 2 * 64 * 4);

    let gemma = check(&models.join("gemma-3-270m-q4_k_m.gguf"), &GEMMA3);
    // n_head * head_dim = 1024 != n_embd = 640: the projections are not square.
    assert_eq!(gemma.q_dim(), 1024);
    assert_eq!(gemma.attention_scale, 1.0 / 16.0);
    assert_eq!(gemma.final_logit_softcapping, None);
    let local: Vec<u32> = (0..18).filter(|&il| !gemma.is_local_layer(il)).collect();
    assert_eq!(local, [5, 11, 17], "global layers");
}

#[test]
fn fixtures_have_the_hyperparameters_make_fixtures_wrote() {
    let Some(fixtures) = dir("HEARTH_FIXTURES_DIR", ".cache/fixtures") else {
        return;
    };
    let tiny = |arch, n_layer, n_head_kv, head_dim, n_vocab, tied, rope_base, sliding_window| Expected {
        arch,
        n_layer,
        n_embd: 64,
        n_head: 4,
        n_head_kv,
        head_dim,
        n_ff: 128,
        n_vocab,
        context_length: 128,
        rope_base,
        tied,
        sliding_window,
    };
    let cases = [
        ("llama", tiny(Architecture::Llama, 2, 2, 16, 49152, false, 10_000.0, None)),
        ("qwen2", tiny(Architecture::Qwen2, 2, 2, 16, 151936, true, 1e6, None)),
        ("gemma3", tiny(Architecture::Gemma3, 6, 1, 32, 262144, true, 1e6, Some(4))),
    ];
    let mut n = 0;
    for (arch, expected) in &cases {
        for format in ["f32", "q8_0", "q4_0", "q4_1"] {
            check(&fixtures.join(format!("{arch}-{format}.gguf")), expected);
            n += 1;
        }
    }
    assert_eq!(n, 12);
}

#[test]
fn a_config_that_disagrees_with_the_tensors_names_the_tensor() {
    let Some(models) = dir("HEARTH_MODELS_DIR", "models") else {
        return;
    };
    let (header, config) = config_of(&models.join("smollm2-135m-instruct-q4_1.gguf"));

    let wrong_ff = ModelConfig { n_ff: config.n_ff + 32, ..config.clone() };
    assert_eq!(
        wrong_ff.validate_tensors(&header).unwrap_err(),
        ModelError::TensorShape {
            name: "blk.0.ffn_gate.weight".into(),
            expected: vec![576, 1568],
            found: vec![576, 1536],
        }
    );

    let untied = ModelConfig { tied_output: false, ..config.clone() };
    assert_eq!(
        untied.validate_tensors(&header).unwrap_err(),
        ModelError::MissingTensor { name: "output.weight".into() }
    );

    let qwen_like = ModelConfig { qkv_bias: true, ..config };
    let err = qwen_like.validate_tensors(&header).unwrap_err();
    assert_eq!(err.kind(), "missing_tensor");
    assert!(err.to_string().contains("blk.0.attn_q.bias"), "{err}");
}

/// Every hostile model of the shared corpus is rejected with its typed error, in milliseconds
/// and without allocating more than a small multiple of its header: nothing is sized from a
/// count before the count is checked.
#[test]
fn hostile_models_are_rejected_quickly_and_without_large_allocations() {
    let cases = hostile_models();
    assert!(cases.len() >= 30);
    for case in &cases {
        let started = Instant::now();
        let (verdict, peak) = peak_bytes(|| check_model(case));
        let took = started.elapsed();
        verdict.unwrap_or_else(|e| panic!("{e}"));
        let bound = 16 * case.bytes.len() as u64 + (1 << 20);
        assert!(peak <= bound, "{}: {peak} bytes allocated for a {}-byte header", case.name, case.bytes.len());
        assert!(took < Duration::from_secs(2), "{}: {took:?}", case.name);
    }
}

/// The 4-byte edit of a real file's `block_count`: refused before anything is sized from it.
#[test]
fn an_edited_block_count_in_a_real_header_is_refused_early() {
    let Some(models) = dir("HEARTH_MODELS_DIR", "models") else {
        return;
    };
    let path = models.join("smollm2-135m-instruct-q4_1.gguf");
    let header = read_header(&path);
    let file_len = File::open(&path).unwrap().metadata().unwrap().len();
    let mut prefix = Vec::new();
    File::open(&path).unwrap().take(header.header_len()).read_to_end(&mut prefix).unwrap();
    // The value follows the key's bytes and its 4-byte type (u32 here).
    let key = b"llama.block_count";
    let at = prefix.windows(key.len()).position(|w| w == key).expect("block_count key") + key.len() + 4;
    assert_eq!(u32::from_le_bytes(prefix[at..at + 4].try_into().unwrap()), 30);

    for (value, expected) in [
        (
            u32::MAX,
            ModelError::OutOfRange {
                key: "llama.block_count".into(),
                value: u32::MAX.into(),
                min: 1,
                max: MAX_LAYERS.into(),
            },
        ),
        (
            31,
            ModelError::CountMismatch {
                key: "llama.block_count".into(),
                value: 31,
                with: "the layers with blk.N tensors (blk.0 to blk.29)".into(),
                found: 30,
            },
        ),
    ] {
        let mut edited = prefix.clone();
        edited[at..at + 4].copy_from_slice(&value.to_le_bytes());
        let ((), peak) = peak_bytes(|| {
            let h = GgufHeader::parse_with_len(&edited, Some(file_len)).unwrap();
            assert_eq!(ModelConfig::from_gguf(&h).unwrap_err(), expected);
        });
        assert!(peak < 64 * prefix.len() as u64, "{peak} bytes for a {}-byte header", prefix.len());
    }
}
