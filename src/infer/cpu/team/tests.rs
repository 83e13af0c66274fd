use std::cell::RefCell;

use futures::executor::block_on;

use super::*;
use crate::gguf::GgmlType;
use crate::infer::cpu::quant::random_blocks;
use crate::rng::Rng;

/// Shard workers played in process: `start` runs every shard at once through the same
/// [`Shard`] code and the same [`Layout`] offsets a worker uses, into a byte buffer standing for
/// the shared one.
struct Local {
    parts: usize,
    shards: RefCell<Vec<Shard>>,
    shared: RefCell<Vec<u8>>,
    layout: std::cell::Cell<Layout>,
    /// (rows, n) of the running job.
    job: std::cell::Cell<(usize, usize)>,
    jobs: std::cell::Cell<usize>,
    /// Plays a shard that stopped answering.
    broken: std::cell::Cell<bool>,
}

impl Local {
    fn new(parts: usize) -> Local {
        Local {
            parts,
            shards: RefCell::new((1..parts).map(|_| Shard::new()).collect()),
            shared: RefCell::new(Vec::new()),
            layout: Default::default(),
            job: Default::default(),
            jobs: Default::default(),
            broken: Default::default(),
        }
    }
}

fn f32s_at(bytes: &mut [u8], offset: usize, values: &[f32]) {
    for (i, v) in values.iter().enumerate() {
        bytes[offset + 4 * i..offset + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
}

impl Peers for Local {
    fn parts(&self) -> usize {
        self.parts
    }

    fn add_weight(&self, part: usize, id: u32, ty: GgmlType, rows: usize, cols: usize, bytes: &[u8]) {
        self.shards.borrow_mut()[part - 1].add(id, ty, rows, cols, bytes).unwrap();
    }

    fn serve(&self, layout: Layout) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>> {
        self.layout.set(layout);
        *self.shared.borrow_mut() = vec![0; layout.bytes()];
        Box::pin(async { Ok(()) })
    }

    fn start(&self, id: u32, rows: usize, n: usize, acts: &QuantActs) {
        let layout = self.layout.get();
        assert!(n <= layout.tokens, "a job of {n} tokens in a buffer for {}", layout.tokens);
        let mut shared = self.shared.borrow_mut();
        let (qs, d, sum) = acts.parts();
        let cols = qs.len() / n;
        assert!(layout.d() >= layout.qs() + qs.len() && layout.out() >= layout.sum() + 4 * sum.len());
        for (k, shard) in self.shards.borrow_mut().iter_mut().enumerate() {
            let part = k + 1;
            let (sq, sd, ss) = shard.acts_mut(n, cols);
            sq.copy_from_slice(qs);
            sd.copy_from_slice(d);
            ss.copy_from_slice(sum);
            let mine = part_rows(rows, self.parts, part);
            assert_eq!(shard.rows(id), mine.len());
            let mut out = vec![0f32; mine.len() * n];
            shard.run(id, n, &mut out);
            let at = layout.out_of(rows, self.parts, part, n);
            assert!(at + 4 * out.len() <= layout.bytes());
            f32s_at(&mut shared, at, &out);
        }
        self.job.set((rows, n));
        self.jobs.set(self.jobs.get() + 1);
    }

    fn finish(&self, out: &mut [f32]) {
        let (rows, n) = self.job.get();
        let layout = self.layout.get();
        assert_eq!(out.len(), (rows - part_rows(rows, self.parts, 0).end) * n);
        let shared = self.shared.borrow();
        let at = layout.out();
        for (i, o) in out.iter_mut().enumerate() {
            *o = f32::from_le_bytes(shared[at + 4 * i..at + 4 * i + 4].try_into().unwrap());
        }
    }

    fn broken(&self) -> bool {
        self.broken.get()
    }
}

#[test]
fn a_shard_that_stopped_answering_fails_the_next_read() {
    struct Shared(std::rc::Rc<Local>);
    impl Peers for Shared {
        fn parts(&self) -> usize {
            self.0.parts()
        }
        fn add_weight(&self, part: usize, id: u32, ty: GgmlType, rows: usize, cols: usize, bytes: &[u8]) {
            self.0.add_weight(part, id, ty, rows, cols, bytes)
        }
        fn serve(&self, layout: Layout) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>> {
            self.0.serve(layout)
        }
        fn start(&self, id: u32, rows: usize, n: usize, acts: &QuantActs) {
            self.0.start(id, rows, n, acts)
        }
        fn finish(&self, out: &mut [f32]) {
            self.0.finish(out)
        }
        fn broken(&self) -> bool {
            self.0.broken()
        }
    }
    let local = std::rc::Rc::new(Local::new(2));
    let cpu = Cpu::with_peers(Box::new(Shared(local.clone())));
    let x = cpu.upload_f32(&[1.0, 2.0]).unwrap();
    let ids = cpu.alloc_ids(1).unwrap();
    assert_eq!(block_on(cpu.read(&x, 0, 2)).unwrap(), vec![1.0, 2.0]);
    local.broken.set(true);
    let e = block_on(cpu.read(&x, 0, 2)).unwrap_err();
    assert!(matches!(&e, InferError::Device(m) if m.contains("stopped answering")), "{e}");
    assert!(block_on(cpu.read_ids(&ids, 1)).is_err(), "ids too");
}

#[test]
fn parts_cover_every_row_once_in_order() {
    for rows in [1usize, 2, 7, 576, 1536, 49152] {
        for parts in 1..=5 {
            let ranges: Vec<_> = (0..parts).map(|k| part_rows(rows, parts, k)).collect();
            assert_eq!(ranges[0].start, 0);
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, w[1].start, "rows {rows} parts {parts}");
            }
            assert_eq!(ranges[parts - 1].end, rows);
            let per = rows.div_ceil(parts);
            assert!(ranges.iter().all(|r| r.len() <= per));
        }
    }
    assert_eq!(part_rows(10, 4, 3), 9..10);
    assert_eq!(part_rows(2, 4, 3), 2..2);
}

#[test]
fn the_layout_keeps_regions_apart_and_aligned() {
    let mut l = Layout { tokens: 3, ..Layout::default() };
    l.include(49152, 576, 2);
    l.include(1536, 576, 2);
    l.include(576, 1536, 2);
    assert_eq!((l.cols, l.out_rows), (1536, 24576));
    assert!(l.qs() >= 4 * 5, "the header's words come first");
    assert_eq!(l.d() % 16, 0);
    assert!(l.d() >= l.qs() + 3 * 1536);
    assert_eq!(l.sum(), l.d() + 3 * 1536 / 32 * 4);
    assert!(l.out() >= l.sum() + 3 * 1536 / 32 * 4 && l.out().is_multiple_of(16));
    assert_eq!(l.bytes(), l.out() + 3 * 24576 * 4);
    // Part k's outputs follow part k-1's, the first right at the region's start.
    assert_eq!(l.out_of(1000, 3, 1, 2), l.out());
    assert_eq!(l.out_of(1000, 3, 2, 2), l.out() + 334 * 2 * 4);
    assert!(l.out_of(49152, 2, 1, 3) + 24576 * 3 * 4 <= l.bytes());
}

#[test]
fn only_large_quantized_matrices_are_split() {
    assert!(is_sharded(1536, 576, 2, true));
    assert!(!is_sharded(1536, 576, 1, true), "one part");
    assert!(!is_sharded(1536, 576, 2, false), "no quantized kernel");
    assert!(!is_sharded(192, 576, 2, true), "too small to pay for the wake-up");
}

/// A split product equals the one-thread product bit for bit, for every format, for decode
/// (one token) and prefill (several, in jobs smaller than the batch), with the embedding table
/// kept whole on the calling side and the shards' bytes counted.
#[test]
fn split_products_equal_one_thread_bit_for_bit() {
    let mut rng = Rng::new(12);
    for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K] {
        let (rows, cols) = (1030usize, 512usize);
        let bytes = random_blocks(&mut rng, ty, rows, cols);
        for parts in [2usize, 3] {
            let one = Cpu::with_options(super::super::CpuOptions { exact: false, threads: 1 });
            let w1 = one.upload_weight("blk.0.ffn_up.weight", ty, rows, cols, &bytes).unwrap();
            let local = Box::new(Local::new(parts));
            let split = Cpu::with_peers(local);
            let ws = split.upload_weight("blk.0.ffn_up.weight", ty, rows, cols, &bytes).unwrap();
            let embd = split.upload_weight("token_embd.weight", ty, rows, cols, &bytes).unwrap();
            assert_eq!(split.weight_bytes(&ws), bytes.len() as u64);
            let own = part_rows(rows, parts, 0).end;
            assert_eq!(ws.bytes.len(), own * ws.row_bytes, "the calling side keeps its rows only");
            assert_eq!(embd.bytes.len(), bytes.len(), "the embedding table stays whole");
            let shard_bytes = (rows - own) * ws.row_bytes;
            assert_eq!(split.resident_bytes(), (own * ws.row_bytes + shard_bytes + bytes.len() + shard_bytes) as u64);
            block_on(split.serve(4)).unwrap();
            assert_eq!(split.threads(), parts);
            for n in [1usize, 3, 9] {
                let x = rng.signed_f32s(n * cols);
                let xb1 = one.upload_f32(&x).unwrap();
                let xbs = split.upload_f32(&x).unwrap();
                let (o1, os, oe) =
                    (one.alloc(n * rows).unwrap(), split.alloc(n * rows).unwrap(), split.alloc(n * rows).unwrap());
                one.matmul(&xb1, &w1, n, &o1);
                split.matmul(&xbs, &ws, n, &os);
                split.matmul(&xbs, &embd, n, &oe);
                let bits = |b: &super::super::CpuBuf| b.borrow().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&o1), bits(&os), "{ty} parts {parts} n {n}");
                assert_eq!(bits(&o1), bits(&oe), "{ty} parts {parts} n {n} (embedding)");
            }
        }
    }
}
