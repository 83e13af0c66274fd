//! What callers ask of the memory manager, checked: the options of `MemoryManager.create` and
//! `requirementFor`, a requirement handed back by an app (what `requirementFor` returned, or a
//! catalog's own figure), and simulated limits. The web layer reads the JS values into these
//! serde types or plain numbers; every rule about them is here and tested natively.

use serde::Deserialize;

use super::requirement::{DeviceLimits, LimitKind, LimitProblem, Requirement, RequirementOptions};
use crate::infer::{KvCache, Shape};
use crate::input::{self, InputError};

/// The allocation probe's cap when `probe: true`: enough to tell a small integrated GPU from a
/// discrete one, small enough that a healthy device never nears exhaustion because of it.
pub const DEFAULT_PROBE_CAP: u64 = 2 << 30;
/// The largest cap accepted.
pub const MAX_PROBE_CAP: u64 = 16 << 30;
/// The context a requirement is computed for when the caller names none.
pub const DEFAULT_CONTEXT: u32 = 2048;

/// The `probe` option as the caller gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProbeOption {
    /// Absent or `false`.
    Off,
    /// `true`: the default cap.
    On,
    /// Anything else: an object whose `capBytes` is this number (`None`: no number there).
    Cap(Option<f64>),
}

impl ProbeOption {
    /// The probe's cap in bytes, `None` for no probe; a cap is clamped to `1..=MAX_PROBE_CAP`.
    pub fn cap(self) -> Result<Option<u64>, InputError> {
        match self {
            ProbeOption::Off => Ok(None),
            ProbeOption::On => Ok(Some(DEFAULT_PROBE_CAP)),
            ProbeOption::Cap(None) => Err(InputError::options("probe must be true, false or { capBytes }.")),
            ProbeOption::Cap(Some(cap)) => Ok(Some(input::bytes(cap, "probe.capBytes")?.clamp(1, MAX_PROBE_CAP))),
        }
    }
}

/// `probe` as JS gives it: `false`, `true`, or anything else, read as `{ capBytes }` (a value
/// without a number there is [`ProbeOption::Cap`]`(None)`, which [`ProbeOption::cap`] refuses).
impl<'de> Deserialize<'de> for ProbeOption {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Flag(bool),
            Cap {
                #[serde(rename = "capBytes")]
                cap_bytes: Option<f64>,
            },
            Other(serde::de::IgnoredAny),
        }
        Ok(match Given::deserialize(deserializer)? {
            Given::Flag(on) => {
                if on {
                    ProbeOption::On
                } else {
                    ProbeOption::Off
                }
            }
            Given::Cap { cap_bytes } => ProbeOption::Cap(cap_bytes),
            Given::Other(_) => ProbeOption::Cap(None),
        })
    }
}

/// The options of `MemoryManager.create` that serde reads (`backend` is read by hand: a JS
/// string).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateOptions {
    /// `navigator.deviceMemory` as the caller overrides it.
    pub device_memory_gb: Option<f64>,
    /// `probe`; absent or `null` is off.
    pub probe: Option<ProbeOption>,
}

impl CreateOptions {
    /// The checked system memory in GB and the probe's cap (`None`: no probe).
    pub fn resolve(&self) -> Result<(Option<f64>, Option<u64>), InputError> {
        let cap = self.probe.unwrap_or(ProbeOption::Off).cap()?;
        Ok((device_memory_gb(self.device_memory_gb)?, cap))
    }
}

/// `navigator.deviceMemory` as the caller overrides it: a positive number of GB.
pub fn device_memory_gb(value: Option<f64>) -> Result<Option<f64>, InputError> {
    match value {
        Some(gb) if !(gb.is_finite() && gb > 0.0) => {
            Err(InputError::options("deviceMemoryGb must be a positive number."))
        }
        other => Ok(other),
    }
}

/// The options of `requirementFor`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequirementForOptions {
    pub context_length: Option<u32>,
}

impl RequirementForOptions {
    /// The sizes to compute for: the context asked (default [`DEFAULT_CONTEXT`]) and the batch
    /// the loader allocates for it.
    pub fn resolve(&self) -> Result<RequirementOptions, InputError> {
        let context = self.context_length.unwrap_or(DEFAULT_CONTEXT);
        if context == 0 {
            return Err(InputError::options("contextLength must be at least 1."));
        }
        Ok(RequirementOptions { context, batch: Shape::for_context(context as usize).batch as u32, kv: KvCache::F32 })
    }
}

/// A `Requirement` coming back from a caller (what `requirementFor` returned, or a catalog's
/// own). Byte counts are JS numbers: the total is checked, the parts are read leniently.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementIn {
    pub total_bytes: f64,
    #[serde(default)]
    pub exact: bool,
    #[serde(default)]
    pub context: Option<u32>,
    #[serde(default)]
    pub batch: Option<u32>,
    #[serde(default)]
    pub weight_bytes: Option<f64>,
    #[serde(default)]
    pub kv_cache_bytes: Option<f64>,
    #[serde(default)]
    pub activation_bytes: Option<f64>,
    #[serde(default)]
    pub upload_peak_bytes: Option<f64>,
    #[serde(default)]
    pub problems: Vec<ProblemIn>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProblemIn {
    pub limit: LimitIn,
    pub message: String,
}

/// [`LimitKind`] as it comes back from JSON.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum LimitIn {
    TotalBudget,
    TensorOverBindingLimit { name: String, needed_bytes: f64, limit_bytes: f64 },
    BufferSize { name: String, needed_bytes: f64, limit_bytes: f64 },
    MissingFeature { feature: String, tensor: Option<String> },
}

/// A part of a requirement, read leniently: a negative or non-finite figure counts as 0 and
/// fractions round down.
fn lenient_bytes(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 { value as u64 } else { 0 }
}

impl From<LimitIn> for LimitKind {
    fn from(l: LimitIn) -> LimitKind {
        let b = lenient_bytes;
        match l {
            LimitIn::TotalBudget => LimitKind::TotalBudget,
            LimitIn::TensorOverBindingLimit { name, needed_bytes, limit_bytes } => {
                LimitKind::TensorOverBindingLimit { name, needed_bytes: b(needed_bytes), limit_bytes: b(limit_bytes) }
            }
            LimitIn::BufferSize { name, needed_bytes, limit_bytes } => {
                LimitKind::BufferSize { name, needed_bytes: b(needed_bytes), limit_bytes: b(limit_bytes) }
            }
            LimitIn::MissingFeature { feature, tensor } => LimitKind::MissingFeature { feature, tensor },
        }
    }
}

impl RequirementIn {
    /// The requirement it describes; `what` names the argument in the error. Without
    /// `weightBytes`, the whole total counts as weights.
    pub fn into_requirement(self, what: &str) -> Result<Requirement, InputError> {
        let total = input::bytes(self.total_bytes, &format!("{what}.totalBytes"))?;
        let part = |v: Option<f64>| v.map_or(0, lenient_bytes);
        Ok(Requirement {
            exact: self.exact,
            context: self.context.unwrap_or(DEFAULT_CONTEXT),
            batch: self.batch.unwrap_or(RequirementOptions::default().batch),
            weight_bytes: self.weight_bytes.map_or(total, |v| part(Some(v))),
            kv_cache_bytes: part(self.kv_cache_bytes),
            activation_bytes: part(self.activation_bytes),
            total_bytes: total,
            largest_tensor: None,
            upload_peak_bytes: part(self.upload_peak_bytes),
            problems: self
                .problems
                .into_iter()
                .map(|p| LimitProblem { limit: p.limit.into(), message: p.message })
                .collect(),
        })
    }
}

/// The requirement `canLoadModel` is given, as the caller gave it: a byte count, an object (what
/// `requirementFor` returned, as serde read it, or why it could not), or anything else.
#[derive(Debug, Clone, PartialEq)]
pub enum RequirementArg {
    Bytes(f64),
    Object(Result<RequirementIn, String>),
    Other,
}

impl RequirementArg {
    /// The requirement; an argument error names `what` (the method) and what to give instead.
    pub fn into_requirement(self, what: &str) -> Result<Requirement, InputError> {
        let shape = format!("{what}: the requirement must be a number of bytes or a Requirement");
        match self {
            RequirementArg::Bytes(n) => requirement_of_bytes(n, &format!("{what}: the requirement")),
            RequirementArg::Object(Ok(r)) => r.into_requirement(&format!("{what}: requirement")),
            RequirementArg::Object(Err(e)) => Err(InputError::argument(format!("{shape} ({e})."))),
            RequirementArg::Other => Err(InputError::argument(format!("{shape}."))),
        }
    }
}

/// A requirement given as a plain byte count, for the default context.
pub fn requirement_of_bytes(bytes: f64, what: &str) -> Result<Requirement, InputError> {
    Ok(Requirement::precomputed(input::bytes(bytes, what)?, DEFAULT_CONTEXT))
}

/// `setSimulatedLimits({ maxStorageBufferBindingSize, maxBufferSize? })`: the numbers found
/// there (`None` where the field is absent or not a number). The buffer limit defaults to the
/// binding limit; both must be at least one byte.
pub fn simulated_limits(binding: Option<f64>, buffer: Option<f64>) -> Result<DeviceLimits, InputError> {
    let binding = binding.ok_or_else(|| {
        InputError::argument("setSimulatedLimits: give { maxStorageBufferBindingSize, maxBufferSize? } or null.")
    })?;
    let binding = input::bytes(binding, "setSimulatedLimits: maxStorageBufferBindingSize")?;
    let buffer = match buffer {
        Some(b) => input::bytes(b, "setSimulatedLimits: maxBufferSize")?,
        None => binding,
    };
    if binding == 0 || buffer == 0 {
        return Err(InputError::argument("setSimulatedLimits: limits must be at least 1 byte."));
    }
    Ok(DeviceLimits { max_buffer_size: buffer, max_storage_buffer_binding_size: binding })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::InputKind;

    #[test]
    fn the_probe_option_is_off_on_or_a_clamped_cap() {
        assert_eq!(ProbeOption::Off.cap(), Ok(None));
        assert_eq!(ProbeOption::On.cap(), Ok(Some(DEFAULT_PROBE_CAP)));
        assert_eq!(ProbeOption::Cap(Some(0.0)).cap(), Ok(Some(1)));
        assert_eq!(ProbeOption::Cap(Some(1e15)).cap(), Ok(Some(MAX_PROBE_CAP)));
        let e = ProbeOption::Cap(None).cap().unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (InputKind::Options, "probe must be true, false or { capBytes }."));
        let e = ProbeOption::Cap(Some(-1.0)).cap().unwrap_err();
        assert_eq!(e.message, "probe.capBytes must be a non-negative integer number of bytes, got -1.");
    }

    #[test]
    fn create_options_check_the_probe_first_then_the_system_memory() {
        let opts: CreateOptions = serde_json::from_str(r#"{"deviceMemoryGb": 8, "probe": true}"#).unwrap();
        assert_eq!(opts.resolve(), Ok((Some(8.0), Some(DEFAULT_PROBE_CAP))));
        assert_eq!(CreateOptions::default().resolve(), Ok((None, None)));
        let bad = CreateOptions { device_memory_gb: Some(0.0), probe: None };
        assert_eq!(bad.resolve().unwrap_err().message, "deviceMemoryGb must be a positive number.");
        let both = CreateOptions { probe: Some(ProbeOption::Cap(None)), ..bad };
        assert!(both.resolve().unwrap_err().message.starts_with("probe"));
        assert!(device_memory_gb(Some(f64::NAN)).is_err());
    }

    #[test]
    fn the_probe_reads_a_flag_or_a_cap_and_anything_else_is_a_cap_without_a_number() {
        let probe = |json: &str| serde_json::from_str::<CreateOptions>(json).unwrap().probe;
        assert_eq!(probe(r#"{}"#), None);
        assert_eq!(probe(r#"{"probe": null}"#), None);
        assert_eq!(probe(r#"{"probe": false}"#), Some(ProbeOption::Off));
        assert_eq!(probe(r#"{"probe": true}"#), Some(ProbeOption::On));
        assert_eq!(probe(r#"{"probe": {"capBytes": 1024}}"#), Some(ProbeOption::Cap(Some(1024.0))));
        for other in [r#"{}"#, r#"{"capBytes": "x"}"#, r#"{"capBytes": null}"#, "5", r#""yes""#, "[1]"] {
            assert_eq!(probe(&format!(r#"{{"probe": {other}}}"#)), Some(ProbeOption::Cap(None)), "{other}");
        }
    }

    #[test]
    fn requirement_options_default_to_2048_and_refuse_zero() {
        let o = RequirementForOptions::default().resolve().unwrap();
        assert_eq!(o.context, DEFAULT_CONTEXT);
        assert_eq!(o.batch, Shape::for_context(2048).batch as u32);
        assert_eq!(RequirementForOptions { context_length: Some(512) }.resolve().unwrap().context, 512);
        let e = RequirementForOptions { context_length: Some(0) }.resolve().unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (InputKind::Options, "contextLength must be at least 1."));
    }

    #[test]
    fn a_requirement_handed_back_round_trips() {
        let json = r#"{"exact":true,"context":1024,"batch":64,"weightBytes":1000,"kvCacheBytes":200,
            "activationBytes":-5,"totalBytes":1200,"largestTensor":{"name":"x","bytes":9},
            "problems":[{"limit":{"kind":"tensorOverBindingLimit","name":"t","neededBytes":9e9,"limitBytes":1.5},
            "message":"too big"},{"limit":{"kind":"missingFeature","feature":"f16","tensor":null},"message":"m"}]}"#;
        let r: RequirementIn = serde_json::from_str(json).unwrap();
        let r = r.into_requirement("canLoadModel: requirement").unwrap();
        assert!(r.exact);
        assert_eq!((r.context, r.batch, r.total_bytes), (1024, 64, 1200));
        assert_eq!((r.weight_bytes, r.kv_cache_bytes, r.activation_bytes), (1000, 200, 0));
        assert_eq!(r.largest_tensor, None);
        assert_eq!(
            r.problems[0].limit,
            LimitKind::TensorOverBindingLimit { name: "t".into(), needed_bytes: 9_000_000_000, limit_bytes: 1 }
        );
        assert_eq!(r.problems[1].limit, LimitKind::MissingFeature { feature: "f16".into(), tensor: None });
    }

    #[test]
    fn a_bare_requirement_counts_its_total_as_weights() {
        let r: RequirementIn = serde_json::from_str(r#"{"totalBytes": 5000}"#).unwrap();
        let r = r.into_requirement("canLoadModel: requirement").unwrap();
        assert_eq!((r.weight_bytes, r.total_bytes, r.context, r.exact), (5000, 5000, DEFAULT_CONTEXT, false));
        let bad: RequirementIn = serde_json::from_str(r#"{"totalBytes": 1.5}"#).unwrap();
        let e = bad.into_requirement("canLoadModel: requirement").unwrap_err();
        assert_eq!(
            e.message,
            "canLoadModel: requirement.totalBytes must be a non-negative integer number of bytes, got 1.5."
        );
        assert_eq!(requirement_of_bytes(42.0, "x"), Ok(Requirement::precomputed(42, DEFAULT_CONTEXT)));
        assert_eq!(RequirementArg::Bytes(42.0).into_requirement("m"), requirement_of_bytes(42.0, "x"));
        let e = RequirementArg::Other.into_requirement("canLoadModel").unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (InputKind::Argument, "canLoadModel: the requirement must be a number of bytes or a Requirement.")
        );
        let e = RequirementArg::Object(Err("missing field `totalBytes`".into())).into_requirement("m").unwrap_err();
        assert!(e.message.ends_with("a Requirement (missing field `totalBytes`)."), "{}", e.message);
        assert!(
            RequirementArg::Bytes(-1.0).into_requirement("m").unwrap_err().message.starts_with("m: the requirement")
        );
        assert!(requirement_of_bytes(-1.0, "x").is_err());
    }

    #[test]
    fn simulated_limits_need_a_binding_limit_and_at_least_a_byte() {
        let l = simulated_limits(Some(1024.0), None).unwrap();
        assert_eq!((l.max_storage_buffer_binding_size, l.max_buffer_size), (1024, 1024));
        let l = simulated_limits(Some(1024.0), Some(4096.0)).unwrap();
        assert_eq!(l.max_buffer_size, 4096);
        let e = simulated_limits(None, Some(1.0)).unwrap_err();
        assert_eq!(e.message, "setSimulatedLimits: give { maxStorageBufferBindingSize, maxBufferSize? } or null.");
        let e = simulated_limits(Some(0.0), None).unwrap_err();
        assert_eq!(e.message, "setSimulatedLimits: limits must be at least 1 byte.");
        assert!(simulated_limits(Some(1.0), Some(-1.0)).unwrap_err().message.contains("maxBufferSize"));
    }
}
