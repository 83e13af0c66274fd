//! Where a [`super::Cpu`]'s time goes: an opt-in per-category timer (`HEARTH_CPU_PROFILE=1`,
//! native only; when off each op pays one branch on a `bool`).
//!
//! Every op is timed into a category: matrix products by weight format (the LM head apart),
//! attention, norms/RoPE/element-wise ops, embedding, sampling. The first sampling op ends the
//! prefill; everything after it is decode, reported per generated token together with the weight
//! bytes the products read. The table is printed on stderr when the backend is dropped.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Instant;

/// One category's totals.
#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    secs: f64,
    calls: u64,
    bytes: u64,
}

#[derive(Debug, Default)]
struct State {
    prefill: BTreeMap<String, Entry>,
    decode: BTreeMap<String, Entry>,
    /// Sampling ops seen (one per generated token).
    samples: u64,
}

/// The timer; disabled unless `HEARTH_CPU_PROFILE` is set to something other than `0`.
#[derive(Debug, Default)]
pub struct Profile {
    enabled: bool,
    state: RefCell<State>,
}

/// A running measurement of one op, recorded when dropped.
pub struct Scope<'a> {
    profile: &'a Profile,
    start: Option<Instant>,
    name: &'static str,
    format: &'static str,
    bytes: u64,
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        let Some(start) = self.start else { return };
        let secs = start.elapsed().as_secs_f64();
        let key = if self.format.is_empty() { self.name.to_owned() } else { format!("{} {}", self.name, self.format) };
        let mut s = self.profile.state.borrow_mut();
        let map = if s.samples == 0 { &mut s.prefill } else { &mut s.decode };
        let e = map.entry(key).or_default();
        e.secs += secs;
        e.calls += 1;
        e.bytes += self.bytes;
    }
}

impl Profile {
    pub fn from_env() -> Profile {
        #[cfg(not(target_arch = "wasm32"))]
        let enabled = std::env::var("HEARTH_CPU_PROFILE").is_ok_and(|v| !v.is_empty() && v != "0");
        #[cfg(target_arch = "wasm32")]
        let enabled = false;
        Profile { enabled, state: RefCell::default() }
    }

    /// Times an op into category `name` (`format` appended when not empty) until the returned
    /// scope drops, with `bytes` of weights read (nothing happens when disabled).
    #[inline(always)]
    pub fn scope(&self, name: &'static str, format: &'static str, bytes: u64) -> Scope<'_> {
        Scope { profile: self, start: self.enabled.then(Instant::now), name, format, bytes }
    }

    /// Counts one generated token (called by the op that picks it, after its [`Self::stop`]).
    #[inline(always)]
    pub fn sampled(&self) {
        if self.enabled {
            self.state.borrow_mut().samples += 1;
        }
    }

    /// The table: prefill totals, then decode per token (the first token's sampling ends the
    /// prefill, so decode steps are `samples - 1`).
    pub fn report(&self) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let s = self.state.borrow();
        let mut out = String::from("cpu profile (HEARTH_CPU_PROFILE)\n");
        let total = |m: &BTreeMap<String, Entry>| m.values().map(|e| e.secs).sum::<f64>();
        let pre = total(&s.prefill);
        out += &format!("prefill: {:.1} ms in all\n", pre * 1e3);
        for (k, e) in &s.prefill {
            out += &format!("  {k:<22} {:>9.2} ms {:>5.1}%\n", e.secs * 1e3, 100.0 * e.secs / pre.max(1e-12));
        }
        let steps = s.samples.saturating_sub(1).max(1) as f64;
        let dec = total(&s.decode);
        let bytes: u64 = s.decode.values().map(|e| e.bytes).sum();
        out += &format!(
            "decode: {} tokens, {:.2} ms/token, {:.1} MB weights read/token ({:.2} GB/s)\n",
            s.samples.saturating_sub(1),
            dec * 1e3 / steps,
            bytes as f64 / steps / 1e6,
            bytes as f64 / dec.max(1e-12) / 1e9
        );
        for (k, e) in &s.decode {
            out += &format!(
                "  {k:<22} {:>8.3} ms/token {:>5.1}% {:>7.2} MB/token\n",
                e.secs * 1e3 / steps,
                100.0 * e.secs / dec.max(1e-12),
                e.bytes as f64 / steps / 1e6
            );
        }
        Some(out)
    }
}

impl Drop for Profile {
    /// The table goes to stderr when the backend drops.
    fn drop(&mut self) {
        if let Some(table) = self.report() {
            eprint!("{table}");
        }
    }
}
