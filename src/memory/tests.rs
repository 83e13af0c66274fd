//! The budget arithmetic per tier, the requirement on hand-made and real headers, the limit
//! checks, LRU order, eviction planning, pinning, the reason texts and simulation.

use super::budget::{ASSUMED_SYSTEM_GB, DEFAULT_BUDGET_BYTES, DISCRETE_SHARE};
use super::*;
use crate::gguf::corpus::{Builder, T_F32};
use crate::gguf::{GgmlType, GgufError, GgufHeader};
use crate::infer::{KvCache, Shape};
use crate::model::ModelConfig;

// ---------------------------------------------------------------------------------------------
// Byte formatting

#[test]
fn bytes_are_formatted_for_people() {
    let cases = [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KB"),
        (96 * KIB, "96 KB"),
        (500 * MIB, "500 MB"),
        (128 * MIB, "128 MB"),
        (GIB, "1.0 GB"),
        (2 * GIB, "2.0 GB"),
        (GIB + GIB / 5, "1.2 GB"),
        (24 * GIB, "24 GB"),
        (9 * MIB + 1000 * KIB, "10 MB"),
    ];
    for (bytes, want) in cases {
        assert_eq!(format_bytes(bytes), want, "{bytes}");
    }
}

// ---------------------------------------------------------------------------------------------
// Budget

fn facts(vendor: &str, architecture: &str, description: &str, device_memory_gb: Option<f64>) -> AdapterFacts {
    AdapterFacts {
        vendor: vendor.into(),
        architecture: architecture.into(),
        description: description.into(),
        device_memory_gb,
        max_buffer_size: 256 * MIB,
        max_storage_buffer_binding_size: 128 * MIB,
        ..AdapterFacts::default()
    }
}

fn gb(x: f64) -> u64 {
    (x * GIB as f64) as u64
}

fn tier_of(b: &Budget) -> &str {
    match &b.estimated_from {
        EstimatedFrom::TierTable { tier } => tier,
        other => panic!("expected a tier, got {other:?}"),
    }
}

/// Every estimate keeps back exactly the margin.
fn assert_margin(b: &Budget) {
    assert_eq!(b.safety_margin, SAFETY_MARGIN);
    assert_eq!(b.bytes, (b.raw_bytes as f64 * (1.0 - SAFETY_MARGIN)) as u64, "{b:?}");
}

#[test]
fn integrated_gpus_get_half_of_device_memory() {
    let cases = [
        (facts("intel", "gen-12lp", "", Some(8.0)), "intel-integrated", 4.0),
        (facts("intel", "xe-lpg", "Intel(R) Arc(TM) Graphics", Some(8.0)), "intel-integrated", 4.0),
        (facts("", "", "Intel(R) UHD Graphics 620", Some(4.0)), "intel-integrated", 2.0),
        (facts("apple", "metal-3", "", Some(8.0)), "apple-unified", 4.0),
        (facts("", "", "Apple M2 Pro", Some(2.0)), "apple-unified", 1.0),
        (facts("amd", "rdna-3", "AMD Radeon(TM) Graphics", Some(8.0)), "amd-integrated-or-unknown", 4.0),
        // A bare `amd` + architecture may be an APU: planned as one.
        (facts("amd", "rdna-3", "", Some(8.0)), "amd-integrated-or-unknown", 4.0),
    ];
    for (f, tier, raw_gb) in cases {
        let b = Budget::estimate(&f);
        assert_eq!(tier_of(&b), tier, "{f:?}");
        assert_eq!(b.adapter_class, AdapterClass::Integrated, "{f:?}");
        assert_eq!(b.raw_bytes, gb(raw_gb), "{f:?}");
        assert_margin(&b);
    }
    let b = Budget::estimate(&facts("intel", "gen-12lp", "", Some(8.0)));
    assert_eq!(
        b.explanation,
        "Intel integrated GPU (tier intel-integrated) shares system memory: 50% of \
         navigator.deviceMemory 8.0 GB = 4.0 GB, less a 10% safety margin: 3.6 GB"
    );
}

#[test]
fn integrated_without_device_memory_assumes_a_small_machine() {
    // Safari and Firefox do not implement navigator.deviceMemory.
    let b = Budget::estimate(&facts("apple", "metal-3", "", None));
    assert_eq!(b.raw_bytes, gb(ASSUMED_SYSTEM_GB * 0.5));
    assert!(b.explanation.contains("an assumed 4.0 GB (no navigator.deviceMemory)"), "{}", b.explanation);
    assert_margin(&b);
}

#[test]
fn mobile_gpus_get_a_quarter_of_device_memory() {
    for f in [
        facts("arm", "valhall", "", Some(4.0)),
        facts("qualcomm", "adreno-7xx", "", Some(4.0)),
        facts("", "", "Mali-G710", Some(4.0)),
    ] {
        let b = Budget::estimate(&f);
        assert_eq!(tier_of(&b), "mobile-unified", "{f:?}");
        assert_eq!(b.raw_bytes, gb(1.0));
        assert_margin(&b);
    }
}

#[test]
fn discrete_gpus_get_a_conservative_vram_figure() {
    let cases = [
        ("NVIDIA GeForce RTX 4090", "nvidia-rtx-4090", 16.0),
        ("NVIDIA GeForce RTX 4060 Laptop GPU", "nvidia-rtx-40xx", 6.0),
        ("NVIDIA GeForce RTX 3090", "nvidia-rtx-3090", 24.0),
        ("NVIDIA GeForce RTX 3060", "nvidia-rtx-30xx", 4.0),
        ("NVIDIA GeForce GTX 1650", "nvidia-gtx-16xx", 4.0),
        ("AMD Radeon RX 7900 XTX", "amd-rx-7900", 16.0),
        ("AMD Radeon RX 7600", "amd-rx-7xxx", 8.0),
        ("AMD Radeon RX 6800 XT", "amd-rx-68xx-69xx", 12.0),
        ("AMD Radeon RX 580", "amd-rx-5xx-5xxx", 2.0),
        ("Intel(R) Arc(TM) A770 Graphics", "intel-arc-a7", 8.0),
        ("Intel(R) Arc(TM) B580 Graphics", "intel-arc-b", 10.0),
    ];
    for (description, tier, vram_gb) in cases {
        // deviceMemory plays no part for a discrete card.
        for dm in [None, Some(0.5), Some(8.0)] {
            let b = Budget::estimate(&facts("", "", description, dm));
            assert_eq!(tier_of(&b), tier, "{description}");
            assert_eq!(b.adapter_class, AdapterClass::Discrete);
            assert_eq!(b.raw_bytes, (gb(vram_gb) as f64 * DISCRETE_SHARE) as u64, "{description}");
            assert_margin(&b);
        }
    }
    // Browsers usually say only the vendor and architecture.
    let b = Budget::estimate(&facts("nvidia", "lovelace", "", Some(8.0)));
    assert_eq!(tier_of(&b), "nvidia-unknown-model");
    assert_eq!(b.raw_bytes, (gb(4.0) as f64 * DISCRETE_SHARE) as u64);
    assert_eq!(
        b.explanation,
        "NVIDIA GPU of unknown model (tier nvidia-unknown-model): at least 4.0 GB of VRAM, of \
         which 80% is planned on = 3.2 GB, less a 10% safety margin: 2.9 GB"
    );
    // Native wgpu reports PCI vendor ids.
    assert_eq!(tier_of(&Budget::estimate(&facts("0x10de", "", "", None))), "nvidia-unknown-model");
    assert_eq!(tier_of(&Budget::estimate(&facts("0x8086", "", "", None))), "intel-integrated");
}

#[test]
fn software_adapters_are_cpu_and_get_a_quarter_of_device_memory() {
    let swiftshader = AdapterFacts {
        vendor: "google".into(),
        architecture: "swiftshader".into(),
        device: "SwiftShader Device (Subzero)".into(),
        is_fallback_adapter: true,
        device_memory_gb: Some(8.0),
        ..AdapterFacts::default()
    };
    let lavapipe = AdapterFacts {
        vendor: "0x10005".into(),
        device: "llvmpipe (LLVM 15.0.7, 256 bits)".into(),
        ..AdapterFacts::default()
    };
    // `isFallbackAdapter` alone is enough, whatever the strings say.
    let fallback = AdapterFacts { is_fallback_adapter: true, vendor: "nvidia".into(), ..AdapterFacts::default() };
    for (f, raw) in [(swiftshader, gb(2.0)), (lavapipe, gb(1.0)), (fallback, gb(1.0))] {
        assert!(f.is_cpu(), "{f:?}");
        let b = Budget::estimate(&f);
        assert_eq!(tier_of(&b), "cpu-software");
        assert_eq!(b.adapter_class, AdapterClass::Cpu);
        assert_eq!(b.raw_bytes, raw, "{f:?}");
        assert_margin(&b);
    }
}

#[test]
fn unknown_adapters_get_the_default_or_a_quarter_of_device_memory() {
    let b = Budget::estimate(&facts("", "", "", None));
    assert_eq!(b.estimated_from, EstimatedFrom::Default);
    assert_eq!(b.adapter_class, AdapterClass::Unknown);
    assert_eq!(b.raw_bytes, DEFAULT_BUDGET_BYTES);
    assert_margin(&b);
    assert_eq!(
        b.explanation,
        "Unrecognised adapter and no navigator.deviceMemory: the default 2.0 GB = 2.0 GB, less a \
         10% safety margin: 1.8 GB"
    );

    for (dm, raw) in [(8.0, gb(2.0)), (4.0, gb(1.0)), (2.0, gb(0.5)), (0.25, gb(0.0625))] {
        let b = Budget::estimate(&facts("someone", "new-arch", "", Some(dm)));
        assert_eq!(b.estimated_from, EstimatedFrom::DeviceMemory);
        assert_eq!(b.raw_bytes, raw);
        // Never more than an integrated GPU would get from the same deviceMemory, nor more than
        // the default.
        let integrated = Budget::estimate(&facts("intel", "", "", Some(dm)));
        assert!(b.raw_bytes <= integrated.raw_bytes);
        assert!(b.raw_bytes <= DEFAULT_BUDGET_BYTES);
        assert_margin(&b);
    }
}

#[test]
fn a_probe_that_ran_out_of_memory_wins_and_a_capped_one_only_raises() {
    let mut f = facts("intel", "gen-12lp", "", Some(8.0));
    f.probe = Some(Probe { allocated_bytes: gb(2.0), hit_out_of_memory: true });
    let b = Budget::estimate(&f);
    assert_eq!(b.estimated_from, EstimatedFrom::Probe);
    assert_eq!(b.raw_bytes, gb(2.0));
    assert_margin(&b);
    assert_eq!(
        b.explanation,
        "An allocation probe ran out of memory after 2.0 GB = 2.0 GB, less a 10% safety margin: 1.8 GB"
    );

    // Stopped at a 1 GB cap: below the tier's 4 GB, so the tier stands.
    f.probe = Some(Probe { allocated_bytes: gb(1.0), hit_out_of_memory: false });
    let b = Budget::estimate(&f);
    assert_eq!(tier_of(&b), "intel-integrated");
    assert_eq!(b.raw_bytes, gb(4.0));

    // Stopped at a 6 GB cap: more than the tier says, so the probe stands.
    f.probe = Some(Probe { allocated_bytes: gb(6.0), hit_out_of_memory: false });
    let b = Budget::estimate(&f);
    assert_eq!(b.estimated_from, EstimatedFrom::Probe);
    assert_eq!(b.raw_bytes, gb(6.0));
    assert_margin(&b);
}

#[test]
fn an_override_is_exact_and_can_be_cleared() {
    let m = MemoryManager::new(&facts("intel", "gen-12lp", "", Some(8.0)));
    let estimated = m.budget();
    m.set_budget_bytes(3 * GIB);
    let b = m.budget();
    assert_eq!((b.bytes, b.raw_bytes, b.safety_margin), (3 * GIB, 3 * GIB, 0.0));
    assert_eq!(b.estimated_from, EstimatedFrom::Override);
    assert_eq!(b.adapter_class, AdapterClass::Integrated);
    assert_eq!(b.explanation, "Set by the application to 3.0 GB");
    assert_eq!(m.stats(None, None).estimated_from, EstimatedFrom::Override);
    m.clear_budget_override();
    assert_eq!(m.budget(), estimated);
}

#[test]
fn budgets_serialise_camel_case_with_a_tagged_source() {
    let b = Budget::estimate(&facts("intel", "gen-12lp", "", Some(8.0)));
    let v = serde_json::to_value(&b).unwrap();
    assert_eq!(v["estimatedFrom"], serde_json::json!({"source": "tierTable", "tier": "intel-integrated"}));
    assert_eq!(v["adapterClass"], "integrated");
    assert_eq!(v["safetyMargin"], 0.1);
    assert!(v["rawBytes"].is_u64());
    let v = serde_json::to_value(Budget::estimate(&facts("", "", "", None))).unwrap();
    assert_eq!(v["estimatedFrom"], serde_json::json!({"source": "default"}));
}

// ---------------------------------------------------------------------------------------------
// Requirement on hand-made headers

/// A llama-shaped model described by its header alone (no tensor data).
#[derive(Clone)]
struct Mini {
    n_embd: u64,
    n_head: u64,
    n_head_kv: u64,
    n_ff: u64,
    n_vocab: u64,
    n_layer: u64,
    context: u32,
    /// The type of every matrix; vectors are F32.
    matrix: GgmlType,
    extra: Vec<(String, Vec<u64>, GgmlType)>,
}

impl Mini {
    /// n_embd 64, 4 query heads over 2 KV heads of 16, n_ff 128, vocab 96, 2 layers, Q8_0.
    fn new() -> Mini {
        Mini {
            n_embd: 64,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 128,
            n_vocab: 96,
            n_layer: 2,
            context: 256,
            matrix: GgmlType::Q8_0,
            extra: Vec::new(),
        }
    }

    fn head_dim(&self) -> u64 {
        self.n_embd / self.n_head
    }

    fn tensors(&self) -> Vec<(String, Vec<u64>, GgmlType)> {
        let (e, ff, v) = (self.n_embd, self.n_ff, self.n_vocab);
        let (q, kv) = (self.n_head * self.head_dim(), self.n_head_kv * self.head_dim());
        let m = self.matrix;
        let f = GgmlType::F32;
        let mut t = vec![("token_embd.weight".to_owned(), vec![e, v], m)];
        for il in 0..self.n_layer {
            let p = |s: &str| format!("blk.{il}.{s}");
            t.push((p("attn_norm.weight"), vec![e], f));
            t.push((p("attn_q.weight"), vec![e, q], m));
            t.push((p("attn_k.weight"), vec![e, kv], m));
            t.push((p("attn_v.weight"), vec![e, kv], m));
            t.push((p("attn_output.weight"), vec![q, e], m));
            t.push((p("ffn_norm.weight"), vec![e], f));
            t.push((p("ffn_gate.weight"), vec![e, ff], m));
            t.push((p("ffn_up.weight"), vec![e, ff], m));
            t.push((p("ffn_down.weight"), vec![ff, e], m));
        }
        t.push(("output_norm.weight".to_owned(), vec![e], f));
        t.push(("output.weight".to_owned(), vec![e, v], m));
        t.extend(self.extra.iter().cloned());
        t
    }

    fn header(&self) -> GgufHeader {
        let mut b = Builder::new()
            .kv_str("general.architecture", "llama")
            .kv_u32("llama.context_length", self.context)
            .kv_u32("llama.embedding_length", self.n_embd as u32)
            .kv_u32("llama.block_count", self.n_layer as u32)
            .kv_u32("llama.feed_forward_length", self.n_ff as u32)
            .kv_u32("llama.attention.head_count", self.n_head as u32)
            .kv_u32("llama.attention.head_count_kv", self.n_head_kv as u32)
            .kv("llama.attention.layer_norm_rms_epsilon", T_F32, &1e-5f32.to_le_bytes());
        let mut offset = 0u64;
        for (name, dims, ty) in self.tensors() {
            b = b.tensor(&name, &dims, ty, offset);
            let n: u64 = dims.iter().product();
            offset += ty.byte_size(n).unwrap().next_multiple_of(32);
        }
        // The header alone, as a Range request would fetch it: tensor bounds are not checked.
        GgufHeader::parse(&b.header()).unwrap_or_else(|e| panic!("hand-made header: {e}"))
    }

    fn requirement(&self, context: u32, limits: &DeviceLimits) -> Requirement {
        self.requirement_with(context, 64, limits)
    }

    fn requirement_with(&self, context: u32, batch: u32, limits: &DeviceLimits) -> Requirement {
        Requirement::from_header(&self.header(), RequirementOptions { context, batch, kv: KvCache::F32 }, limits)
            .unwrap()
    }
}

/// Device bytes of a Q8_0 part of `rows` x `cols`: the `f16` scales moved to a word-aligned
/// array in front (`ceil(blocks / 2)` words), then 32 bytes of payload per block.
fn q8_0_part(rows: u64, cols: u64) -> u64 {
    let blocks = rows * cols / 32;
    blocks.div_ceil(2) * 4 + blocks * 32
}

#[test]
fn requirement_adds_weights_as_laid_out_kv_cache_and_activations() {
    let mini = Mini::new();
    let r = mini.requirement(128, &DeviceLimits::UNLIMITED);
    let (e, ff, v, l) = (64, 128, 96, 2);
    let (q, kv) = (64, 32);
    let layer = q8_0_part(q, e) + 2 * q8_0_part(kv, e) + q8_0_part(e, q) + 3 * q8_0_part(ff, e) + 2 * e * 4;
    let weights = 2 * q8_0_part(v, e) + l * layer + e * 4;
    assert_eq!(r.weight_bytes, weights);
    // Within 2 bytes per matrix of the GGUF data, vectors as f32 (they are f32 already here).
    let header = mini.header();
    let gguf: u64 = header.tensors().iter().map(|t| t.size_bytes).sum();
    let matrices = header.tensors().iter().filter(|t| t.dims.len() == 2).count() as u64;
    assert!(r.weight_bytes >= gguf && r.weight_bytes <= gguf + 2 * matrices, "{} vs {gguf}", r.weight_bytes);

    // K and V, every layer, f32.
    assert_eq!(r.kv_cache_bytes, 2 * l * 128 * kv * 4);
    // Activations are whatever `Shape::buffer_bytes` (the loader's figure) says beyond the cache:
    // at least the logits row and the 64-token batch's n_ff buffers.
    let b = 64;
    assert!(r.activation_bytes >= 4 * (v + 3 * b * ff), "{}", r.activation_bytes);
    let cfg = ModelConfig::from_gguf(&header).unwrap();
    let shape = Shape { context: 128, batch: 64, logit_rows: 1, kv: KvCache::F32 };
    assert_eq!(r.kv_cache_bytes + r.activation_bytes, shape.buffer_bytes(&cfg));

    assert_eq!(r.total_bytes, r.weight_bytes + r.kv_cache_bytes + r.activation_bytes);
    assert!(r.exact && r.problems.is_empty());
    assert_eq!((r.context, r.batch), (128, 64));
    // The feed-forward matrices are the largest (n_ff x n_embd); the first in table order is
    // reported.
    assert_eq!(r.largest_tensor, Some(TensorBytes { name: "blk.0.ffn_gate.weight".into(), bytes: q8_0_part(ff, e) }));
    // The upload's host peak: the largest matrix's file bytes beside its device-layout copy.
    let gate = header.tensor("blk.0.ffn_gate.weight").unwrap().size_bytes;
    assert_eq!(r.upload_peak_bytes, gate + q8_0_part(ff, e));
    // Split at a small binding limit, the copy is one part's.
    let split = mini.requirement(128, &DeviceLimits { max_buffer_size: 4096, max_storage_buffer_binding_size: 4096 });
    assert!(split.upload_peak_bytes < r.upload_peak_bytes && split.upload_peak_bytes > gate, "{split:?}");
}

#[test]
fn context_is_clamped_to_the_training_context_as_the_loader_does() {
    let mini = Mini::new(); // trained at 256
    let r = mini.requirement(100_000, &DeviceLimits::UNLIMITED);
    assert_eq!(r.context, 256);
    assert_eq!(r.kv_cache_bytes, 2 * 2 * 256 * 32 * 4);
    assert_eq!(mini.requirement(0, &DeviceLimits::UNLIMITED).context, 1);
}

#[test]
fn splitting_at_the_binding_limit_costs_at_most_a_few_bytes_per_part() {
    let mini = Mini::new();
    let whole = mini.requirement_with(16, 1, &DeviceLimits::UNLIMITED);
    // 4 KB bindings: the embedding (6.4 KB), the query and feed-forward matrices are split into
    // row ranges (a Q8_0 row of 64 columns is 68 bytes on the device); vectors (256 B), one
    // layer's cache (2 KB) and the buffers of a 1-token batch fit whole.
    let limits = DeviceLimits { max_buffer_size: 1 << 20, max_storage_buffer_binding_size: 4096 };
    assert_eq!(limits.binding_limit(), 4096);
    let split = mini.requirement_with(16, 1, &limits);
    assert!(split.problems.is_empty(), "{:?}", split.problems);
    assert!(split.weight_bytes >= whole.weight_bytes);
    // At most 2 bytes of scale padding per part; a tensor of r rows has at most r parts.
    let rows: u64 = mini.header().tensors().iter().filter(|t| t.dims.len() == 2).map(|t| t.dims[1]).sum();
    assert!(split.weight_bytes - whole.weight_bytes <= 2 * rows);
    assert_eq!(split.kv_cache_bytes, whole.kv_cache_bytes);
}

#[test]
fn a_row_over_the_binding_limit_is_named_with_both_sizes() {
    // 1-D vectors are 256 B; a Q8_0 row of 64 columns needs 68 B; n_ff rows (128 columns) 136 B.
    let mini = Mini::new();
    let limits = DeviceLimits { max_buffer_size: 1 << 20, max_storage_buffer_binding_size: 100 };
    let r = mini.requirement(16, &limits);
    let names: Vec<&str> = r
        .problems
        .iter()
        .map(|p| match &p.limit {
            LimitKind::TensorOverBindingLimit { name, .. } => name.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    // Vectors and the down projection (rows of n_ff) fail; the n_embd-column matrices split.
    assert_eq!(&names[..3], ["blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "blk.0.ffn_down.weight"]);
    assert!(names.contains(&"output_norm.weight"));
    assert!(!names.contains(&"token_embd.weight"));
    assert!(names.contains(&"kv_cache.layer") && names.contains(&"logits"));
    assert_eq!(r.problems[0].message, "Tensor blk.0.attn_norm.weight needs a 256 B binding but this GPU allows 100 B");
    assert_eq!(
        r.problems[0].limit,
        LimitKind::TensorOverBindingLimit {
            name: "blk.0.attn_norm.weight".into(),
            needed_bytes: 256,
            limit_bytes: 100
        }
    );
    assert_eq!(r.problems[2].message, "Tensor blk.0.ffn_down.weight needs a 136 B binding but this GPU allows 100 B");
    let kv = r.problems.iter().find(|p| p.message.starts_with("The KV cache")).unwrap();
    assert_eq!(kv.message, "The KV cache of one layer needs a 2.0 KB binding but this GPU allows 100 B");
}

#[test]
fn a_tensor_over_a_real_binding_limit_reads_like_the_issue() {
    // A token embedding whose rows (f32, n_embd = 64 Ki, the widest a model may declare) are
    // 256 KiB each, on a device allowing 160 KiB bindings: no row split helps.
    let mini = Mini {
        n_embd: 1 << 16,
        n_head: 64,
        n_head_kv: 1,
        n_ff: 32,
        n_vocab: 4,
        n_layer: 1,
        context: 16,
        matrix: GgmlType::F32,
        extra: Vec::new(),
    };
    let limits = DeviceLimits { max_buffer_size: 320 << 10, max_storage_buffer_binding_size: 160 << 10 };
    let r = mini.requirement(16, &limits);
    assert_eq!(r.problems[0].message, "Tensor token_embd.weight needs a 256 KB binding but this GPU allows 160 KB");

    // With maxBufferSize the smaller limit, the problem says so.
    let limits = DeviceLimits { max_buffer_size: 160 << 10, max_storage_buffer_binding_size: 320 << 10 };
    let r = mini.requirement(16, &limits);
    assert_eq!(r.problems[0].message, "Tensor token_embd.weight needs a 256 KB buffer but this GPU allows 160 KB");
    assert!(matches!(&r.problems[0].limit, LimitKind::BufferSize { name, .. } if name == "token_embd.weight"));

    // And in a manager, the limit wins over the budget.
    let m = manager_with(100 * GIB);
    let answer = m.can_load("huge", &r);
    assert!(!answer.can && !answer.fits_after_eviction);
    assert_eq!(answer.reason, "Tensor token_embd.weight needs a 256 KB buffer but this GPU allows 160 KB");
    assert!(matches!(answer.limit, Some(LimitKind::BufferSize { .. })));
}

#[test]
fn simulated_limits_replace_the_adapter_limits_until_cleared() {
    let m = manager_with(8 * GIB);
    let real = m.limits();
    let small = DeviceLimits { max_buffer_size: 4096, max_storage_buffer_binding_size: 128 };
    m.set_simulated_limits(Some(small));
    assert_eq!(m.limits(), small);
    // A 64-wide f32 embedding row (256 bytes) is over a 128-byte binding.
    let mini = Mini::new();
    let r = mini.requirement(16, &m.limits());
    assert!(
        r.problems.iter().any(|p| matches!(&p.limit, LimitKind::TensorOverBindingLimit { limit_bytes: 128, .. })),
        "{:?}",
        r.problems
    );
    assert!(!m.can_load("mini", &r).can);
    m.set_simulated_limits(None);
    assert_eq!(m.limits(), real);
}

#[test]
fn types_without_a_gpu_kernel_are_missing_features_and_rope_factors_take_no_buffer() {
    let mut mini = Mini::new();
    mini.matrix = GgmlType::Q5_K;
    mini.n_embd = 256; // K-quant rows are whole 256-element blocks
    mini.n_head = 16;
    mini.n_head_kv = 8;
    mini.n_ff = 256;
    let r = mini.requirement(16, &DeviceLimits::UNLIMITED);
    assert_eq!(
        r.problems[0].limit,
        LimitKind::MissingFeature { feature: "a GPU kernel for Q5_K".into(), tensor: Some("token_embd.weight".into()) }
    );
    assert_eq!(
        r.problems[0].message,
        "Tensor token_embd.weight is stored as Q5_K, which the GPU backend cannot compute with \
         (supported: F32, F16, Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K)"
    );
    // Counted at their GGUF size (the vectors are f32 already).
    let gguf: u64 = mini.header().tensors().iter().map(|t| t.size_bytes).sum();
    assert_eq!(r.weight_bytes, gguf);

    let mut mini = Mini::new();
    mini.extra.push(("rope_freqs.weight".into(), vec![8], GgmlType::F32));
    let r = mini.requirement(16, &DeviceLimits::UNLIMITED);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.weight_bytes, Mini::new().requirement(16, &DeviceLimits::UNLIMITED).weight_bytes);
}

#[test]
fn a_header_the_loader_would_refuse_is_an_error() {
    let mut mini = Mini::new();
    mini.n_head_kv = 3; // 4 query heads over 3 KV heads
    let err =
        Requirement::from_header(&mini.header(), RequirementOptions::default(), &DeviceLimits::UNLIMITED).unwrap_err();
    assert_eq!(err.kind(), "not_divisible");
    let header = GgufHeader::parse(&Builder::new().kv_str("general.architecture", "mamba").header()).unwrap();
    let err = Requirement::from_header(&header, RequirementOptions::default(), &DeviceLimits::UNLIMITED).unwrap_err();
    assert_eq!(err.kind(), "unsupported_architecture");
}

#[test]
fn binding_limit_follows_the_gpu_backend() {
    assert_eq!(DeviceLimits::WEBGPU_DEFAULT.binding_limit(), 128 * MIB);
    assert_eq!(DeviceLimits::UNLIMITED.binding_limit(), 1 << 31);
    let l = DeviceLimits { max_buffer_size: 64 * MIB, max_storage_buffer_binding_size: 128 * MIB };
    assert_eq!(l.binding_limit(), 64 * MIB);
    let l = DeviceLimits { max_buffer_size: 0, max_storage_buffer_binding_size: 0 };
    assert_eq!(l.binding_limit(), 4);
}

#[test]
fn catalog_estimates_are_rough_and_marked_so() {
    let r = Requirement::estimate_from_catalog(100 * MIB, 2048);
    assert!(!r.exact);
    assert_eq!(r.weight_bytes, 100 * MIB);
    assert_eq!(r.total_bytes, 100 * MIB + requirement::CATALOG_OVERHEAD_MIN);
    let r = Requirement::estimate_from_catalog(GIB, 4096);
    assert_eq!(r.total_bytes, GIB + 2 * (GIB as f64 * requirement::CATALOG_OVERHEAD_SHARE) as u64);
    let r = Requirement::precomputed(300 * MIB, 2048);
    assert_eq!((r.total_bytes, r.exact), (300 * MIB, false));
}

// ---------------------------------------------------------------------------------------------
// The three real models

fn real_models_dir() -> Option<std::path::PathBuf> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED real-model requirements: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Some(std::env::var_os("HEARTH_MODELS_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("models")))
}

/// The header of a file on disk, reading only as much of it as the header needs.
fn read_header(path: &std::path::Path) -> GgufHeader {
    use std::io::Read;
    let open = || {
        std::fs::File::open(path).unwrap_or_else(|e| {
            panic!("{}: {e} (./run test downloads it, or set HEARTH_SKIP_REAL_MODELS=1)", path.display())
        })
    };
    let len = open().metadata().unwrap().len();
    let mut want = 1u64 << 20;
    loop {
        let mut prefix = Vec::new();
        open().take(want).read_to_end(&mut prefix).unwrap();
        match GgufHeader::parse_with_len(&prefix, Some(len)) {
            Err(GgufError::NeedMoreBytes { needed_at_least }) => want = needed_at_least.max(2 * want),
            other => return other.unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        }
    }
}

#[test]
fn real_models_requirements_at_context_2048() {
    let Some(dir) = real_models_dir() else { return };
    let models = ["smollm2-135m-instruct-q4_1.gguf", "gemma-3-270m-q4_k_m.gguf", "qwen2.5-coder-0.5b-instruct.gguf"];
    for file in models {
        let path = dir.join(file);
        let header = read_header(&path);
        let file_bytes = std::fs::metadata(&path).unwrap().len();
        let r = Requirement::from_header(&header, RequirementOptions::default(), &DeviceLimits::WEBGPU_DEFAULT)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let m = MIB as f64;
        eprintln!(
            "{file}: file {} B; weights {} B ({:.1} MiB), KV {} B ({:.1} MiB, context {}), \
             activations {} B ({:.1} MiB), total {} B ({:.1} MiB); largest {:?}; problems {}",
            file_bytes,
            r.weight_bytes,
            r.weight_bytes as f64 / m,
            r.kv_cache_bytes,
            r.kv_cache_bytes as f64 / m,
            r.context,
            r.activation_bytes,
            r.activation_bytes as f64 / m,
            r.total_bytes,
            r.total_bytes as f64 / m,
            r.largest_tensor,
            r.problems.len(),
        );
        assert_eq!(r.context, 2048, "{file}");
        // Every real model fits WebGPU's default limits (the embedding is split by rows).
        assert!(r.problems.is_empty(), "{file}: {:?}", r.problems);
        // Weights on the device are within 25% of the file (vectors as f32; header excluded).
        assert!(r.weight_bytes <= file_bytes * 5 / 4 && r.weight_bytes >= file_bytes / 2, "{file}");
        // The low-VRAM simulation refuses Gemma and Qwen, and takes SmolLM2, from the exact
        // figure and from the catalog estimate alike.
        let fits = file.starts_with("smollm2");
        assert_eq!(r.total_bytes <= LOW_VRAM_SIMULATED_BYTES, fits, "{file}");
        let m = manager_with(8 * GIB);
        m.set_simulation_low_vram(true);
        assert_eq!(m.can_load(file, &r).can, fits, "{file}");
        assert_eq!(m.can_load(file, &Requirement::estimate_from_catalog(file_bytes, 2048)).can, fits, "{file}");
        // The catalog estimate errs high, never low.
        let rough = Requirement::estimate_from_catalog(file_bytes, 2048);
        assert!(rough.total_bytes >= r.total_bytes, "{file}: rough {} < exact {}", rough.total_bytes, r.total_bytes);
    }
}

// ---------------------------------------------------------------------------------------------
// MemoryManager

fn manager_with(budget: u64) -> MemoryManager {
    let m = MemoryManager::new(&AdapterFacts::default());
    m.set_budget_bytes(budget);
    m
}

fn need(bytes: u64) -> Requirement {
    Requirement::precomputed(bytes, 2048)
}

fn keys(stats: &Stats) -> Vec<&str> {
    stats.loaded.iter().map(|l| l.key.as_str()).collect()
}

#[test]
fn lru_order_follows_registration_and_touch() {
    let m = manager_with(GIB);
    m.register_loaded("a", 100 * MIB, Some(1000.0));
    m.register_loaded("b", 200 * MIB, Some(2000.0));
    m.register_loaded("c", 300 * MIB, None);
    assert_eq!(keys(&m.stats(None, None)), ["a", "b", "c"]);
    assert!(m.touch("a", Some(5000.0)));
    assert_eq!(keys(&m.stats(None, None)), ["b", "c", "a"]);
    assert!(!m.touch("nope", None));
    // Re-registering updates the bytes and counts as a use, keeping the pin.
    assert!(m.pin("b"));
    m.register_loaded("b", 250 * MIB, None);
    let s = m.stats(None, None);
    assert_eq!(keys(&s), ["c", "a", "b"]);
    let b = &s.loaded[2];
    assert_eq!((b.bytes, b.pinned, b.last_used), (250 * MIB, true, Some(2000.0)));
    assert_eq!(s.loaded[1].last_used, Some(5000.0));
    assert!(s.loaded[0].use_order < s.loaded[1].use_order && s.loaded[1].use_order < s.loaded[2].use_order);
    assert_eq!(m.register_unloaded("c"), Some(300 * MIB));
    assert_eq!(m.register_unloaded("c"), None);
    assert_eq!(keys(&m.stats(None, None)), ["a", "b"]);
    assert!(m.is_loaded("a") && !m.is_loaded("c"));
    assert!(!m.pin("c") && !m.unpin("c"));
}

#[test]
fn eviction_plans_take_the_least_recently_used_unpinned_models_just_enough() {
    let m = manager_with(1000 * MIB);
    m.register_loaded("a", 300 * MIB, None);
    m.register_loaded("b", 200 * MIB, None);
    m.register_loaded("c", 400 * MIB, None);
    // 100 MB free.
    assert_eq!(m.plan_eviction(100 * MIB), Some(vec![]));
    assert_eq!(m.plan_eviction(350 * MIB), Some(vec!["a".to_owned()]));
    assert_eq!(m.plan_eviction(500 * MIB), Some(vec!["a".to_owned(), "b".to_owned()]));
    m.touch("a", None); // now b, c, a
    assert_eq!(m.plan_eviction(250 * MIB), Some(vec!["b".to_owned()]));
    assert_eq!(m.plan_eviction(350 * MIB), Some(vec!["b".to_owned(), "c".to_owned()]));
    // A model the caller spares (one that is generating) is skipped too.
    assert_eq!(m.plan_eviction_sparing(250 * MIB, |k| k == "b"), Some(vec!["c".to_owned()]));
    assert_eq!(m.plan_eviction_sparing(601 * MIB, |k| k != "a"), None);
    // Pinned models are skipped.
    m.pin("c");
    assert_eq!(m.plan_eviction(350 * MIB), Some(vec!["b".to_owned(), "a".to_owned()]));
    assert_eq!(m.plan_eviction(600 * MIB), Some(vec!["b".to_owned(), "a".to_owned()]));
    // Not enough even with every unpinned model gone: 100 + 200 + 300 free at most.
    assert_eq!(m.plan_eviction(601 * MIB), None);
    m.unpin("c");
    assert_eq!(m.plan_eviction(1000 * MIB), Some(vec!["b".to_owned(), "c".to_owned(), "a".to_owned()]));
    assert_eq!(m.plan_eviction(1001 * MIB), None);
}

#[test]
fn can_load_answers_with_the_seed_reason_and_what_eviction_frees() {
    let m = manager_with(2 * GIB);
    m.register_loaded("old", 1024 * MIB, None);
    m.register_loaded("pinned", 524 * MIB, None);
    m.register_loaded("recent", 200 * MIB, None);
    m.pin("pinned");
    // 2048 - 1748 = 300 MB available.
    let answer = m.can_load("big", &need(2 * GIB));
    assert!(!answer.can);
    assert_eq!(answer.reason, "Not enough VRAM (available: 300 MB, required: 2.0 GB)");
    assert_eq!((answer.required_bytes, answer.available_bytes, answer.budget_bytes), (2 * GIB, 300 * MIB, 2 * GIB));
    assert_eq!(answer.limit, Some(LimitKind::TotalBudget));
    assert!(!answer.fits_after_eviction); // 300 + 1024 + 200 < 2048
    assert_eq!(
        answer.evictable,
        [
            Evictable { key: "old".into(), bytes: 1024 * MIB, cumulative_bytes: 1024 * MIB },
            Evictable { key: "recent".into(), bytes: 200 * MIB, cumulative_bytes: 1224 * MIB },
        ]
    );

    let answer = m.can_load("mid", &need(GIB + 500 * MIB));
    assert!(!answer.can && answer.fits_after_eviction);
    assert_eq!(answer.reason, "Not enough VRAM (available: 300 MB, required: 1.5 GB)");

    let answer = m.can_load("small", &need(100 * MIB));
    assert!(answer.can && answer.limit.is_none());
    assert_eq!(answer.reason, "Fits (available: 300 MB, required: 100 MB)");

    // A model already resident counts its own bytes as available, and is not evictable for itself.
    let answer = m.can_load("old", &need(1300 * MIB));
    assert!(answer.can, "{}", answer.reason);
    assert_eq!(answer.available_bytes, 1324 * MIB);
    assert_eq!(answer.evictable.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["recent"]);

    let v = serde_json::to_value(m.can_load("big", &need(2 * GIB))).unwrap();
    assert_eq!(v["limit"], serde_json::json!({"kind": "totalBudget"}));
    assert_eq!(v["evictable"][1]["cumulativeBytes"], 1224 * MIB);
    assert_eq!(v["requiredBytes"], 2 * GIB);
}

#[test]
fn simulation_changes_the_answer_not_the_real_budget() {
    let m = manager_with(8 * GIB);
    let r = need(311 * MIB); // the default model (Gemma 3 270M) at context 2048
    assert!(m.can_load("gemma-3-270m", &r).can);

    m.set_simulation_low_vram(true);
    let answer = m.can_load("gemma-3-270m", &r);
    assert!(!answer.can && answer.simulated);
    assert_eq!(answer.reason, "Not enough VRAM (available: 256 MB, required: 311 MB)");
    assert!(m.can_load("smollm2-135m", &need(184 * MIB)).can);
    assert_eq!(m.budget().bytes, 8 * GIB);
    assert_eq!(m.plan_eviction(311 * MIB), None);
    let s = m.stats(None, None);
    assert!(s.simulated);
    assert_eq!(s.budget_bytes, LOW_VRAM_SIMULATED_BYTES);
    assert_eq!(s.estimated_from, EstimatedFrom::Override);

    // An explicit simulated budget wins over the low-VRAM switch.
    m.set_simulated_budget(Some(GIB));
    assert!(m.can_load("gemma-3-270m", &r).can);
    assert_eq!(m.stats(None, None).budget_bytes, GIB);
    m.set_simulated_budget(None);
    assert_eq!(m.effective_budget_bytes(), LOW_VRAM_SIMULATED_BYTES);
    m.set_simulation_low_vram(false);
    let s = m.stats(None, None);
    assert!(!s.simulated);
    assert_eq!(s.budget_bytes, 8 * GIB);
    assert!(!m.can_load("smollm2-135m", &r).simulated);
}

#[test]
fn stats_prefer_measured_bytes() {
    let m = manager_with(1000 * MIB);
    m.register_loaded("a", 300 * MIB, Some(12.5));
    m.register_loaded("b", 200 * MIB, None);

    let s = m.stats(None, None);
    assert!(!s.measured);
    assert_eq!((s.used_bytes, s.reserved_bytes, s.registered_bytes), (500 * MIB, 500 * MIB, 500 * MIB));
    assert_eq!(s.available_bytes, 500 * MIB);
    assert_eq!(s.usage_percent, 50.0);
    assert_eq!(s.estimated_from, EstimatedFrom::Override);
    assert_eq!(s.explanation, "Set by the application to 1000 MB");

    // The allocator says 480 MB live in 600 MB of pages.
    let s = m.stats(Some(480 * MIB), Some(600 * MIB));
    assert!(s.measured);
    assert_eq!((s.used_bytes, s.reserved_bytes, s.registered_bytes), (480 * MIB, 600 * MIB, 500 * MIB));
    assert_eq!(s.available_bytes, 400 * MIB);
    assert_eq!(s.usage_percent, 60.0);
    // Reserved is never below used.
    let s = m.stats(Some(700 * MIB), Some(10));
    assert_eq!(s.reserved_bytes, 700 * MIB);
    // Over budget: nothing available, over 100%.
    let s = m.stats(Some(1100 * MIB), None);
    assert_eq!((s.available_bytes, s.usage_percent), (0, 110.0));

    let v = serde_json::to_value(m.stats(None, None)).unwrap();
    for key in
        ["budgetBytes", "estimatedFrom", "usedBytes", "reservedBytes", "availableBytes", "usagePercent", "loaded"]
    {
        assert!(v.get(key).is_some(), "{key} missing from {v}");
    }
    assert_eq!(
        v["loaded"][0],
        serde_json::json!({"key": "a", "bytes": 300 * MIB, "lastUsed": 12.5, "useOrder": 1, "pinned": false})
    );
}

#[test]
fn a_manager_from_adapter_facts_uses_their_limits() {
    let f = AdapterFacts {
        max_buffer_size: 4 * GIB,
        max_storage_buffer_binding_size: GIB,
        ..facts("intel", "gen-12lp", "", Some(8.0))
    };
    let m = MemoryManager::new(&f);
    assert_eq!(m.limits().binding_limit(), GIB);
    assert_eq!(m.budget(), Budget::estimate(&f));
    assert_eq!(m.effective_budget_bytes(), m.budget().bytes);
    // A new adapter (after device loss) re-estimates but keeps an override.
    m.set_budget_bytes(GIB);
    m.set_adapter(&facts("nvidia", "", "", None));
    assert_eq!(m.budget().bytes, GIB);
    assert_eq!(m.limits(), DeviceLimits::WEBGPU_DEFAULT);
    m.clear_budget_override();
    assert_eq!(m.budget().adapter_class, AdapterClass::Discrete);
}

/// The lifecycle's exact requirement: a context beyond the model's is clamped before the batch
/// is chosen, as the loader does; a file the loader refuses has none.
#[test]
fn requirement_for_load_clamps_the_context_before_choosing_the_batch() {
    let mini = Mini::new();
    let header = mini.header();
    let limits = DeviceLimits::UNLIMITED;
    let batch = |context: u32| Shape::for_context(context as usize).batch as u32;
    let clamped = Requirement::for_load(&header, 1 << 20, &limits).unwrap();
    assert_eq!(clamped, mini.requirement_with(mini.context, batch(mini.context), &limits));
    let small = Requirement::for_load(&header, 8, &limits).unwrap();
    assert_eq!(small, mini.requirement_with(8, batch(8), &limits));
    assert_eq!(Requirement::for_load(&header, 0, &limits).unwrap(), mini.requirement_with(1, batch(1), &limits));
    let mut no_arch = Builder::new().kv_str("general.architecture", "nonesuch");
    no_arch = no_arch.kv_u32("nonesuch.context_length", 8);
    let header = GgufHeader::parse(&no_arch.header()).unwrap();
    assert!(Requirement::for_load(&header, 64, &limits).is_err());
}
