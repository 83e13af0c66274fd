//! Writes the fuzzers' seed corpora under the folder given (created if needed), one file a seed,
//! named after where it came from; generated at run time by `tools/fuzz.sh`, so no binary seeds
//! are committed.
//!
//! - `gguf_header/`: the hand-made valid headers and every corrupt case of
//!   `hearth::gguf::corpus`.
//! - `gguf_model/`: the real-shaped valid and hostile models of the corpus, and, when a models
//!   folder is given, the header of every `*.gguf` in it, trimmed so a seed stays small: each
//!   array cut to its first [`KEEP`] entries (the vocabulary with it: `token_embd.weight` and
//!   `output.weight` get as many rows, `{arch}.vocab_size` follows, special token ids beyond it are moved inside, BPE merges
//!   whose parts fell out are dropped), tensor offsets repacked, no tensor data.
//!
//! `seed_corpus OUT_DIR [MODELS_DIR]`

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use hearth::gguf::corpus::{Builder, corrupt_cases, hostile_models, valid_models, valid_samples};
use hearth::gguf::{GgufError, GgufHeader, MetadataArray, MetadataValue};
use hearth::model::ModelConfig;
use hearth::tokenizer::Tokenizer;

/// Entries kept of each metadata array (and so tokens of a trimmed vocabulary).
const KEEP: usize = 384;
/// Model seeds larger than this are left out (libFuzzer's input size follows the seeds).
const MAX_SEED: usize = 64 << 10;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let out = PathBuf::from(args.next().expect("usage: seed_corpus OUT_DIR [MODELS_DIR]"));
    let models = args.next().map(PathBuf::from);

    let header_dir = out.join("gguf_header");
    std::fs::create_dir_all(&header_dir)?;
    let mut n = 0;
    for (name, bytes) in valid_samples() {
        std::fs::write(header_dir.join(format!("seed-valid-{name}")), bytes)?;
        n += 1;
    }
    for case in corrupt_cases() {
        std::fs::write(header_dir.join(format!("seed-corrupt-{}", case.name)), &case.bytes)?;
        n += 1;
    }
    println!("wrote {n} seeds to {}", header_dir.display());

    let model_dir = out.join("gguf_model");
    std::fs::create_dir_all(&model_dir)?;
    let mut n = 0;
    for (name, bytes, _) in valid_models() {
        std::fs::write(model_dir.join(format!("seed-shaped-{name}")), bytes)?;
        n += 1;
    }
    for case in hostile_models().into_iter().filter(|c| c.bytes.len() <= MAX_SEED) {
        std::fs::write(model_dir.join(format!("seed-hostile-{}", case.name)), &case.bytes)?;
        n += 1;
    }
    if let Some(dir) = models {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
            .collect();
        files.sort();
        for path in files {
            let header = match read_header(&path) {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("{}: skipped ({e})", path.display());
                    continue;
                }
            };
            let bytes = trimmed(&header);
            let stem = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            // Say how far the trimmed header gets, so a seed that stopped reaching the
            // tokenizer shows.
            let verdict = match GgufHeader::parse(&bytes) {
                Err(e) => format!("header rejected: {e}"),
                Ok(h) => {
                    let config = ModelConfig::from_gguf(&h).and_then(|c| c.validate_tensors(&h));
                    let tokenizer = Tokenizer::from_gguf(&h).map(|_| ());
                    format!("config {config:?}, tokenizer {tokenizer:?}")
                }
            };
            println!("{}: {} byte seed ({verdict})", path.display(), bytes.len());
            std::fs::write(model_dir.join(format!("seed-real-{stem}")), bytes)?;
            n += 1;
        }
    }
    println!("wrote {n} seeds to {}", model_dir.display());
    Ok(())
}

/// The header of a model file, read from a growing prefix.
fn read_header(path: &Path) -> Result<GgufHeader, String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut prefix = Vec::new();
    let mut want = 1u64 << 20;
    loop {
        let have = prefix.len() as u64;
        if want > have {
            (&mut file).take(want - have).read_to_end(&mut prefix).map_err(|e| e.to_string())?;
        }
        match GgufHeader::parse_with_len(&prefix, Some(len)) {
            Ok(h) => return Ok(h),
            Err(GgufError::NeedMoreBytes { needed_at_least }) if (prefix.len() as u64) < len => {
                want = needed_at_least.max(2 * want).min(len);
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The header re-written with every array cut to [`KEEP`] entries, the vocabulary with it.
fn trimmed(header: &GgufHeader) -> Vec<u8> {
    let md = header.metadata();
    let n_vocab = md.get_str_array("tokenizer.ggml.tokens").map_or(KEEP, |t| t.len().min(KEEP));
    let kept: std::collections::HashSet<&str> = md
        .get_str_array("tokenizer.ggml.tokens")
        .map(|t| t[..n_vocab].iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut b = Builder::new();
    for (key, value) in md.iter() {
        if key == "general.alignment" {
            continue;
        }
        let value = match value {
            MetadataValue::Array(MetadataArray::String(v)) if key == "tokenizer.ggml.merges" => {
                // Only merges of tokens that are still there, into one that is.
                let merges: Vec<String> = v
                    .iter()
                    .filter(|m| {
                        m.split_once(' ').is_some_and(|(a, c)| {
                            kept.contains(a) && kept.contains(c) && kept.contains(&*format!("{a}{c}"))
                        })
                    })
                    .take(KEEP)
                    .cloned()
                    .collect();
                MetadataValue::Array(MetadataArray::String(merges))
            }
            MetadataValue::Array(a) => MetadataValue::Array(cut(a, KEEP)),
            MetadataValue::U32(id) if key.starts_with("tokenizer.ggml.") && key.ends_with("_token_id") => {
                MetadataValue::U32((*id).min(n_vocab as u32 - 1))
            }
            MetadataValue::U32(_) if key.ends_with(".vocab_size") => MetadataValue::U32(n_vocab as u32),
            other => other.clone(),
        };
        b = b.kv(key, type_id(&value), &encode(&value));
    }
    let mut offset = 0u64;
    for t in header.tensors() {
        let mut dims = t.dims.clone();
        if matches!(t.name.as_str(), "token_embd.weight" | "output.weight") && dims.len() == 2 {
            dims[1] = n_vocab as u64;
        }
        b = b.tensor(&t.name, &dims, t.ggml_type, offset);
        let n: u64 = dims.iter().product();
        offset += t.ggml_type.byte_size(n).unwrap_or(0).next_multiple_of(32);
    }
    b.header()
}

fn cut(a: &MetadataArray, n: usize) -> MetadataArray {
    fn first<T: Clone>(v: &[T], n: usize) -> Vec<T> {
        v[..v.len().min(n)].to_vec()
    }
    match a {
        MetadataArray::U8(v) => MetadataArray::U8(first(v, n)),
        MetadataArray::I8(v) => MetadataArray::I8(first(v, n)),
        MetadataArray::U16(v) => MetadataArray::U16(first(v, n)),
        MetadataArray::I16(v) => MetadataArray::I16(first(v, n)),
        MetadataArray::U32(v) => MetadataArray::U32(first(v, n)),
        MetadataArray::I32(v) => MetadataArray::I32(first(v, n)),
        MetadataArray::F32(v) => MetadataArray::F32(first(v, n)),
        MetadataArray::Bool(v) => MetadataArray::Bool(first(v, n)),
        MetadataArray::String(v) => MetadataArray::String(first(v, n)),
        MetadataArray::Array(v) => MetadataArray::Array(v[..v.len().min(n)].iter().map(|a| cut(a, n)).collect()),
        MetadataArray::U64(v) => MetadataArray::U64(first(v, n)),
        MetadataArray::I64(v) => MetadataArray::I64(first(v, n)),
        MetadataArray::F64(v) => MetadataArray::F64(first(v, n)),
    }
}

/// The GGUF value type id (`gguf_type`).
fn type_id(v: &MetadataValue) -> u32 {
    match v {
        MetadataValue::U8(_) => 0,
        MetadataValue::I8(_) => 1,
        MetadataValue::U16(_) => 2,
        MetadataValue::I16(_) => 3,
        MetadataValue::U32(_) => 4,
        MetadataValue::I32(_) => 5,
        MetadataValue::F32(_) => 6,
        MetadataValue::Bool(_) => 7,
        MetadataValue::String(_) => 8,
        MetadataValue::Array(_) => 9,
        MetadataValue::U64(_) => 10,
        MetadataValue::I64(_) => 11,
        MetadataValue::F64(_) => 12,
    }
}

fn array_type_id(a: &MetadataArray) -> u32 {
    match a {
        MetadataArray::U8(_) => 0,
        MetadataArray::I8(_) => 1,
        MetadataArray::U16(_) => 2,
        MetadataArray::I16(_) => 3,
        MetadataArray::U32(_) => 4,
        MetadataArray::I32(_) => 5,
        MetadataArray::F32(_) => 6,
        MetadataArray::Bool(_) => 7,
        MetadataArray::String(_) => 8,
        MetadataArray::Array(_) => 9,
        MetadataArray::U64(_) => 10,
        MetadataArray::I64(_) => 11,
        MetadataArray::F64(_) => 12,
    }
}

fn gguf_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// A value's bytes after its type id.
fn encode(v: &MetadataValue) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        MetadataValue::U8(x) => out.push(*x),
        MetadataValue::I8(x) => out.extend(x.to_le_bytes()),
        MetadataValue::U16(x) => out.extend(x.to_le_bytes()),
        MetadataValue::I16(x) => out.extend(x.to_le_bytes()),
        MetadataValue::U32(x) => out.extend(x.to_le_bytes()),
        MetadataValue::I32(x) => out.extend(x.to_le_bytes()),
        MetadataValue::F32(x) => out.extend(x.to_le_bytes()),
        MetadataValue::Bool(x) => out.push(u8::from(*x)),
        MetadataValue::String(s) => gguf_str(&mut out, s),
        MetadataValue::Array(a) => encode_array(&mut out, a),
        MetadataValue::U64(x) => out.extend(x.to_le_bytes()),
        MetadataValue::I64(x) => out.extend(x.to_le_bytes()),
        MetadataValue::F64(x) => out.extend(x.to_le_bytes()),
    }
    out
}

fn encode_array(out: &mut Vec<u8>, a: &MetadataArray) {
    out.extend(array_type_id(a).to_le_bytes());
    out.extend((a.len() as u64).to_le_bytes());
    match a {
        MetadataArray::U8(v) => out.extend(v),
        MetadataArray::I8(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        MetadataArray::U16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        MetadataArray::I16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        MetadataArray::U32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        MetadataArray::I32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        MetadataArray::F32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        MetadataArray::Bool(v) => v.iter().for_each(|x| out.push(u8::from(*x))),
        MetadataArray::String(v) => v.iter().for_each(|s| gguf_str(out, s)),
        MetadataArray::Array(v) => v.iter().for_each(|inner| encode_array(out, inner)),
        MetadataArray::U64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        MetadataArray::I64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        MetadataArray::F64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
    }
}
