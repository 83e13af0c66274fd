//! [`Catalog`]: the models an app offers, by key, with what is known before download.

use crate::error::ErrorCode;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::memory::Requirement;

/// The key `ModelManager.init()` loads when given none (the ModelManager v3.1 design's default
/// model).
pub const DEFAULT_MODEL_KEY: &str = "gemma-3-270m";

/// The context length catalog figures (`requiredBytes`) are computed for; the loader's default.
pub const CATALOG_CONTEXT: u32 = 2048;

/// One model an app offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEntry {
    /// The name the app and the status stream use ("gemma-3-270m"): letters, digits, `.`, `_`,
    /// `-`, at most 64 characters.
    pub key: String,
    /// Where the GGUF file is: an absolute URL or one relative to the page. Empty for an entry
    /// whose file the app supplies at run time (a `File` the user picked).
    #[serde(default)]
    pub url: String,
    /// The file's SHA-256, lowercase hex, when known (checked by `./run` when it fetches models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The GGUF `general.architecture` ("llama", "qwen2", "gemma3").
    pub arch: String,
    /// The quantization, as llama.cpp names it ("Q4_K_M").
    pub quant: String,
    /// The file's size in bytes.
    pub file_bytes: u64,
    /// The longest context the model was trained for.
    pub context_length: u32,
    #[serde(default)]
    pub description: String,
    /// Device bytes the model occupies at context 2048, computed from its header by
    /// `MemoryManager.requirementFor` (exact for the loader of this version); when absent, an
    /// estimate from `fileBytes` stands in until the header is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_bytes: Option<u64>,
}

/// A model that fits where another did not, as a failed load suggests it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    pub key: String,
    pub required_bytes: u64,
    pub file_bytes: u64,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CatalogError {
    /// The JSON does not parse or is not `[entry, ...]` / `{ "models": [entry, ...] }`.
    Json(String),
    /// An entry breaks a rule; `field` names the field.
    Invalid { key: String, field: &'static str, message: String },
    /// No entry has this key.
    Unknown { key: String, known: Vec<String> },
    /// The entry has neither a URL nor a file the app supplied.
    NoSource { key: String },
    /// The file is a model of another architecture than the entry says.
    Mismatch { key: String, file_arch: String, entry_arch: String },
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogError::Json(e) => write!(
                f,
                "The catalog is not valid JSON of the form [{{ key, url, arch, quant, fileBytes, contextLength, ... }}]: {e}"
            ),
            CatalogError::Invalid { key, field, message } => {
                write!(f, "Catalog entry {key:?}: `{field}` {message}")
            }
            CatalogError::Unknown { key, known } => {
                write!(f, "No model {key:?} in the catalog; known: {}. Add it with registerModel().", known.join(", "))
            }
            CatalogError::NoSource { key } => {
                write!(f, "Catalog entry {key} has no url and no file; registerModel() it with one.")
            }
            CatalogError::Mismatch { key, file_arch, entry_arch } => {
                write!(f, "{key} is a {file_arch} model, but the catalog says {entry_arch}; fix the catalog entry.")
            }
        }
    }
}

impl std::error::Error for CatalogError {}

impl CatalogError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CatalogError::Json(_) => ErrorCode::InvalidCatalog,
            CatalogError::Invalid { .. } => ErrorCode::InvalidCatalogEntry,
            CatalogError::Unknown { .. } => ErrorCode::UnknownModel,
            CatalogError::NoSource { .. } => ErrorCode::NoModelSource,
            CatalogError::Mismatch { .. } => ErrorCode::CatalogMismatch,
        }
    }
}

impl CatalogEntry {
    /// Whether a file of architecture `file_arch` is this entry's model.
    pub fn check_arch(&self, file_arch: &str) -> Result<(), CatalogError> {
        if file_arch == self.arch {
            return Ok(());
        }
        Err(CatalogError::Mismatch {
            key: self.key.clone(),
            file_arch: file_arch.to_owned(),
            entry_arch: self.arch.clone(),
        })
    }

    /// The error for an entry with nothing to load from.
    pub fn no_source(&self) -> CatalogError {
        CatalogError::NoSource { key: self.key.clone() }
    }

    /// Checks every field; `needs_url`: false for an entry whose file comes at run time.
    pub fn validate(&self, needs_url: bool) -> Result<(), CatalogError> {
        let bad = |field, message: &str| {
            Err(CatalogError::Invalid { key: self.key.clone(), field, message: message.to_owned() })
        };
        let key_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if self.key.is_empty() || self.key.len() > 64 || !self.key.chars().all(key_ok) {
            return bad("key", "must be 1 to 64 letters, digits, '.', '_' or '-'.");
        }
        if needs_url && self.url.trim().is_empty() {
            return bad("url", "is empty; give the GGUF file's URL (or register the entry with a File).");
        }
        if let Some(h) = &self.sha256
            && (h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
        {
            return bad("sha256", "must be 64 lowercase hex digits.");
        }
        if self.arch.is_empty() {
            return bad("arch", "is empty; give the GGUF general.architecture (llama, qwen2, gemma3).");
        }
        if self.file_bytes == 0 {
            return bad("fileBytes", "must be the file's size in bytes, more than 0.");
        }
        if self.context_length == 0 {
            return bad("contextLength", "must be at least 1.");
        }
        if self.required_bytes == Some(0) {
            return bad("requiredBytes", "must be more than 0 when given.");
        }
        Ok(())
    }

    /// What the model needs at `context` before its header is known: the entry's own figure
    /// at [`CATALOG_CONTEXT`], else [`Requirement::estimate_from_catalog`].
    pub fn requirement(&self, context: u32) -> Requirement {
        match self.required_bytes {
            Some(bytes) if context == CATALOG_CONTEXT => Requirement::precomputed(bytes, context),
            _ => Requirement::estimate_from_catalog(self.file_bytes, context),
        }
    }
}

/// The models an app offers, in the order it lists them. See the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
}

impl Catalog {
    /// The built-in catalog ([`BUILTIN_CATALOG`]).
    pub fn builtin() -> Catalog {
        Catalog::from_json(BUILTIN_CATALOG).expect("the built-in catalog is valid")
    }

    /// The built-in catalog with the entries of `json` (a list or `{ "models": [...] }`), which
    /// replace the built-in ones with the same keys.
    pub fn builtin_with(json: Option<&str>) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::builtin();
        if let Some(json) = json {
            catalog.merge(Catalog::from_json(json)?);
        }
        Ok(catalog)
    }

    /// Parses `[entry, ...]` or `{ "models": [entry, ...] }`; every entry is validated and keys
    /// must be unique.
    pub fn from_json(json: &str) -> Result<Catalog, CatalogError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| CatalogError::Json(e.to_string()))?;
        let list = match value {
            serde_json::Value::Array(list) => list,
            serde_json::Value::Object(mut o) => match o.remove("models") {
                Some(serde_json::Value::Array(list)) => list,
                _ => return Err(CatalogError::Json("an object needs a \"models\" array".to_owned())),
            },
            _ => return Err(CatalogError::Json("expected an array of entries".to_owned())),
        };
        let mut catalog = Catalog::default();
        for (i, value) in list.into_iter().enumerate() {
            let key = value.get("key").and_then(|k| k.as_str()).unwrap_or_default().to_owned();
            let entry: CatalogEntry =
                serde_json::from_value(value).map_err(|e| CatalogError::Json(format!("entry {i} ({key:?}): {e}")))?;
            if catalog.get(&entry.key).is_some() {
                return Err(CatalogError::Invalid {
                    key: entry.key,
                    field: "key",
                    message: "appears twice in the catalog.".to_owned(),
                });
            }
            catalog.register(entry, true)?;
        }
        Ok(catalog)
    }

    /// Adds `entry`, or replaces the entry with its key (returning the old one).
    pub fn register(&mut self, entry: CatalogEntry, needs_url: bool) -> Result<Option<CatalogEntry>, CatalogError> {
        entry.validate(needs_url)?;
        match self.entries.iter_mut().find(|e| e.key == entry.key) {
            Some(old) => Ok(Some(std::mem::replace(old, entry))),
            None => {
                self.entries.push(entry);
                Ok(None)
            }
        }
    }

    /// Adds every entry of `other` (replacing same-key entries).
    pub fn merge(&mut self, other: Catalog) {
        for entry in other.entries {
            // Already validated by `from_json`.
            let _ = self.register(entry, false);
        }
    }

    pub fn get(&self, key: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The entry for `key`, or an error listing the known keys.
    pub fn lookup(&self, key: &str) -> Result<&CatalogEntry, CatalogError> {
        self.get(key).ok_or_else(|| CatalogError::Unknown { key: key.to_owned(), known: self.keys() })
    }

    pub fn keys(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.key.clone()).collect()
    }

    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The models to offer instead of `failed`: those `fits` accepts (it returns the bytes the
    /// model needs when it fits, `None` when not), best first. "Best" is the largest model that
    /// fits: within one device's budget a bigger model of the same family is the more capable
    /// one, and every smaller one is still listed after it.
    pub fn suggestions(&self, failed: &str, mut fits: impl FnMut(&CatalogEntry) -> Option<u64>) -> Vec<Suggestion> {
        let mut out: Vec<Suggestion> = self
            .entries
            .iter()
            .filter(|e| e.key != failed)
            .filter_map(|e| {
                fits(e).map(|required_bytes| Suggestion {
                    key: e.key.clone(),
                    required_bytes,
                    file_bytes: e.file_bytes,
                    description: e.description.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| b.required_bytes.cmp(&a.required_bytes).then_with(|| a.key.cmp(&b.key)));
        out
    }
}

/// The built-in catalog: the three small models Hearth is tested with (the files `./run`
/// fetches, served by the demo under `/models`), then larger public GGUFs a user would pick.
/// `requiredBytes` of the first three were computed from their headers by `requirementFor`
/// (context 2048) and are checked against the files by `tests/js/manager.test.mjs`.
pub const BUILTIN_CATALOG: &str = include_str!("catalog.json");

impl crate::error::Coded for CatalogError {
    fn code(&self) -> ErrorCode {
        CatalogError::code(self)
    }
}
