//! A generation prompt as text: the conversation rendered with a chat template up to the point
//! where the assistant's answer starts, for evaluation (the model continues the text).
//!
//! The elements are those the SFT encoding uses (`Template::message_elements`), so a model
//! trained with a template is prompted with the same text. BOS and EOS are written as their
//! token strings (`<s>`, `<|im_end|>`, ...); the tokenizer then matches them as special tokens.
//! A template whose BOS has no token (`bos: None`) drops the element, as LLaMA-Factory does when
//! the tokenizer has no `bos_token`.

use crate::error::{Error, Result};
use crate::lengths::template::{fill, Element, Slot, Template};

impl Template {
    /// The prompt text for `messages` (user, assistant, ..., user: an odd number of turns, the
    /// last one the question), ending where the assistant's answer begins. `system`: the
    /// system prompt (`None`: the template's default; `Some("")`: none).
    ///
    /// # Errors
    /// [`Error::Config`] when `messages` is empty or ends with an assistant turn, or when the
    /// template needs an EOS token and `eos` is `None`.
    pub fn render_prompt(
        &self,
        system: Option<&str>,
        messages: &[&str],
        bos: Option<&str>,
        eos: Option<&str>,
    ) -> Result<String> {
        if messages.len() % 2 != 1 {
            return Err(Error::config(format!(
                "a generation prompt needs user, assistant, ..., user turns (an odd number), \
                 got {} messages",
                messages.len()
            )));
        }
        let system = system.unwrap_or(&self.default_system);
        let mut out = String::new();
        for (i, message) in messages.iter().enumerate() {
            for (element, slot) in self.message_elements(i, system) {
                match element {
                    Element::Text(text) => {
                        let content = match slot {
                            Slot::Fixed => "",
                            Slot::System => system,
                            Slot::Message => message,
                        };
                        out.push_str(&fill(text, content));
                    }
                    Element::Bos => out.push_str(bos.unwrap_or("")),
                    Element::Eos => out.push_str(eos.ok_or_else(|| {
                        Error::config(format!(
                            "template '{}' needs an EOS token: give eos_token",
                            self.name
                        ))
                    })?),
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen_prompt_ends_at_assistant_start() {
        let t = Template::builtin("qwen").unwrap();
        let got = t
            .render_prompt(Some(""), &["问题"], None, Some("<|im_end|>"))
            .unwrap();
        assert_eq!(
            got,
            "<|im_start|>user\n问题<|im_end|>\n<|im_start|>assistant\n"
        );
        let with_default = t
            .render_prompt(None, &["问", "答", "再问"], None, Some("<|im_end|>"))
            .unwrap();
        assert_eq!(
            with_default,
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful \
             assistant.<|im_end|>\n<|im_start|>user\n问<|im_end|>\n<|im_start|>assistant\n\
             答<|im_end|>\n<|im_start|>user\n再问<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn bos_and_eos_are_written_as_token_strings() {
        let t = Template::builtin("default").unwrap();
        let got = t
            .render_prompt(Some(""), &["q"], Some("<s>"), Some("</s>"))
            .unwrap();
        assert_eq!(got, "Human: q</s>\nAssistant:");
        assert!(t.render_prompt(Some(""), &["q"], None, None).is_err());
        let intern = Template::builtin("intern2_v08").unwrap();
        assert_eq!(
            intern
                .render_prompt(Some(""), &["q"], Some("<s>"), Some("</s>"))
                .unwrap(),
            "<s><|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn even_turn_counts_are_rejected() {
        let t = Template::builtin("chatml").unwrap();
        assert!(t.render_prompt(None, &[], None, Some("x")).is_err());
        assert!(t.render_prompt(None, &["q", "a"], None, Some("x")).is_err());
    }
}
