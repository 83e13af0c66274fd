//! Native benchmark of hearth's GGUF reader, with gguf-py 0.19 (numpy) as the peer.
//!
//! ```text
//! HEARTH_MODELS_DIR=models tools/bench_gguf.sh
//! ```
//!
//! For every `*.gguf` in `HEARTH_MODELS_DIR` it times
//! - header parsing: `GgufHeader::parse_complete` on the file's bytes in memory, median of
//!   `HEARTH_BENCH_HEADER_RUNS` (20); the peer is the construction of `gguf.GGUFReader` on the
//!   same file (it mmaps, so no read either);
//! - decoding: for each block format, the largest tensor of that format in the models (whole
//!   rows, capped at `HEARTH_BENCH_MAX_MB`, 32 MiB; only tensors of at least 1 MiB count), and
//!   for every format a synthetic tensor of `HEARTH_BENCH_SYNTH_MELEM` (8) Mi elements of random
//!   blocks with finite, normal scales (the same size for all formats, so rows compare; it also
//!   covers the formats no model has). Timed as `dequantize_to_vec`, median of
//!   `HEARTH_BENCH_RUNS` (7) after one warm-up. The peer decodes the same bytes (read from the
//!   same file offsets) with `gguf.quants.dequantize`, reshaped into rows as llama.cpp's tools do.
//!
//! `GGUFReader` takes seconds per model (it builds numpy views of every vocabulary string), so the
//! peer's header parse is the median of `HEARTH_BENCH_PEER_HEADER_RUNS` (3) instead of 20.
//!
//! Throughput is MB/s of *input* (quantised bytes, 10^6 bytes) and millions of elements per
//! second. The peer runs as `tools/bench_gguf_peer.py PLAN.json` (python from `HEARTH_PYTHON`,
//! default `python3`) and prints JSON; without it the table has hearth's columns only.
//! Single-threaded on both sides (numpy's dequantize is single-threaded).

// The GGUF reader and what it names in its errors and its hostile-model corpus: the error
// vocabulary, the model configuration and the tokenizer.
#[allow(dead_code, unused_imports)]
#[path = "../../../src/error.rs"]
mod error;
#[allow(dead_code, unused_imports)]
#[path = "../../../src/gguf/mod.rs"]
mod gguf;
#[allow(dead_code, unused_imports)]
#[path = "../../../src/model/mod.rs"]
mod model;
#[allow(dead_code, unused_imports)]
#[path = "../../../src/tokenizer/mod.rs"]
mod tokenizer;
#[allow(dead_code)]
#[path = "../../../src/rng.rs"]
mod rng;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gguf::{GgmlType, GgufHeader, dequantize_to_vec};
use rng::Rng;

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
}

/// Median seconds of `runs` calls of `f`, after one untimed warm-up call.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    std::hint::black_box(f());
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// One decode measurement: `n_bytes` at `offset` of `path`, rows of `row_len` elements.
struct Case {
    label: String,
    ty: GgmlType,
    source: String,
    path: PathBuf,
    offset: u64,
    n_bytes: u64,
    n_elements: u64,
    row_len: u64,
}

/// Byte offsets of the f16 scale fields in a block (`block_q4_0` ... `block_q6_K`).
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 => &[0],
        Q4_1 | Q5_1 | Q4_K | Q5_K => &[0, 2],
        Q2_K => &[80, 82],
        Q3_K => &[108],
        Q6_K => &[208],
        _ => &[],
    }
}

/// A finite, normal f16 (|x| in [2^-6, 2^-4)): scales like a real model's, no subnormal slow path.
fn sane_f16(r: u64) -> u16 {
    (r as u16 & 0x83ff) | (9 << 10)
}

/// `n_elements` of random data of type `ty` whose float fields are all finite and normal.
fn synthetic(ty: GgmlType, n_elements: usize, rng: &mut Rng) -> Vec<u8> {
    let n_bytes = n_elements / ty.block_size() * ty.type_size();
    let mut bytes: Vec<u8> = (0..n_bytes).map(|_| rng.next_u64() as u8).collect();
    match ty {
        GgmlType::F32 => {
            for c in bytes.chunks_exact_mut(4) {
                let bits = (rng.next_u64() as u32 & 0x807f_ffff) | (120 << 23);
                c.copy_from_slice(&bits.to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for c in bytes.chunks_exact_mut(2) {
                c.copy_from_slice(&sane_f16(rng.next_u64()).to_le_bytes());
            }
        }
        GgmlType::BF16 => {
            for c in bytes.chunks_exact_mut(2) {
                let bits = (rng.next_u64() as u16 & 0x807f) | (120 << 7);
                c.copy_from_slice(&bits.to_le_bytes());
            }
        }
        _ => {
            for block in bytes.chunks_exact_mut(ty.type_size()) {
                for &off in f16_fields(ty) {
                    block[off..off + 2].copy_from_slice(&sane_f16(rng.next_u64()).to_le_bytes());
                }
            }
        }
    }
    bytes
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn main() {
    let models_dir = PathBuf::from(
        std::env::var_os("HEARTH_MODELS_DIR")
            .expect("set HEARTH_MODELS_DIR to a folder of .gguf files (tools/fetch_models.sh)"),
    );
    let header_runs = env_usize("HEARTH_BENCH_HEADER_RUNS", 20);
    let peer_header_runs = env_usize("HEARTH_BENCH_PEER_HEADER_RUNS", 3);
    let runs = env_usize("HEARTH_BENCH_RUNS", 7);
    let max_bytes = env_usize("HEARTH_BENCH_MAX_MB", 32) as u64 * (1 << 20);
    let synth_elems = env_usize("HEARTH_BENCH_SYNTH_MELEM", 8) << 20;
    let python = std::env::var("HEARTH_PYTHON").unwrap_or_else(|_| "python3".into());
    let scratch = std::env::temp_dir().join(format!("hearth-bench-gguf-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();

    let mut models: Vec<PathBuf> = std::fs::read_dir(&models_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", models_dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
        .collect();
    models.sort();
    assert!(!models.is_empty(), "no .gguf in {}", models_dir.display());

    // (a) header parse, and the largest tensor of each decodable format across the models.
    let mut header_rows = Vec::new();
    let mut best: Vec<Case> = Vec::new();
    for path in &models {
        let bytes = std::fs::read(path).unwrap();
        let h = GgufHeader::parse_complete(&bytes).unwrap();
        let secs = time(header_runs, || GgufHeader::parse_complete(&bytes).unwrap());
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        header_rows.push((stem.clone(), path.clone(), h.metadata().len(), h.tensors().len(), h.header_len(), secs));
        for t in h.tensors() {
            if !t.ggml_type.is_supported_for_decode() || t.size_bytes < 1 << 20 {
                continue;
            }
            let row_len = t.dims[0];
            let row_bytes = t.size_bytes / (t.n_elements / row_len);
            let rows = (max_bytes / row_bytes).clamp(1, t.n_elements / row_len);
            let case = Case {
                label: format!("{stem}:{}", t.name),
                ty: t.ggml_type,
                source: format!("{stem}: {} ({rows} rows of {row_len})", t.name),
                path: path.clone(),
                offset: h.data_offset() + t.offset,
                n_bytes: rows * row_bytes,
                n_elements: rows * row_len,
                row_len,
            };
            match best.iter_mut().find(|c| c.ty == t.ggml_type) {
                Some(c) if c.n_bytes >= case.n_bytes => {}
                Some(c) => *c = case,
                None => best.push(case),
            }
        }
    }
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for ty in GgmlType::all().filter(|t| t.is_supported_for_decode()) {
        let n = synth_elems - synth_elems % ty.block_size();
        let bytes = synthetic(ty, n, &mut rng);
        let path = scratch.join(format!("synthetic-{}.bin", ty.name()));
        std::fs::write(&path, &bytes).unwrap();
        best.push(Case {
            label: format!("synthetic:{}", ty.name()),
            ty,
            source: format!("synthetic ({} rows of 4096)", n / 4096),
            path,
            offset: 0,
            n_bytes: bytes.len() as u64,
            n_elements: n as u64,
            row_len: 4096,
        });
    }
    // By format, the real tensor (if any) before the synthetic one.
    best.sort_by_key(|c| (c.ty.id(), c.label.starts_with("synthetic")));

    // (b) hearth decode throughput.
    let mut hearth_secs = Vec::new();
    for c in &best {
        let file = std::fs::read(&c.path).unwrap();
        let data = &file[c.offset as usize..(c.offset + c.n_bytes) as usize];
        let n = c.n_elements as usize;
        // Same values as the peer's: checked bit for bit in tests/gguf_real.rs.
        let alloc = time(runs, || dequantize_to_vec(c.ty, data, n).unwrap());
        // The decoder alone: into one output buffer reused across runs (no allocation, no
        // page faults), which is how a loader that stages tensors would call it.
        let mut out = vec![0f32; n];
        let reuse = time(runs, || gguf::dequantize(c.ty, data, n, &mut out).unwrap());
        hearth_secs.push((alloc, reuse));
    }

    // (c) the peer, on the same files and byte ranges.
    let mut plan = String::from("{\"header_runs\": ");
    write!(plan, "{peer_header_runs}, \"runs\": {runs}, \"headers\": [").unwrap();
    for (i, row) in header_rows.iter().enumerate() {
        let sep = if i > 0 { ", " } else { "" };
        write!(plan, "{sep}{}", json_str(&row.1.to_string_lossy())).unwrap();
    }
    plan.push_str("], \"cases\": [");
    for (i, c) in best.iter().enumerate() {
        let sep = if i > 0 { ", " } else { "" };
        write!(
            plan,
            "{sep}{{\"label\": {}, \"type\": \"{}\", \"path\": {}, \"offset\": {}, \"n_bytes\": {}, \
             \"row_len\": {}}}",
            json_str(&c.label),
            c.ty.name(),
            json_str(&c.path.to_string_lossy()),
            c.offset,
            c.n_bytes,
            c.row_len
        )
        .unwrap();
    }
    plan.push_str("]}\n");
    let plan_path = scratch.join("plan.json");
    std::fs::write(&plan_path, plan).unwrap();
    let peer_script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/bench_gguf_peer.py");
    let peer: Option<serde_json::Value> = match Command::new(&python).arg(&peer_script).arg(&plan_path).output() {
        Ok(out) if out.status.success() => Some(serde_json::from_slice(&out.stdout).unwrap()),
        Ok(out) => {
            eprintln!("peer failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
            None
        }
        Err(e) => {
            eprintln!("peer not run ({python}: {e})");
            None
        }
    };
    let _ = std::fs::remove_dir_all(&scratch);
    let peer_header = |i: usize| peer.as_ref().and_then(|p| p["headers"][i]["median_s"].as_f64());
    let peer_case = |i: usize| peer.as_ref().and_then(|p| p["cases"][i]["median_s"].as_f64());
    let peer_view = |i: usize| peer.as_ref().and_then(|p| p["cases"][i]["view"].as_bool()).unwrap_or(false);

    // The machine.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':'])))
        .unwrap_or("unknown");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!("machine: {cpu}, {cores} cores, load average {}", load.join(" "));
    if let Some(p) = &peer {
        println!(
            "peer: gguf-py {} / numpy {} / Python {}",
            p["gguf"].as_str().unwrap_or("?"),
            p["numpy"].as_str().unwrap_or("?"),
            p["python"].as_str().unwrap_or("?")
        );
    }
    println!("hearth: src/gguf, release profile (opt-level 3, thin LTO), single thread\n");

    let ratio = |ours: f64, theirs: Option<f64>| theirs.map_or("-".into(), |t| format!("{:.1}x", t / ours));
    println!("## Header parse (hearth: median of {header_runs}; gguf-py: median of {peer_header_runs})\n");
    println!("| model | keys | tensors | header bytes | hearth ms | gguf-py GGUFReader ms | speed-up |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (i, (stem, _, keys, tensors, len, secs)) in header_rows.iter().enumerate() {
        let theirs = peer_header(i);
        println!(
            "| {stem} | {keys} | {tensors} | {len} | {:.2} | {} | {} |",
            secs * 1e3,
            theirs.map_or("-".into(), |t| format!("{:.1}", t * 1e3)),
            ratio(*secs, theirs)
        );
    }
    println!(
        "\n## Dequantize to f32 (median of {runs}; MB/s of input bytes; speed-up = gguf-py time / \
         hearth `dequantize_to_vec` time)\n"
    );
    println!(
        "| format | tensor | MB in | hearth MB/s | hearth Melem/s | hearth, reused buffer MB/s | \
         gguf-py MB/s | gguf-py Melem/s | speed-up |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, c) in best.iter().enumerate() {
        let (ours, reused) = hearth_secs[i];
        let theirs = peer_case(i);
        let mbs = |s: f64| c.n_bytes as f64 / s / 1e6;
        let meps = |s: f64| c.n_elements as f64 / s / 1e6;
        // gguf-py returns F32 data as a view of the input: nothing is decoded or copied.
        let view = peer_view(i);
        let peer_col = |f: &dyn Fn(f64) -> f64| match theirs {
            Some(_) if view => "(view)".to_owned(),
            Some(t) => format!("{:.0}", f(t)),
            None => "-".to_owned(),
        };
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
            c.ty,
            c.source,
            c.n_bytes as f64 / 1e6,
            mbs(ours),
            meps(ours),
            mbs(reused),
            peer_col(&mbs),
            peer_col(&meps),
            if view { "n/a".to_owned() } else { ratio(ours, theirs) }
        );
    }

    // Machine-readable figures for the browser bench's browser/native column.
    if let Some(path) = std::env::var_os("HEARTH_BENCH_JSON") {
        let headers: Vec<serde_json::Value> = header_rows
            .iter()
            .map(|(stem, _, _, _, _, secs)| serde_json::json!({ "model": stem.to_string(), "hearth_ms": secs * 1e3 }))
            .collect();
        let decode: Vec<serde_json::Value> = best
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let secs = hearth_secs[i].0;
                serde_json::json!({ "type": c.ty.name(), "source": c.source.to_string(), "hearth_mb_per_s": c.n_bytes as f64 / secs / 1e6 })
            })
            .collect();
        let doc = serde_json::json!({ "headers": headers, "decode": decode });
        if let Err(e) = std::fs::write(&path, doc.to_string()) {
            eprintln!("could not write {}: {e}", std::path::Path::new(&path).display());
        }
    }
}
