//! The loader over hand-made models: progress cadence, pieces, cancellation at every kind of
//! point, a failing source, the header loop, and the loaded model against a direct upload.

use std::cell::{Cell, RefCell};

use futures::executor::block_on;

use super::*;
use crate::gguf::GgmlType;
use crate::gguf::corpus::{Builder, T_F32};
use crate::infer::Cpu;

/// A llama with n_embd 64, 4 heads over 2 KV heads, n_ff 128, a 512-token vocabulary and two
/// layers, in F32 with small pseudo-random weights: ~540 KiB of tensors, the token embedding
/// and the output matrix (128 KiB each) larger than the 64 KiB smallest piece.
fn tiny_llama(n_vocab: usize) -> Vec<u8> {
    let (e, kv, ff, v) = (64u64, 32u64, 128u64, n_vocab as u64);
    let tokens: Vec<String> = (0..n_vocab).map(|i| format!("tok{i}")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mut b = Builder::new().kv_str("general.architecture", "llama");
    for (k, x) in [
        ("context_length", 64),
        ("embedding_length", e as u32),
        ("block_count", 2),
        ("feed_forward_length", ff as u32),
        ("attention.head_count", 4),
        ("attention.head_count_kv", 2),
    ] {
        b = b.kv_u32(&format!("llama.{k}"), x);
    }
    b = b
        .kv("llama.attention.layer_norm_rms_epsilon", T_F32, &1e-5f32.to_le_bytes())
        .kv("llama.rope.freq_base", T_F32, &1e4f32.to_le_bytes())
        .kv_str_array("tokenizer.ggml.tokens", &tokens);
    let mut tensors: Vec<(String, Vec<u64>)> = vec![("token_embd.weight".into(), vec![e, v])];
    for il in 0..2 {
        for (name, dims) in [
            ("attn_norm.weight", vec![e]),
            ("attn_q.weight", vec![e, e]),
            ("attn_k.weight", vec![e, kv]),
            ("attn_v.weight", vec![e, kv]),
            ("attn_output.weight", vec![e, e]),
            ("ffn_norm.weight", vec![e]),
            ("ffn_gate.weight", vec![e, ff]),
            ("ffn_up.weight", vec![e, ff]),
            ("ffn_down.weight", vec![ff, e]),
        ] {
            tensors.push((format!("blk.{il}.{name}"), dims));
        }
    }
    tensors.push(("output_norm.weight".into(), vec![e]));
    tensors.push(("output.weight".into(), vec![e, v]));
    let mut offset = 0;
    for (name, dims) in &tensors {
        b = b.tensor(name, dims, GgmlType::F32, offset);
        offset += (dims.iter().product::<u64>() * 4).next_multiple_of(32);
    }
    let mut file = b.data(offset).build();
    let header = GgufHeader::parse_complete(&file).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for (name, dims) in &tensors {
        let range = header.tensor_range(name).unwrap();
        for at in (range.start..range.end).step_by(4) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let value = if dims.len() == 1 { 1.0 + 0.2 * noise } else { 0.4 * noise };
            file[at as usize..at as usize + 4].copy_from_slice(&value.to_le_bytes());
        }
    }
    file
}

/// Bytes in memory served like a network body: chunk by chunk, each read recorded, and
/// optionally failing at one read.
struct Chunked {
    bytes: Vec<u8>,
    chunk: u64,
    reads: RefCell<Vec<Range<u64>>>,
    fail_at: Option<usize>,
}

impl Chunked {
    fn new(bytes: Vec<u8>) -> Chunked {
        Chunked { bytes, chunk: 1024, reads: RefCell::new(Vec::new()), fail_at: None }
    }
}

impl ByteSource for Chunked {
    type Error = String;

    fn file_len(&self) -> Option<u64> {
        Some(self.bytes.len() as u64)
    }

    async fn read(&self, range: Range<u64>, received: &dyn Fn(u64)) -> Result<Vec<u8>, String> {
        let n = self.reads.borrow().len();
        self.reads.borrow_mut().push(range.clone());
        if self.fail_at == Some(n) {
            return Err(format!("connection reset at read {n}"));
        }
        let want = range.end - range.start;
        let mut got = 0;
        while got < want {
            got = (got + self.chunk).min(want);
            received(got);
        }
        Ok(self.bytes[range.start as usize..range.end as usize].to_vec())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Event {
    Progress(u64, u64),
    Resident(u64),
}

/// Records what the loader reports; says "stop" once it has been asked `cancel_after` times.
#[derive(Default)]
struct Recorder {
    events: RefCell<Vec<Event>>,
    asked: Cell<usize>,
    cancel_after: Option<usize>,
}

impl LoadEvents for Recorder {
    fn upload_progress(&self, loaded: u64, total: u64) {
        self.events.borrow_mut().push(Event::Progress(loaded, total));
    }
    fn resident(&self, bytes: u64) {
        self.events.borrow_mut().push(Event::Resident(bytes));
    }
    fn cancelled(&self) -> bool {
        self.asked.set(self.asked.get() + 1);
        self.cancel_after.is_some_and(|n| self.asked.get() > n)
    }
}

impl Recorder {
    fn progress(&self) -> Vec<(u64, u64)> {
        self.events
            .borrow()
            .iter()
            .filter_map(|e| match e {
                Event::Progress(l, t) => Some((*l, *t)),
                Event::Resident(_) => None,
            })
            .collect()
    }
}

fn setup(file: &[u8]) -> (GgufHeader, ModelConfig) {
    let header = block_on(read_header_from(file)).unwrap();
    let cfg = ModelConfig::from_gguf(&header).unwrap();
    (header, cfg)
}

/// Eight greedy tokens and the logits of a prompt.
fn run(model: &mut Model<Cpu>) -> (Vec<u32>, Vec<f32>) {
    let logits = block_on(model.all_logits(&[1, 7, 300])).unwrap();
    model.reset();
    let mut ids = vec![block_on(model.next_greedy(&[1, 7, 300])).unwrap()];
    for _ in 0..7 {
        ids.push(block_on(model.next_greedy(&[*ids.last().unwrap()])).unwrap());
    }
    (ids, logits)
}

#[test]
fn progress_moves_every_percent_and_large_tensors_arrive_in_pieces() {
    let file = tiny_llama(512);
    let (header, cfg) = setup(&file);
    let source = Chunked::new(file.clone());
    let events = Recorder::default();
    let cpu = Cpu::new();
    let weights = block_on(load_weights_from(&cpu, &cfg, &header, &source, &events)).unwrap();
    let total: u64 = WeightsBuilder::<Cpu>::new(&cfg, &header).unwrap().needed_bytes();
    assert!(total > 500 << 10, "{total}");

    let progress = events.progress();
    assert_eq!(progress[0], (0, total));
    assert_eq!(*progress.last().unwrap(), (total, total));
    let mut gap = 0f64;
    for w in progress.windows(2) {
        assert!(w[1].0 >= w[0].0, "progress never goes back: {w:?}");
        gap = gap.max((w[1].0 - w[0].0) as f64 * 100.0 / total as f64);
    }
    assert!(gap <= 1.0, "largest progress step {gap:.2}%");
    assert!(progress.len() >= 100, "{} progress reports", progress.len());

    // Resident bytes: first the baseline, last what the weights hold, and at least every 5%
    // of the upload in between (measured at the progress reported before each).
    let log = events.events.borrow().clone();
    assert_eq!(log[0], Event::Resident(0), "resident comes before the progress of the same moment");
    assert_eq!(log[1], Event::Progress(0, total));
    assert_eq!(log[log.len() - 2], Event::Resident(cpu.allocated_bytes()));
    let mut at = 0u64;
    let mut last_resident_at = 0u64;
    for e in &log {
        match e {
            Event::Progress(l, _) => at = *l,
            Event::Resident(_) => {
                assert!((at - last_resident_at) as f64 * 100.0 / total as f64 <= 5.0, "resident gap at {at}");
                last_resident_at = at;
            }
        }
    }

    // File order, no byte twice, and the 128 KiB tensors in pieces of at most 64 KiB.
    let reads = source.reads.borrow();
    for w in reads.windows(2) {
        assert!(w[1].start >= w[0].end, "reads in file order: {w:?}");
    }
    assert!(reads.iter().all(|r| r.end - r.start <= MIN_PIECE_BYTES));
    let embd = header.tensor_range("token_embd.weight").unwrap();
    let pieces: Vec<_> = reads.iter().filter(|r| r.start >= embd.start && r.end <= embd.end).collect();
    assert_eq!(pieces.len(), 2, "{pieces:?}");
    assert_eq!((pieces[0].start, pieces[1].end), (embd.start, embd.end));
    drop(weights);
    assert_eq!(cpu.allocated_bytes(), 0, "dropping the weights gives every byte back");
}

#[test]
fn the_loaded_model_matches_a_direct_upload_token_for_token() {
    let file = tiny_llama(512);
    let (header, cfg) = setup(&file);
    // The upload without the loader: every tensor's bytes at once, straight into the builder.
    let direct = {
        let cpu = Cpu::new();
        let mut builder = WeightsBuilder::new(&cfg, &header).unwrap();
        for info in builder.needed().to_vec() {
            builder.add(&cpu, &info, header.tensor_bytes(&file, &info.name).unwrap()).unwrap();
        }
        let weights = builder.finish().unwrap();
        run(&mut Model::new(cpu, cfg.clone(), weights, Shape::for_context(64)).unwrap())
    };
    let source = Chunked::new(file.clone());
    let mut streamed =
        block_on(load_model(Cpu::new(), &cfg, &header, Shape::for_context(64), &source, &Recorder::default())).unwrap();
    assert_eq!(run(&mut streamed), direct);

    let path = std::env::temp_dir().join(format!("hearth-loader-test-{}.gguf", std::process::id()));
    std::fs::write(&path, &file).unwrap();
    let on_disk = FileSource::open(&path).unwrap();
    let from_file = block_on(async {
        let header = read_header_from(&on_disk).await?;
        load_model(Cpu::new(), &cfg, &header, Shape::for_context(64), &on_disk, &()).await
    });
    std::fs::remove_file(&path).unwrap();
    assert_eq!(run(&mut from_file.unwrap()), direct);

    let cpu = Cpu::new();
    let weights = load_weights(&cpu, &cfg, &header, &file).unwrap();
    assert_eq!(run(&mut Model::new(cpu, cfg, weights, Shape::for_context(64)).unwrap()), direct);
    assert!(direct.0.iter().collect::<std::collections::HashSet<_>>().len() > 1, "{:?}", direct.0);
}

#[test]
fn cancellation_anywhere_leaves_no_model_and_the_memory_where_it_was() {
    let file = tiny_llama(512);
    let (header, cfg) = setup(&file);
    // How many times a whole load asks.
    let full = Recorder::default();
    block_on(load_weights_from(&Cpu::new(), &cfg, &header, &*file, &full)).unwrap();
    let asks = full.asked.get();
    let tensors = WeightsBuilder::<Cpu>::new(&cfg, &header).unwrap().needed().len();
    // Once per piece: one per tensor, two for each of the 128 KiB matrices.
    assert_eq!(asks, tensors + 2, "asked before every piece");
    for n in [0, 1, 2, 5, asks / 3, asks / 2, asks - 2, asks - 1] {
        let cpu = Cpu::new();
        // Something else on the same compute, kept throughout.
        let other = cpu.upload_f32(&[1.0; 1000]).unwrap();
        let baseline = cpu.allocated_bytes();
        let source = Chunked::new(file.clone());
        let events = Recorder { cancel_after: Some(n), ..Recorder::default() };
        let result = block_on(load_weights_from(&cpu, &cfg, &header, &source, &events));
        assert!(matches!(result, Err(LoadError::Cancelled)), "cancelled after {n} asks");
        assert_eq!(cpu.allocated_bytes(), baseline, "cancelled after {n} of {asks} asks");
        let last = events.progress().last().copied().unwrap();
        assert!(last.0 < last.1, "cancelled after {n}: progress stops short of the end ({last:?})");
        drop(other);
        assert_eq!(cpu.allocated_bytes(), 0);
    }
}

#[test]
fn a_source_failing_mid_load_is_a_typed_error_and_frees_the_upload() {
    let file = tiny_llama(512);
    let (header, cfg) = setup(&file);
    for fail_at in [0, 1, 4, 12] {
        let cpu = Cpu::new();
        let source = Chunked { fail_at: Some(fail_at), ..Chunked::new(file.clone()) };
        let result = block_on(load_model(Cpu::new(), &cfg, &header, Shape::for_context(64), &source, &()));
        let err = result.err().expect("the load fails");
        assert_eq!(err, LoadError::Source(format!("connection reset at read {fail_at}")));
        assert!(err.to_string().contains("connection reset"), "{err}");
        let result = block_on(load_weights_from(
            &cpu,
            &cfg,
            &header,
            &Chunked { fail_at: Some(fail_at), ..Chunked::new(file.clone()) },
            &(),
        ));
        assert!(matches!(result, Err(LoadError::Source(_))));
        assert_eq!(cpu.allocated_bytes(), 0, "failing at read {fail_at}");
    }
    // A file cut short: the tensor that runs past the end is named, and nothing past the end is read.
    let cut = &file[..file.len() - 100];
    let result = block_on(load_weights_from(&Cpu::new(), &cfg, &header, cut, &()));
    match result {
        Err(LoadError::Format(GgufError::TensorOutOfBounds { tensor, .. })) => assert_eq!(tensor, "output.weight"),
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn the_header_loop_reads_more_until_a_large_header_parses() {
    // 90k tokens: a header of ~1.3 MB, more than the first read.
    let file = tiny_llama(90_000);
    let source = Chunked::new(file.clone());
    let header = block_on(read_header_from(&source)).unwrap();
    assert_eq!(header, GgufHeader::parse_complete(&file).unwrap());
    let reads = source.reads.borrow().clone();
    assert_eq!(reads[0], 0..HEADER_PROBE);
    assert!(reads.len() >= 2 && reads.len() <= 3, "{reads:?}");
    assert!(reads.windows(2).all(|w| w[1].start == w[0].end), "{reads:?}");

    // Only a header's worth of a file: the loop stops at the end of the file.
    let short = &file[..HEADER_PROBE as usize + 10];
    match block_on(read_header_from(short)) {
        Err(LoadError::Format(e)) => {
            assert!(matches!(e, GgufError::Truncated { .. } | GgufError::NeedMoreBytes { .. }), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // A source error is the source's.
    let failing = Chunked { fail_at: Some(1), ..Chunked::new(file) };
    assert_eq!(block_on(read_header_from(&failing)), Err(LoadError::Source("connection reset at read 1".into())));
}

/// A header that never ends, as a hostile server could claim one (no length known): 2^20
/// metadata keys, each an array of 2^24 bytes (every count at the GGUF reader's own caps).
fn endless_header(range: Range<u64>) -> Vec<u8> {
    const KV_HEAD: u64 = 8 + 9 + 4 + 4 + 8; // key length, key, value type, element type, count
    const KV: u64 = KV_HEAD + (1 << 24);
    let mut start = Vec::new();
    start.extend_from_slice(b"GGUF");
    start.extend_from_slice(&3u32.to_le_bytes());
    start.extend_from_slice(&0u64.to_le_bytes()); // tensors
    start.extend_from_slice(&(1u64 << 20).to_le_bytes()); // metadata keys
    let kv_head = |i: u64| {
        let mut b = Vec::new();
        b.extend_from_slice(&9u64.to_le_bytes());
        b.extend_from_slice(format!("k{i:08}").as_bytes());
        b.extend_from_slice(&9u32.to_le_bytes()); // array
        b.extend_from_slice(&0u32.to_le_bytes()); // of u8
        b.extend_from_slice(&(1u64 << 24).to_le_bytes());
        b
    };
    let at = start.len() as u64;
    let mut out = Vec::with_capacity((range.end - range.start) as usize);
    let mut head = (u64::MAX, Vec::new());
    for p in range {
        if p < at {
            out.push(start[p as usize]);
            continue;
        }
        let (i, q) = ((p - at) / KV, (p - at) % KV);
        if q >= KV_HEAD {
            out.push(0);
            continue;
        }
        if head.0 != i {
            head = (i, kv_head(i));
        }
        out.push(head.1[q as usize]);
    }
    out
}

#[test]
fn a_header_that_never_ends_stops_at_the_limit() {
    let reads = RefCell::new(Vec::new());
    let more = async |r: Range<u64>| {
        reads.borrow_mut().push(r.clone());
        Ok::<_, String>(endless_header(r))
    };
    match block_on(read_header(Vec::new(), None, more)) {
        Err(LoadError::Format(e @ GgufError::TooLarge { .. })) => {
            let GgufError::TooLarge { value, cap, .. } = e else { unreachable!() };
            assert_eq!(cap, MAX_HEADER_BYTES);
            assert!(value > MAX_HEADER_BYTES, "{value}");
            assert!(e.to_string().contains(&MAX_HEADER_BYTES.to_string()), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let reads = reads.into_inner();
    assert!(reads.iter().all(|r| r.end <= MAX_HEADER_BYTES), "{reads:?}");
    assert!(reads.windows(2).all(|w| w[1].start == w[0].end), "{reads:?}");

    // A known length does not lift the limit.
    let known =
        block_on(read_header(Vec::new(), Some(1 << 40), async |r: Range<u64>| Ok::<_, String>(endless_header(r))));
    assert!(matches!(known, Err(LoadError::Format(GgufError::TooLarge { cap: MAX_HEADER_BYTES, .. }))), "{known:?}");
}

#[test]
fn a_source_with_nothing_more_ends_the_header_loop() {
    // No length known and a body that ends inside the header: a typed error, not a loop asking
    // for the same range forever.
    let file = tiny_llama(90_000);
    let asked = Cell::new(0);
    let more = async |r: Range<u64>| {
        asked.set(asked.get() + 1);
        let end = (r.end as usize).min(HEADER_PROBE as usize);
        Ok::<_, String>(file.get(r.start as usize..end).unwrap_or_default().to_vec())
    };
    match block_on(read_header(Vec::new(), None, more)) {
        Err(LoadError::Format(GgufError::Truncated { what, offset, .. })) => {
            assert_eq!((what.as_str(), offset), ("header", HEADER_PROBE))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(asked.get(), 2);
}

#[test]
fn a_tensor_is_read_by_name_and_decoded_and_a_huge_one_is_refused_before_any_read() {
    let file = tiny_llama(512);
    let header = GgufHeader::parse_complete(&file).unwrap();
    let range = header.tensor_range("output_norm.weight").unwrap();
    let bytes = block_on(read_tensor(&header, &file[..], "output_norm.weight")).unwrap();
    assert_eq!(bytes, file[range.start as usize..range.end as usize]);
    let values = block_on(dequantize_tensor(&header, &file[..], "output_norm.weight")).unwrap();
    assert_eq!(values.len(), 64);
    assert_eq!(values[0].to_le_bytes(), bytes[..4]);
    let missing = block_on(read_tensor(&header, &file[..], "nope"));
    assert_eq!(missing, Err(LoadError::Format(GgufError::MissingTensor("nope".into()))));
    assert!(matches!(block_on(dequantize_tensor(&header, &file[..], "nope")), Err(LoadError::Format(_))));

    // 2^29 elements: refused from the header alone (the source has none of its bytes).
    let huge = Builder::new().tensor("huge", &[1 << 15, 1 << 14], GgmlType::F32, 0).build();
    let header = GgufHeader::parse(&huge).unwrap();
    let e = block_on(dequantize_tensor(&header, &huge[..], "huge")).unwrap_err();
    let LoadError::Model(e) = e else { panic!("{e:?}") };
    assert_eq!(crate::error::Coded::code(&e), crate::error::ErrorCode::TensorTooLarge);
    assert_eq!(
        e.to_string(),
        "huge has 536870912 elements; dequantize() decodes at most 268435456 (1 GiB of f32) at once."
    );
}

#[test]
fn a_load_error_says_the_code_message_and_fields_of_what_failed() {
    use crate::error::{Coded, ErrorCode};
    let format: LoadError<InferError> = LoadError::Format(GgufError::MissingTensor("x".into()));
    assert_eq!(format.code(), Coded::code(&GgufError::MissingTensor("x".into())));
    assert_eq!(format.message(), Coded::message(&GgufError::MissingTensor("x".into())));
    let source: LoadError<InferError> = LoadError::Source(InferError::invalid("k", "bad k"));
    assert_eq!(source.code(), ErrorCode::InvalidParams);
    assert_eq!(source.details(), [("field", crate::error::Detail::from("k"))]);
    let cancelled: LoadError<InferError> = LoadError::Cancelled;
    assert_eq!(
        (cancelled.code(), cancelled.message()),
        (ErrorCode::Aborted, "The operation was cancelled.".to_owned())
    );
}
