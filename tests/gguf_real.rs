#![cfg(not(target_arch = "wasm32"))] // reads model files from disk; the browser tier has its own tests
//! Real-model checks of the GGUF layer against gguf-py 0.19 (the reference llama.cpp ships).
//!
//! Needs the models from `tools/fetch_models.sh` and the goldens from `tools/gguf_golden.py`,
//! found through `HEARTH_MODELS_DIR`:
//!
//! ```text
//! tools/fetch_models.sh && python3 tools/gguf_golden.py
//! HEARTH_MODELS_DIR=$PWD/models cargo test --test gguf_real
//! ```
//!
//! For every model it parses the header the way the browser will (growing prefixes of the file,
//! with the file length known), checks every tensor's type, dimensions and byte range against
//! `gguf.GGUFReader`, and decodes a few tensors of each type, comparing bit for bit with
//! `gguf.quants.dequantize`. Synthetic blocks cover the formats no model here contains.
//!
//! Without `HEARTH_MODELS_DIR` the test fails, unless `HEARTH_SKIP_REAL_MODELS=1` opts out.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use hearth::gguf::{GgmlType, GgufError, GgufHeader, dequantize_to_vec};

/// The models directory, or `None` when the run explicitly opted out.
fn models_dir() -> Option<PathBuf> {
    match std::env::var_os("HEARTH_MODELS_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") => {
            eprintln!("SKIPPED real-model GGUF checks: HEARTH_SKIP_REAL_MODELS=1");
            None
        }
        None => panic!(
            "real-model GGUF checks need HEARTH_MODELS_DIR (a folder with the .gguf files and \
             golden/ from `tools/fetch_models.sh && python3 tools/gguf_golden.py`); \
             set HEARTH_SKIP_REAL_MODELS=1 to skip them explicitly"
        ),
    }
}

fn read_tsv(path: &Path) -> Vec<Vec<String>> {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e} (run tools/gguf_golden.py)", path.display()));
    text.lines().filter(|l| !l.is_empty()).map(|l| l.split('\t').map(str::to_owned).collect()).collect()
}

fn read_f32s(path: &Path) -> Vec<f32> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len() % 4, 0, "{}", path.display());
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn unhex(s: &str) -> String {
    let bytes: Vec<u8> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect();
    String::from_utf8(bytes).expect("utf-8")
}

fn type_by_name(name: &str) -> GgmlType {
    GgmlType::all().find(|t| t.name() == name).unwrap_or_else(|| panic!("unknown type {name}"))
}

/// Asserts bit equality and reports the first differing element.
fn assert_bits_eq(what: &str, ours: &[f32], golden: &[f32]) {
    assert_eq!(ours.len(), golden.len(), "{what}: length");
    if let Some(i) = (0..ours.len()).find(|&i| ours[i].to_bits() != golden[i].to_bits()) {
        panic!(
            "{what}: element {i} is {:e} ({:#010x}), gguf-py gives {:e} ({:#010x})",
            ours[i],
            ours[i].to_bits(),
            golden[i],
            golden[i].to_bits()
        );
    }
}

/// Parses the header as the web loader will: fetch a prefix, grow it on `NeedMoreBytes`.
/// Returns the header and how many fetches it took.
fn parse_by_prefixes(file: &mut File, file_len: u64) -> (GgufHeader, usize) {
    let mut want: u64 = 64 * 1024;
    let mut fetches = 0;
    loop {
        let n = want.min(file_len);
        let mut prefix = vec![0u8; n as usize];
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_exact(&mut prefix).unwrap();
        fetches += 1;
        match GgufHeader::parse_with_len(&prefix, Some(file_len)) {
            Ok(h) => return (h, fetches),
            Err(GgufError::NeedMoreBytes { needed_at_least }) => {
                assert!(needed_at_least > n && needed_at_least <= file_len);
                want = needed_at_least.max(want * 2);
            }
            Err(e) => panic!("header parse failed: {e}"),
        }
    }
}

fn check_model(dir: &Path, gguf_path: &Path) -> usize {
    let stem = gguf_path.file_stem().unwrap().to_string_lossy().into_owned();
    let golden = dir.join("golden").join(&stem);
    let mut file = File::open(gguf_path).unwrap();
    let file_len = file.metadata().unwrap().len();
    let (h, fetches) = parse_by_prefixes(&mut file, file_len);

    // Header facts against gguf.GGUFReader.
    for row in read_tsv(&golden.join("model.tsv")) {
        let (key, value) = (row[0].as_str(), row[1].as_str());
        let num = || value.parse::<u64>().unwrap();
        match key {
            "file_len" => assert_eq!(file_len, num(), "{stem}: file length"),
            "version" => assert_eq!(u64::from(h.version()), num(), "{stem}: version"),
            "alignment" => assert_eq!(h.alignment(), num(), "{stem}: alignment"),
            "data_offset" => assert_eq!(h.data_offset(), num(), "{stem}: data offset"),
            "kv_count" => assert_eq!(h.metadata().len() as u64, num(), "{stem}: kv count"),
            "tensor_count" => assert_eq!(h.tensors().len() as u64, num(), "{stem}: tensor count"),
            "architecture" => assert_eq!(h.architecture().unwrap(), unhex(value)),
            "vocab_size" => {
                let n = h.get_str_array("tokenizer.ggml.tokens").map_or(0, |t| t.len());
                assert_eq!(n as u64, num(), "{stem}: vocabulary size");
            }
            "first_token" | "last_token" => {
                let tokens = h.get_str_array("tokenizer.ggml.tokens").unwrap();
                let t = if key == "first_token" { tokens.first() } else { tokens.last() };
                assert_eq!(t.unwrap(), &unhex(value), "{stem}: {key}");
            }
            _ => {}
        }
    }

    // Every tensor's type, dims and absolute byte range.
    let rows = read_tsv(&golden.join("tensors.tsv"));
    assert_eq!(rows.len(), h.tensors().len());
    for (row, info) in rows.iter().zip(h.tensors()) {
        assert_eq!(info.name, row[0], "{stem}: tensor order");
        assert_eq!(info.ggml_type.id().to_string(), row[1], "{stem}: {} type", info.name);
        assert_eq!(info.ggml_type.name(), row[2], "{stem}: {} type name", info.name);
        let dims: Vec<u64> = row[3].split(',').map(|d| d.parse().unwrap()).collect();
        assert_eq!(info.dims, dims, "{stem}: {} dims", info.name);
        let start: u64 = row[4].parse().unwrap();
        let len: u64 = row[5].parse().unwrap();
        assert_eq!(h.tensor_range(&info.name).unwrap(), start..start + len, "{stem}: {} range", info.name);
    }
    assert!(h.total_file_bytes() <= file_len);
    assert!(file_len - h.total_file_bytes() < h.alignment(), "{stem}: unexplained trailing bytes");

    // Decoded slices against gguf.quants.dequantize, bit for bit.
    let mut types = Vec::new();
    let goldens = read_tsv(&golden.join("goldens.tsv"));
    for row in &goldens {
        let (name, ty) = (&row[0], type_by_name(&row[1]));
        let start: u64 = row[2].parse().unwrap();
        let n_bytes: usize = row[3].parse().unwrap();
        let n_elements: usize = row[4].parse().unwrap();
        let info = h.tensor(name).unwrap_or_else(|| panic!("{stem}: no tensor {name}"));
        assert_eq!(info.ggml_type, ty);
        assert_eq!(h.tensor_range(name).unwrap().start, start);

        let mut buf = vec![0u8; n_bytes];
        file.seek(SeekFrom::Start(start)).unwrap();
        file.read_exact(&mut buf).unwrap();
        let ours = dequantize_to_vec(ty, &buf, n_elements).unwrap_or_else(|e| panic!("{stem}: {name}: {e}"));
        assert_bits_eq(&format!("{stem}: {name} ({ty})"), &ours, &read_f32s(&golden.join(&row[6])));
        types.push(ty.name());
    }
    types.dedup();
    println!(
        "{stem}: {} tensors, header {} bytes in {fetches} fetch(es), {} goldens bit-exact ({})",
        h.tensors().len(),
        h.header_len(),
        goldens.len(),
        types.join(", ")
    );
    goldens.len()
}

#[test]
fn real_models_match_gguf_py() {
    let Some(dir) = models_dir() else { return };
    let mut models: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("HEARTH_MODELS_DIR={}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    models.sort();
    assert!(!models.is_empty(), "no .gguf files in {} (run tools/fetch_models.sh)", dir.display());
    let checked: usize = models.iter().map(|m| check_model(&dir, m)).sum();
    assert!(checked > 0);
}

#[test]
fn synthetic_blocks_match_gguf_py() {
    let Some(dir) = models_dir() else { return };
    let golden = dir.join("golden").join("synthetic");
    let rows = read_tsv(&golden.join("synthetic.tsv"));
    let mut seen = Vec::new();
    for row in &rows {
        let ty = type_by_name(&row[0]);
        let n: usize = row[1].parse().unwrap();
        let raw = fs::read(golden.join(&row[2])).unwrap();
        let ours = dequantize_to_vec(ty, &raw, n).unwrap_or_else(|e| panic!("{ty}: {e}"));
        assert_bits_eq(&format!("synthetic {ty}"), &ours, &read_f32s(&golden.join(&row[3])));
        seen.push(ty);
    }
    // Every format the decoder claims must have been checked against the reference.
    for ty in GgmlType::all().filter(|t| t.is_supported_for_decode()) {
        assert!(seen.contains(&ty), "no synthetic golden for {ty}");
    }
    println!("synthetic: {} formats bit-exact", seen.len());
}
