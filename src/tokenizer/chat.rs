//! Chat prompt rendering for the supported model families, following
//! llama.cpp's built-in templates (src/llama-chat.cpp:
//! `llm_chat_detect_template`, `llm_chat_apply_template`) rather than
//! executing the Jinja source.

use super::TokenizerError;

/// One chat turn.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: role.into(), content: content.into() }
    }
}

/// The template families this crate renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    /// Gemma: `<start_of_turn>user\n...<end_of_turn>\n`, "model" role, the
    /// system prompt merged into the first user turn.
    Gemma,
    /// ChatML: `<|im_start|>role\n...<|im_end|>\n` (Qwen, SmolLM2, ...).
    ChatMl,
    /// Llama 3: `<|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>`.
    Llama3,
}

/// Template names llama.cpp accepts verbatim (`LLM_CHAT_TEMPLATES`) that map
/// to families not implemented here.
const OTHER_LLAMA_CPP_NAMES: &[&str] = &[
    "llama2",
    "llama2-sys",
    "llama2-sys-bos",
    "llama2-sys-strip",
    "mistral-v1",
    "mistral-v3",
    "mistral-v3-tekken",
    "mistral-v7",
    "mistral-v7-tekken",
    "phi3",
    "phi4",
    "falcon3",
    "zephyr",
    "monarch",
    "orion",
    "openchat",
    "vicuna",
    "vicuna-orca",
    "deepseek",
    "deepseek2",
    "deepseek3",
    "deepseek-ocr",
    "command-r",
    "chatglm3",
    "chatglm4",
    "glmedge",
    "minicpm",
    "exaone3",
    "exaone4",
    "exaone-moe",
    "rwkv-world",
    "granite",
    "granite-4.0",
    "granite-4.1",
    "gigachat",
    "megrez",
    "yandex",
    "bailing",
    "bailing-think",
    "bailing2",
    "llama4",
    "smolvlm",
    "hunyuan-moe",
    "gpt-oss",
    "hunyuan-dense",
    "hunyuan-vl",
    "kimi-k2",
    "seed_oss",
    "grok-2",
    "pangu-embedded",
    "solar-open",
];

impl ChatTemplate {
    /// Picks the family like `llm_chat_detect_template`: a template name
    /// (`"chatml"`, `"gemma"`, `"llama3"`) or markers in the Jinja source,
    /// checked in llama.cpp's order so that a template llama.cpp would give to
    /// another family is reported as unsupported instead of being misrendered.
    ///
    /// Without a template llama.cpp falls back to ChatML; here the
    /// architecture (`general.architecture`) is consulted first so that a
    /// Gemma file stripped of its template still gets Gemma turns.
    pub fn detect(template_source: Option<&str>, arch_hint: Option<&str>) -> Result<ChatTemplate, TokenizerError> {
        let Some(tmpl) = template_source else {
            return Ok(match arch_hint {
                Some(arch) if arch.starts_with("gemma") => ChatTemplate::Gemma,
                _ => ChatTemplate::ChatMl,
            });
        };
        match tmpl {
            "chatml" => return Ok(ChatTemplate::ChatMl),
            "gemma" => return Ok(ChatTemplate::Gemma),
            "llama3" => return Ok(ChatTemplate::Llama3),
            _ => {}
        }
        if let Some(name) = OTHER_LLAMA_CPP_NAMES.iter().find(|n| **n == tmpl) {
            return Err(TokenizerError::UnsupportedChatTemplate { family: name });
        }
        let has = |s: &str| tmpl.contains(s);
        let unsupported = |family: &'static str| Err(TokenizerError::UnsupportedChatTemplate { family });
        if has("<|im_start|>") {
            return if has("<|im_sep|>") {
                unsupported("phi4")
            } else if has("<end_of_utterance>") {
                unsupported("smolvlm")
            } else {
                Ok(ChatTemplate::ChatMl)
            };
        }
        if tmpl.starts_with("mistral") || has("[INST]") {
            return unsupported("mistral/llama2");
        }
        if has("<|assistant|>") && has("<|end|>") {
            return unsupported("phi3");
        }
        if has("[gMASK]<sop>") {
            return unsupported("chatglm4");
        }
        if has("<|assistant|>") && has("<|user|>") {
            return unsupported("exaone-moe/falcon3/glmedge");
        }
        if has("<|{{ item['role'] }}|>") && has("<|begin_of_image|>") {
            return unsupported("glmedge");
        }
        if has("<|user|>") && has("<|endoftext|>") {
            return unsupported("zephyr");
        }
        if has("bos_token + message['role']") {
            return unsupported("monarch");
        }
        if has("<start_of_turn>") {
            return Ok(ChatTemplate::Gemma);
        }
        if has("'\\n\\nAssistant: ' + eos_token") {
            return unsupported("orion");
        }
        if has("GPT4 Correct ") {
            return unsupported("openchat");
        }
        if has("USER: ") && has("ASSISTANT: ") {
            return unsupported("vicuna");
        }
        if has("### Instruction:") && has("<|EOT|>") {
            return unsupported("deepseek");
        }
        if has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>") {
            return unsupported("command-r");
        }
        if has("<|start_header_id|>") && has("<|end_header_id|>") {
            return Ok(ChatTemplate::Llama3);
        }
        Err(TokenizerError::UnknownChatTemplate {
            reason: "tokenizer.chat_template has none of the markers of the supported families \
                     (<start_of_turn>, <|im_start|>, <|start_header_id|>)"
                .to_string(),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ChatTemplate::Gemma => "gemma",
            ChatTemplate::ChatMl => "chatml",
            ChatTemplate::Llama3 => "llama3",
        }
    }

    fn accepts_role(self, role: &str) -> bool {
        match self {
            ChatTemplate::Gemma => matches!(role, "system" | "user" | "assistant"),
            ChatTemplate::ChatMl => matches!(role, "system" | "user" | "assistant" | "tool"),
            ChatTemplate::Llama3 => {
                matches!(role, "system" | "user" | "assistant" | "tool" | "ipython")
            }
        }
    }

    /// The prompt text for `messages` (`llm_chat_apply_template`); with
    /// `add_generation_prompt` the assistant turn is opened. No BOS is written:
    /// the tokenizer adds it (`encode(.., add_special = true, parse_special = true)`).
    pub fn render(self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String, TokenizerError> {
        if let Some(m) = messages.iter().find(|m| !self.accepts_role(&m.role)) {
            return Err(TokenizerError::UnknownRole { role: m.role.clone(), template: self.name() });
        }
        let mut out = String::new();
        match self {
            ChatTemplate::ChatMl => {
                for m in messages {
                    out.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content));
                }
                if add_generation_prompt {
                    out.push_str("<|im_start|>assistant\n");
                }
            }
            ChatTemplate::Gemma => {
                // Gemma has no system turn: it is merged into the next user turn.
                let mut system_prompt = String::new();
                for m in messages {
                    if m.role == "system" {
                        system_prompt.push_str(trim(&m.content));
                        continue;
                    }
                    let role = if m.role == "assistant" { "model" } else { m.role.as_str() };
                    out.push_str(&format!("<start_of_turn>{role}\n"));
                    if !system_prompt.is_empty() && role != "model" {
                        out.push_str(&system_prompt);
                        out.push_str("\n\n");
                        system_prompt.clear();
                    }
                    out.push_str(trim(&m.content));
                    out.push_str("<end_of_turn>\n");
                }
                if add_generation_prompt {
                    out.push_str("<start_of_turn>model\n");
                }
            }
            ChatTemplate::Llama3 => {
                for m in messages {
                    out.push_str(&format!(
                        "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
                        m.role,
                        trim(&m.content)
                    ));
                }
                if add_generation_prompt {
                    out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
                }
            }
        }
        Ok(out)
    }
}

/// llama-chat.cpp's `trim`: C `isspace` on both ends.
fn trim(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs() -> Vec<ChatMessage> {
        vec![
            ChatMessage::new("system", "You are helpful."),
            ChatMessage::new("user", " Hi "),
            ChatMessage::new("assistant", "Hello!"),
            ChatMessage::new("user", "Bye"),
        ]
    }

    #[test]
    fn detects_families() {
        assert_eq!(ChatTemplate::detect(Some("{{ '<start_of_turn>' + role }}"), None), Ok(ChatTemplate::Gemma));
        assert_eq!(ChatTemplate::detect(Some("{{'<|im_start|>' + message['role']}}"), None), Ok(ChatTemplate::ChatMl));
        assert_eq!(
            ChatTemplate::detect(Some("<|start_header_id|>{{ role }}<|end_header_id|>"), None),
            Ok(ChatTemplate::Llama3)
        );
        assert_eq!(ChatTemplate::detect(None, Some("gemma3")), Ok(ChatTemplate::Gemma));
        assert_eq!(ChatTemplate::detect(None, None), Ok(ChatTemplate::ChatMl));
        assert!(matches!(
            ChatTemplate::detect(Some("[INST] {{ x }}"), None),
            Err(TokenizerError::UnsupportedChatTemplate { .. })
        ));
        assert!(matches!(ChatTemplate::detect(Some("plain"), None), Err(TokenizerError::UnknownChatTemplate { .. })));
    }

    #[test]
    fn renders_like_llama_cpp() {
        // expected strings from llama.cpp's tests/test-chat-template.cpp style
        assert_eq!(
            ChatTemplate::Gemma.render(&msgs(), true).unwrap(),
            "<start_of_turn>user\nYou are helpful.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n\
             <start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(
            ChatTemplate::ChatMl.render(&msgs(), true).unwrap(),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n Hi <|im_end|>\n\
             <|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            ChatTemplate::Llama3.render(&msgs(), false).unwrap(),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
        );
        assert!(matches!(
            ChatTemplate::Gemma.render(&[ChatMessage::new("narrator", "x")], false),
            Err(TokenizerError::UnknownRole { .. })
        ));
    }
}
