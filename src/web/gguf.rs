//! `GgufFile` and `Tokenizer` for JS: inspect a model before downloading it,
//! read tensors by name, and tokenize with the model's own vocabulary.

use std::rc::Rc;

use js_sys::{Array, Float32Array, Function, Uint8Array, Uint32Array};
use serde::Serialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{AbortSignal, Blob};

use super::convert::field;
use super::error::{ErrorCode, JsError};
use super::source::{ProgressReporter, Reading, Source, read_header_in_memory};
use crate::gguf::GgufHeader;
use crate::infer::load::{dequantize_tensor, read_header_from, read_tensor};
use crate::tokenizer::{ChatMessage, ChatTemplate, EncodeOptions, Tokenizer as CoreTokenizer, TokenizerError};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "OpenOptions")]
    pub type OpenOptionsArg;
    #[wasm_bindgen(typescript_type = "ReadOptions")]
    pub type ReadOptionsArg;
    #[wasm_bindgen(typescript_type = "EncodeOptions")]
    pub type EncodeOptionsArg;
    #[wasm_bindgen(typescript_type = "ArrayBuffer | Uint8Array")]
    pub type BytesArg;
}

/// `signal` and `onProgress` from an options object.
struct Options {
    signal: Option<AbortSignal>,
    on_progress: Option<Function>,
}

fn read_io_options(options: Option<JsValue>) -> Result<Options, JsError> {
    let o = options.unwrap_or(JsValue::UNDEFINED);
    if !o.is_undefined() && !o.is_null() && !o.is_object() {
        return Err(JsError::of(ErrorCode::InvalidOptions, "Options must be an object."));
    }
    fn typed<T: JsCast>(o: &JsValue, name: &str, message: &str) -> Result<Option<T>, JsError> {
        let value = field(o, name).map(JsCast::dyn_into::<T>).transpose();
        value.map_err(|_| JsError::of(ErrorCode::InvalidOptions, message.to_owned()))
    }
    let signal = typed(&o, "signal", "`signal` must be an AbortSignal.")?;
    let on_progress = typed(&o, "onProgress", "`onProgress` must be a function.")?;
    Ok(Options { signal, on_progress })
}

/// A tensor read's `options`, once `name` is known to be a tensor of `file` (a missing tensor
/// is told first).
fn tensor_options(file: &GgufFile, name: &str, options: Option<ReadOptionsArg>) -> Result<Options, JsError> {
    file.header().tensor_range(name)?;
    read_io_options(options.map(Into::into))
}

fn cancelled_if_aborted(signal: Option<&AbortSignal>) -> Result<(), JsError> {
    if signal.is_some_and(AbortSignal::aborted) {
        return Err(JsError::of(ErrorCode::Aborted, "The operation was cancelled."));
    }
    Ok(())
}

struct Inner {
    header: GgufHeader,
    source: Source,
}

/// A GGUF model file: its header parsed, its tensors readable by name.
#[wasm_bindgen]
#[derive(Clone)]
pub struct GgufFile {
    inner: Rc<Inner>,
}

impl GgufFile {
    /// `GgufFile.fromUrl` for Rust callers: the header by Range requests.
    /// `progress`: reported while a server that ignores Range sends the whole file.
    pub async fn open_url(
        url: &str,
        signal: Option<&AbortSignal>,
        progress: Option<&ProgressReporter>,
    ) -> Result<GgufFile, JsError> {
        cancelled_if_aborted(signal)?;
        let (source, header) = super::source::open_url(url, signal, progress).await?;
        Ok(GgufFile { inner: Rc::new(Inner { header, source: Source::Url(source) }) })
    }

    /// The file's length as its source knows it (a URL's `Content-Range` total).
    pub fn source_len(&self) -> Option<u64> {
        self.inner.source.len()
    }

    pub fn header(&self) -> &GgufHeader {
        &self.inner.header
    }

    /// Another handle on the same file (shares the source and what it downloaded).
    pub fn share(&self) -> GgufFile {
        self.clone()
    }

    /// The file's bytes for the core loader, reads cancelled by `signal`.
    pub fn reading<'a>(&'a self, signal: Option<&'a AbortSignal>) -> Reading<'a> {
        self.inner.source.reading(signal)
    }
}

#[wasm_bindgen]
impl GgufFile {
    /// Parses a GGUF file the page holds. Throws `ModelFormatError` naming the
    /// field or tensor that is wrong.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: BytesArg) -> Result<GgufFile, JsError> {
        let value: JsValue = bytes.into();
        let view = if let Some(u8) = value.dyn_ref::<Uint8Array>() {
            u8.clone()
        } else if value.is_instance_of::<js_sys::ArrayBuffer>() {
            Uint8Array::new(&value)
        } else {
            return Err(JsError::of(ErrorCode::InvalidArgument, "fromBytes takes an ArrayBuffer or a Uint8Array."));
        };
        let header = read_header_in_memory(&view)?;
        Ok(GgufFile { inner: Rc::new(Inner { header, source: Source::Bytes(view) }) })
    }

    /// Parses the header of a `Blob` or `File`, reading only the bytes it needs.
    #[wasm_bindgen(js_name = fromBlob)]
    pub async fn from_blob(blob: Blob) -> Result<GgufFile, JsError> {
        let source = Source::Blob(blob);
        let header = read_header_from(&source.reading(None)).await.map_err(JsError::from)?;
        Ok(GgufFile { inner: Rc::new(Inner { header, source }) })
    }

    /// Fetches the header of a model at `url` with HTTP Range requests (the
    /// weights are not downloaded), or, when the server ignores Range, streams the
    /// whole file once with `onProgress`. Rejects with `DownloadError` (`url`,
    /// `status`), `CancelledError` or `ModelFormatError`.
    #[wasm_bindgen(js_name = fromUrl)]
    pub async fn from_url(url: String, options: Option<OpenOptionsArg>) -> Result<GgufFile, JsError> {
        let options = read_io_options(options.map(Into::into))?;
        let reporter = ProgressReporter::new(options.on_progress);
        GgufFile::open_url(&url, options.signal.as_ref(), Some(&reporter)).await
    }

    /// Downloads all tensor data now (one streamed range), reporting progress;
    /// later reads come from memory. Resolves at once for in-memory sources.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn download(&self, options: Option<ReadOptionsArg>) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        let options = read_io_options(options.map(Into::into));
        wasm_bindgen_futures::future_to_promise(async move {
            let options = options?;
            cancelled_if_aborted(options.signal.as_ref())?;
            if let Source::Url(u) = &inner.source {
                let reporter = ProgressReporter::new(options.on_progress);
                u.download_from(inner.header.data_offset(), options.signal.as_ref(), Some(&reporter))
                    .await
                    .map_err(JsError::from)?;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The raw bytes of one tensor, in its block format.
    #[wasm_bindgen(js_name = readTensor, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn read_tensor(&self, name: String, options: Option<ReadOptionsArg>) -> js_sys::Promise {
        let (file, options) = (self.clone(), tensor_options(self, &name, options));
        wasm_bindgen_futures::future_to_promise(async move {
            let options = options?;
            let source = file.reading(options.signal.as_ref());
            let bytes = read_tensor(file.header(), &source, &name).await.map_err(JsError::from)?;
            Ok(Uint8Array::from(&bytes[..]).into())
        })
    }

    /// One tensor decoded to f32 (the CPU reference decoders; the GPU reads the
    /// blocks directly). Rejects with `ModelFormatError` for formats Hearth
    /// cannot decode.
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn dequantize(&self, name: String, options: Option<ReadOptionsArg>) -> js_sys::Promise {
        let (file, options) = (self.clone(), tensor_options(self, &name, options));
        wasm_bindgen_futures::future_to_promise(async move {
            let options = options?;
            let source = file.reading(options.signal.as_ref());
            let values = dequantize_tensor(file.header(), &source, &name).await.map_err(JsError::from)?;
            Ok(Float32Array::from(&values[..]).into())
        })
    }

    /// Every tensor: name, block type, dimensions (ggml order, fastest first),
    /// absolute byte offset and size.
    #[wasm_bindgen(unchecked_return_type = "TensorInfo[]")]
    pub fn tensors(&self) -> JsValue {
        let list = self.inner.header.tensor_list();
        list.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or_else(|_| Array::new().into())
    }

    /// A metadata value (`general.architecture`, `tokenizer.ggml.tokens`, ...);
    /// 64-bit integers beyond 2^53 come back as BigInt.
    #[wasm_bindgen(unchecked_return_type = "MetadataValue | undefined")]
    pub fn metadata(&self, key: &str) -> JsValue {
        let bigints = serde_wasm_bindgen::Serializer::new().serialize_large_number_types_as_bigints(true);
        let value = self.inner.header.metadata().get(key).map(|v| v.serialize(&bigints));
        value.map_or(JsValue::UNDEFINED, |v| v.unwrap_or(JsValue::NULL))
    }

    /// All metadata keys, in file order.
    #[wasm_bindgen(js_name = metadataKeys, unchecked_return_type = "string[]")]
    pub fn metadata_keys(&self) -> Array {
        self.inner.header.metadata().iter().map(|(k, _)| JsValue::from_str(k)).collect()
    }

    #[wasm_bindgen(getter)]
    pub fn version(&self) -> u32 {
        self.inner.header.version()
    }

    /// `general.architecture`, when present.
    #[wasm_bindgen(getter)]
    pub fn architecture(&self) -> Option<String> {
        self.inner.header.architecture().ok().map(str::to_owned)
    }

    #[wasm_bindgen(getter, js_name = tensorCount)]
    pub fn tensor_count(&self) -> u32 {
        self.inner.header.tensors().len() as u32
    }

    /// The bytes of the whole file as the header describes it.
    #[wasm_bindgen(getter, js_name = fileBytes)]
    pub fn file_bytes(&self) -> f64 {
        self.inner.header.total_file_bytes() as f64
    }

    /// The bytes of all tensor data.
    #[wasm_bindgen(getter, js_name = tensorBytes)]
    pub fn tensor_bytes(&self) -> f64 {
        self.inner.header.tensor_bytes_total() as f64
    }

    /// Where tensor data starts.
    #[wasm_bindgen(getter, js_name = dataOffset)]
    pub fn data_offset(&self) -> f64 {
        self.inner.header.data_offset() as f64
    }

    /// `'bytes'`, `'blob'` or `'url'`.
    #[wasm_bindgen(getter, unchecked_return_type = "'bytes' | 'blob' | 'url'")]
    pub fn source(&self) -> String {
        self.inner.source.kind().to_owned()
    }

    /// For a URL: whether the server honours Range requests.
    #[wasm_bindgen(getter, js_name = supportsRange)]
    pub fn supports_range(&self) -> bool {
        match &self.inner.source {
            Source::Url(u) => u.ranges,
            _ => true,
        }
    }
}

/// A model's tokenizer, built from its GGUF metadata alone; matches llama.cpp.
#[wasm_bindgen]
pub struct Tokenizer {
    core: CoreTokenizer,
    template: Result<ChatTemplate, TokenizerError>,
}

#[wasm_bindgen]
impl Tokenizer {
    /// Throws `ModelFormatError` when the vocabulary is missing, inconsistent or
    /// of a kind Hearth does not implement (the message lists the supported ones).
    #[wasm_bindgen(js_name = fromGguf)]
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, JsError> {
        let header = file.header();
        let core = CoreTokenizer::from_gguf(header)?;
        let template = ChatTemplate::detect(core.chat_template(), header.architecture().ok());
        Ok(Tokenizer { core, template })
    }

    /// Token ids for `text`. `addSpecial` (default true) adds BOS/EOS as the model
    /// asks; `parseSpecial` (default false) turns special-token text into tokens.
    #[wasm_bindgen]
    pub fn encode(&self, text: &str, options: Option<EncodeOptionsArg>) -> Result<Uint32Array, JsError> {
        let options: EncodeOptions = super::streamer::read_options(options, "encode options")?;
        Ok(Uint32Array::from(&self.core.encode_with(text, &options)[..]))
    }

    /// Text for `ids`, without control tokens. Unknown ids are an error.
    #[wasm_bindgen]
    pub fn decode(&self, ids: &[u32]) -> Result<String, JsError> {
        Ok(self.core.decode_checked(ids)?)
    }

    /// The prompt text for a chat, in the model family's own template.
    #[wasm_bindgen(js_name = applyChatTemplate)]
    pub fn apply_chat_template(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ChatMessage[]")] messages: JsValue,
        #[wasm_bindgen(js_name = addGenerationPrompt)] add_generation_prompt: Option<bool>,
    ) -> Result<String, JsError> {
        let template = self.template.as_ref().map_err(|e| JsError::from(e.clone()))?;
        let messages: Vec<ChatMessage> = serde_wasm_bindgen::from_value(messages).map_err(|e| {
            JsError::of(ErrorCode::InvalidMessages, format!("Invalid messages: {e}. Expected [{{ role, content }}]."))
        })?;
        Ok(template.render(&messages, add_generation_prompt.unwrap_or(true))?)
    }

    /// Whether generation stops at this token (EOS, EOT, end of turn).
    #[wasm_bindgen(js_name = isEndOfGeneration)]
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.core.is_eog(id)
    }

    #[wasm_bindgen(getter, js_name = vocabSize)]
    pub fn vocab_size(&self) -> u32 {
        self.core.n_tokens() as u32
    }

    #[wasm_bindgen(getter, js_name = bosTokenId)]
    pub fn bos_token_id(&self) -> Option<u32> {
        self.core.bos()
    }

    #[wasm_bindgen(getter, js_name = eosTokenId)]
    pub fn eos_token_id(&self) -> Option<u32> {
        self.core.eos()
    }
}
