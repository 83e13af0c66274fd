//! The JS value helpers every exported class uses: options bags (serde fields and the
//! fields serde cannot read), thrown values as the UI shows them, results as plain objects,
//! the model-key argument, and exported objects handed back in.

use js_sys::Reflect;
use serde::{Deserialize, Serialize};
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::prelude::*;

use super::error::{ErrorCode, JsError};
use crate::input;
use crate::status::ErrorInfo;

/// Reads a non-serde field (a function, a signal, an object) from an options bag.
pub(super) fn field(options: &JsValue, name: &str) -> Option<JsValue> {
    if !options.is_object() {
        return None;
    }
    Reflect::get(options, &JsValue::from_str(name)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

/// Reads an optional options object: `undefined`/`null` mean defaults.
pub(super) fn read_options<T: for<'de> Deserialize<'de> + Default>(
    value: Option<impl Into<JsValue>>,
    what: &str,
) -> Result<T, JsError> {
    let Some(value) = value.map(Into::into).filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Ok(T::default());
    };
    serde_wasm_bindgen::from_value(value.clone())
        .map_err(|e| JsError::of(ErrorCode::InvalidOptions, format!("Invalid {what}: {e}.")))
}

/// Renders any thrown value as the error the UI shows.
pub(super) fn error_info(value: &JsValue) -> ErrorInfo {
    let string_prop = |key: &str| Reflect::get(value, &JsValue::from_str(key)).ok().and_then(|v| v.as_string());
    if let Some(message) = value.as_string() {
        return ErrorInfo::new("Error", message);
    }
    if value.is_object() {
        let message = string_prop("message");
        let name = string_prop("name");
        if message.is_some() || value.is_instance_of::<js_sys::Error>() {
            return ErrorInfo {
                name: name.unwrap_or_else(|| "Error".to_owned()),
                message: message.unwrap_or_default(),
                stack: string_prop("stack"),
                code: string_prop("code"),
            };
        }
    }
    // Not an Error: say what it was, in JSON when it has a JSON form.
    let rendered = js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .or_else(|| value.as_f64().map(|n| n.to_string()))
        .unwrap_or_else(|| format!("{value:?}"));
    ErrorInfo::new("Error", format!("Non-Error value thrown: {rendered}"))
}

/// A model key from JS: a non-empty string.
pub(super) fn key_arg(value: &JsValue, what: &str) -> Result<String, JsError> {
    Ok(input::key(value.as_string(), what)?)
}

pub(super) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::of(ErrorCode::Serialize, format!("Could not convert a result for JS: {e}.")))
}

/// The Rust side of a JS object of an exported class (an `SseStreamer`, a `MemoryManager` passed in
/// an options bag), without taking it from JS: wasm-bindgen's conversion consumes the object it
/// converts, so this converts a fresh handle from the object's `__share()`.
pub(super) fn shared<T: TryFromJsValue>(value: &JsValue) -> Option<T> {
    let share = Reflect::get(value, &"__share".into()).ok()?.dyn_into::<js_sys::Function>().ok()?;
    T::try_from_js_value(share.call0(value).ok()?).ok()
}

/// `Date.now()`, reported back as `lastUsed`.
pub(super) fn now_ms() -> Option<f64> {
    Some(js_sys::Date::now())
}
