//! The TypeScript declarations for everything the exported functions take and return as plain
//! objects (`hearth.d.ts`, appended to the generated `.d.ts`), so that it has no `any`; and the
//! named imported types the exported signatures use for them.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = include_str!("hearth.d.ts");

// Named TypeScript types for optional parameters: `unchecked_param_type` drops the
// `?` of an `Option`, an imported type with `typescript_type` keeps it.
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "ReplayOptions")]
    pub type ReplayOptionsArg;
    #[wasm_bindgen(typescript_type = "SseStreamerOptions")]
    pub type StreamerOptionsArg;
    #[wasm_bindgen(typescript_type = "BackendPreference")]
    pub type BackendArg;
    #[wasm_bindgen(typescript_type = "LoadOptions")]
    pub type LoadOptionsArg;
    #[wasm_bindgen(typescript_type = "GenerateOptions")]
    pub type GenerateOptionsArg;
    #[wasm_bindgen(typescript_type = "MemoryManagerOptions")]
    pub type MemoryManagerOptionsArg;
    #[wasm_bindgen(typescript_type = "RequirementForOptions")]
    pub type RequirementForOptionsArg;
    #[wasm_bindgen(typescript_type = "ModelManagerOptions")]
    pub type ModelManagerOptionsArg;
    #[wasm_bindgen(typescript_type = "SwitchOptions")]
    pub type SwitchOptionsArg;
    #[wasm_bindgen(typescript_type = "TaskOptions")]
    pub type TaskOptionsArg;
}
