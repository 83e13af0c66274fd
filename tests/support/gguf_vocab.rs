//! TEST-ONLY, TEMPORARY: a minimal GGUF metadata reader that fills a
//! `VocabSpec` from a file's key/value section, so the tokenizer tests can run
//! before the crate's real GGUF reader (src/gguf) is wired to the tokenizer.
//! Replace its uses with the real reader once that lands; do not use it
//! outside tests.

#![allow(dead_code)]

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use hearth::tokenizer::VocabSpec;

/// A GGUF metadata value (only what tokenizer keys use is kept precisely).
#[derive(Debug, Clone)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Value>),
}

struct Reader<R: Read>(R);

impl<R: Read> Reader<R> {
    fn bytes<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.0.read_exact(&mut b)?;
        Ok(b)
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn string(&mut self) -> io::Result<String> {
        let len = self.u64()?;
        if len > (1 << 30) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "string too long",
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.0.read_exact(&mut buf)?;
        // Vocab texts are UTF-8 in practice; lossy keeps the reader total.
        Ok(String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
    fn value(&mut self, ty: u32) -> io::Result<Value> {
        Ok(match ty {
            0 => Value::Int(i64::from(self.bytes::<1>()?[0])),
            1 => Value::Int(i64::from(self.bytes::<1>()?[0] as i8)),
            2 => Value::Int(i64::from(u16::from_le_bytes(self.bytes()?))),
            3 => Value::Int(i64::from(i16::from_le_bytes(self.bytes()?))),
            4 => Value::Int(i64::from(self.u32()?)),
            5 => Value::Int(i64::from(i32::from_le_bytes(self.bytes()?))),
            6 => Value::Float(f64::from(f32::from_le_bytes(self.bytes()?))),
            7 => Value::Bool(self.bytes::<1>()?[0] != 0),
            8 => Value::Str(self.string()?),
            9 => {
                let elem = self.u32()?;
                let n = self.u64()?;
                if n > (1 << 28) {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "array too long"));
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(elem)?);
                }
                Value::Array(items)
            }
            10 => Value::Int(self.u64()? as i64),
            11 => Value::Int(i64::from_le_bytes(self.bytes()?)),
            12 => Value::Float(f64::from_le_bytes(self.bytes()?)),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad GGUF type {ty}"),
                ));
            }
        })
    }
}

/// All metadata key/values of a GGUF file (tensor infos are not read).
pub fn read_metadata(path: &Path) -> io::Result<Vec<(String, Value)>> {
    let mut r = Reader(BufReader::with_capacity(1 << 20, File::open(path)?));
    if &r.bytes::<4>()? != b"GGUF" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a GGUF file",
        ));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("GGUF version {version}"),
        ));
    }
    let _n_tensors = r.u64()?;
    let n_kv = r.u64()?;
    let mut kvs = Vec::new();
    for _ in 0..n_kv {
        let key = r.string()?;
        let ty = r.u32()?;
        kvs.push((key, r.value(ty)?));
    }
    Ok(kvs)
}

/// Reads the `tokenizer.*` keys into a `VocabSpec`.
pub fn read_vocab_spec(path: &Path) -> io::Result<VocabSpec> {
    let kvs = read_metadata(path)?;
    let get = |k: &str| kvs.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let id = |k: &str| match get(k) {
        Some(Value::Int(i)) => u32::try_from(*i).ok(),
        _ => None,
    };
    let flag = |k: &str| match get(k) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    let string = |k: &str| match get(k) {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let strings = |k: &str| match get(k) {
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| {
                    if let Value::Str(s) = v {
                        s.clone()
                    } else {
                        String::new()
                    }
                })
                .collect(),
        ),
        _ => None,
    };
    let scores = match get("tokenizer.ggml.scores") {
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| match v {
                    Value::Float(f) => *f as f32,
                    Value::Int(i) => *i as f32,
                    _ => 0.0,
                })
                .collect(),
        ),
        _ => None,
    };
    let token_types = match get("tokenizer.ggml.token_type") {
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| if let Value::Int(i) = v { *i as i32 } else { 0 })
                .collect(),
        ),
        _ => None,
    };
    Ok(VocabSpec {
        model: string("tokenizer.ggml.model").unwrap_or_default(),
        pre: string("tokenizer.ggml.pre"),
        tokens: strings("tokenizer.ggml.tokens").unwrap_or_default(),
        scores,
        token_types,
        merges: strings("tokenizer.ggml.merges"),
        bos: id("tokenizer.ggml.bos_token_id"),
        eos: id("tokenizer.ggml.eos_token_id"),
        eot: id("tokenizer.ggml.eot_token_id"),
        unk: id("tokenizer.ggml.unknown_token_id"),
        pad: id("tokenizer.ggml.padding_token_id"),
        add_bos: flag("tokenizer.ggml.add_bos_token"),
        add_eos: flag("tokenizer.ggml.add_eos_token"),
        add_space_prefix: flag("tokenizer.ggml.add_space_prefix"),
        chat_template: string("tokenizer.chat_template"),
    })
}

/// `general.architecture`, for chat-template detection.
pub fn read_architecture(path: &Path) -> io::Result<Option<String>> {
    Ok(read_metadata(path)?
        .into_iter()
        .find(|(k, _)| k == "general.architecture")
        .and_then(|(_, v)| match v {
            Value::Str(s) => Some(s),
            _ => None,
        }))
}
