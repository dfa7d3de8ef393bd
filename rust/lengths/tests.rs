//! Tests of counting and the file report with a tiny character-level tokenizer written here:
//! a BPE without merges, so every character is one token (unknown ones one `<unk>` each) and
//! `<s>`, `</s>`, `<|im_start|>`, `<|im_end|>` are added special tokens.

use std::io::Write;

use super::count::{TemplateCounter, TokenCounter};
use super::report::{bucket_of, nearest_rank, token_lengths, LengthsConfig, SourceFile};
use super::template::{Conversation, Template};
use crate::io::ReaderOptions;

/// The added tokens of [`char_tokenizer`]: ids 0–4, then (after "a" = 5) the Llama 3 ones.
const SPECIAL: [&str; 10] = [
    "<unk>",
    "<s>",
    "</s>",
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|eom_id|>",
];

pub(crate) fn char_tokenizer(dir: &std::path::Path) -> std::path::PathBuf {
    let added: Vec<String> = SPECIAL
        .iter()
        .enumerate()
        .map(|(id, t)| (if id < 5 { id } else { id + 1 }, t))
        .map(|(id, t)| {
            format!(
                r#"{{"id":{id},"content":"{t}","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}}"#
            )
        })
        .collect();
    let json = format!(
        r#"{{"version":"1.0","truncation":null,"padding":null,"added_tokens":[{}],
        "normalizer":null,"pre_tokenizer":null,"post_processor":null,"decoder":null,
        "model":{{"type":"BPE","dropout":null,"unk_token":"<unk>","continuing_subword_prefix":null,
        "end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,"ignore_merges":false,
        "vocab":{{"<unk>":0,"<s>":1,"</s>":2,"<|im_start|>":3,"<|im_end|>":4,"a":5,{}}},"merges":[]}}}}"#,
        added.join(","),
        SPECIAL[5..]
            .iter()
            .enumerate()
            .map(|(k, t)| format!(r#""{t}":{}"#, k + 6))
            .collect::<Vec<_>>()
            .join(",")
    );
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, json).unwrap();
    path
}

fn conv(system: Option<&str>, messages: &[&str]) -> Conversation {
    Conversation {
        system: system.map(str::to_string),
        messages: messages.iter().map(|m| m.to_string()).collect(),
    }
}

#[test]
fn counts_characters_and_special_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenCounter::from_file(char_tokenizer(dir.path())).unwrap();
    assert_eq!(tok.count("头痛ab").unwrap(), 4);
    assert_eq!(tok.count("<|im_start|>user\n<|im_end|>").unwrap(), 7);
    assert_eq!(tok.count("").unwrap(), 0);
    assert_eq!(tok.count_batch(&["ab", "", "<s>x"]).unwrap(), [2, 0, 2]);
}

#[test]
fn intern2_turns_are_counted_element_by_element() {
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenCounter::from_file(char_tokenizer(dir.path())).unwrap();
    let t = TemplateCounter::new(&tok, Template::builtin("intern2").unwrap(), None, None).unwrap();
    assert_eq!((t.bos_id(), t.eos_id()), (Some(1), Some(2)));
    let r = t.count(&conv(Some("S"), &["ab", "c"])).unwrap();
    // bos 1 + "<|im_start|>system\nS<|im_end|>\n" 11 + "<|im_start|>user\nab<|im_end|>\n
    // <|im_start|>assistant\n" 21; target "c<|im_end|>\n" 3
    assert_eq!(r.pairs, [(33, 3)]);
    assert_eq!((r.prompt, r.response, r.history, r.total()), (33, 3, 0, 36));
    // a second turn: no bos, no system; history = the first pair
    let r = t.count(&conv(Some("S"), &["ab", "c", "d", "ef"])).unwrap();
    assert_eq!(r.pairs, [(33, 3), (20, 4)]);
    assert_eq!((r.prompt, r.response, r.history), (56, 4, 36));
    // default system prompt when the record has none (or an empty one)
    let d = t.count(&conv(None, &["ab", "c"])).unwrap();
    let sys = Template::builtin("intern2").unwrap().default_system;
    let expect = 1
        + tok
            .count(&format!("<|im_start|>system\n{sys}<|im_end|>\n"))
            .unwrap()
        + 21;
    assert_eq!(d.pairs, [(expect, 3)]);
    assert_eq!(t.count(&conv(Some(""), &["ab", "c"])).unwrap(), d);
}

#[test]
fn eos_elements_and_efficient_eos_count_one_token() {
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenCounter::from_file(char_tokenizer(dir.path())).unwrap();
    let t = TemplateCounter::new(&tok, Template::builtin("default").unwrap(), None, None).unwrap();
    // "Human: ab" 9 + eos 1 + "\nAssistant:" 11; "c" 1 + eos 1 + "\n" 1
    assert_eq!(t.count(&conv(None, &["ab", "c"])).unwrap().pairs, [(21, 3)]);
    let v08 = Template::builtin("intern2_v08").unwrap();
    let t = TemplateCounter::new(&tok, v08, None, None).unwrap();
    let r = t.count(&conv(None, &["ab", "c", "d", "e"])).unwrap();
    // no system; turn 1 starts with the separator "<|im_end|>\n" (2 tokens); final EOS added
    assert_eq!(r.pairs, [(22, 1), (2 + 20, 1)]);
    assert_eq!(r.response, 2);
    // a template whose EOS the tokenizer lacks is refused, naming the token
    let q = Template::builtin("qwen").unwrap();
    let err = TemplateCounter::new(&tok, q.clone(), None, Some("<|endoftext|>"));
    assert!(err.is_ok(), "qwen's slots use no EOS element");
    let mut needs_eos = q;
    needs_eos.efficient_eos = true;
    let err = TemplateCounter::new(&tok, needs_eos, None, Some("<|endoftext|>"));
    assert!(err.err().unwrap().to_string().contains("<|endoftext|>"));
}

#[test]
fn missing_and_invalid_tokenizer_files_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let e = TokenCounter::from_file(&missing).err().unwrap();
    assert!(matches!(e, crate::Error::Io { .. }));
    assert!(e.to_string().contains("nope.json"));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"not\": 1}").unwrap();
    let e = TokenCounter::from_file(&bad).err().unwrap();
    assert!(matches!(e, crate::Error::Config(_)));
    assert!(e.to_string().contains("bad.json"));
}

#[test]
fn quantiles_and_buckets() {
    assert_eq!(nearest_rank(0.5, 4), 1);
    assert_eq!(nearest_rank(0.99, 4), 3);
    assert_eq!(nearest_rank(0.5, 1), 0);
    assert_eq!(bucket_of(512, &[512, 1024]), Some(0));
    assert_eq!(bucket_of(513, &[512, 1024]), Some(1));
    assert_eq!(bucket_of(2000, &[512, 1024]), None);
}

#[test]
fn report_counts_every_record_and_writes_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenCounter::from_file(char_tokenizer(dir.path())).unwrap();
    let input = dir.path().join("src_a.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    writeln!(f, r#"{{"instruction":"ab","output":"c","system":"S"}}"#).unwrap();
    writeln!(
        f,
        r#"{{"instruction":"ab","output":"cccccccccc","system":"S"}}"#
    )
    .unwrap();
    writeln!(f, r#"{{"instruction":"ab"}}"#).unwrap();
    let long = "c".repeat(42);
    writeln!(
        f,
        r#"{{"instruction":"ab","output":"{long}","system":"S"}}"#
    )
    .unwrap();
    writeln!(
        f,
        r#"{{"conversation":[{{"role":"user","content":"ab"}},{{"role":"assistant","content":"c"}}],"system":"S"}}"#
    )
    .unwrap();
    drop(f);
    let cfg = LengthsConfig {
        template: Template::builtin("intern2").unwrap(),
        bos_token: None,
        eos_token: None,
        cutoffs: vec![35, 40, 100],
        reader: ReaderOptions::default(),
    };
    let files = [SourceFile {
        path: input.clone(),
        name: "src_a".into(),
    }];
    let buckets = dir.path().join("out/buckets.jsonl");
    let quarantine = dir.path().join("out/q.jsonl");
    let mut progress = |_: &str, _: u64, _: u64| Ok(());
    let r = token_lengths(
        &files,
        &tok,
        &cfg,
        Some(&buckets),
        Some(&quarantine),
        &mut progress,
    )
    .unwrap();
    let s = &r.sources[0];
    assert_eq!((s.records, s.counted, s.rejected), (5, 4, 1));
    // (source, target): (33, 3), (33, 12), (33, 44), (33, 3) from the conversation
    assert_eq!(s.total_tokens, 36 + 45 + 77 + 36);
    assert_eq!((s.quantiles[0], s.max), (36, 77));
    let c = &s.cutoffs;
    assert_eq!(c[0].truncated, 4, "cut-off 35 truncates all");
    // short targets keep all their tokens (the prompt is cut); the long one is split
    // proportionally: int(35 * 44/77) = 20 target tokens
    assert_eq!((c[0].response_cut, c[0].kept_tokens), (1, 4 * 35));
    assert_eq!((c[1].truncated, c[1].response_cut), (2, 1));
    assert_eq!((c[2].truncated, c[2].response_cut), (0, 0));
    assert_eq!(c.iter().map(|c| c.bucket).collect::<Vec<_>>(), [0, 2, 2]);
    assert_eq!(r.total.counted, 4);
    assert_eq!(r.rejections[0].record, Some(2));
    assert_eq!(r.rejections[0].field.as_deref(), Some("output"));
    let lines = std::fs::read_to_string(&buckets).unwrap();
    assert_eq!(
        lines.lines().next().unwrap(),
        r#"{"source":"src_a","index":0,"prompt_tokens":33,"response_tokens":3,"total_tokens":36,"bucket":1}"#
    );
    assert_eq!(lines.lines().count(), 4);
    assert_eq!(r.bucket_lines, 4);
    let q = std::fs::read_to_string(&quarantine).unwrap();
    assert!(q.contains("\"record\":2") && q.contains("missing_field"));
}

/// `char_tokenizer` in a folder with this `tokenizer_config.json`.
fn configured(dir: &std::path::Path, config: &str) -> TokenCounter {
    let path = char_tokenizer(dir);
    std::fs::write(dir.join("tokenizer_config.json"), config).unwrap();
    TokenCounter::from_file(path).unwrap()
}

fn bind(tok: &TokenCounter, name: &str) -> crate::Result<(Option<u32>, Option<u32>)> {
    let t = TemplateCounter::new(tok, Template::builtin(name).unwrap(), None, None)?;
    Ok((t.bos_id(), t.eos_id()))
}

#[test]
fn bos_and_eos_come_from_the_tokenizers_config_as_llamafactory_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    // Qwen-style: no BOS at all, so intern2's BOS prefix adds nothing.
    let qwen = configured(
        dir.path(),
        r#"{"bos_token": null, "eos_token": "<|im_end|>"}"#,
    );
    assert_eq!(bind(&qwen, "intern2").unwrap(), (None, Some(4)));
    let t = TemplateCounter::new(&qwen, Template::builtin("intern2").unwrap(), None, None).unwrap();
    assert_eq!(t.tokens().bos_from, "tokenizer_config.json");
    // An EOS of another name than the template's usual one.
    let other = configured(
        dir.path(),
        r#"{"bos_token": "<s>", "eos_token": "<|eot_id|>"}"#,
    );
    assert_eq!(bind(&other, "default").unwrap(), (Some(1), Some(9)));
    // replace_eos: qwen's EOS is its first stop word, whatever the config says.
    assert_eq!(bind(&other, "qwen").unwrap(), (Some(1), Some(4)));
    // Explicit names win.
    let t = TemplateCounter::new(
        &other,
        Template::builtin("default").unwrap(),
        None,
        Some("</s>"),
    )
    .unwrap();
    assert_eq!(
        (t.eos_id(), t.tokens().eos_from.as_str()),
        (Some(2), "given explicitly")
    );
    // No configuration: the template's usual names (as before).
    let bare = dir.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    let bare = TokenCounter::from_file(char_tokenizer(&bare)).unwrap();
    assert_eq!(bind(&bare, "intern2").unwrap(), (Some(1), Some(2)));
}

#[test]
fn a_token_the_template_needs_and_the_vocabulary_lacks_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let tok = configured(dir.path(), r#"{"bos_token": "<bos>", "eos_token": "</s>"}"#);
    let e = bind(&tok, "intern2").unwrap_err().to_string();
    assert!(
        e.contains("needs the BOS token '<bos>' (tokenizer_config.json)"),
        "{e}"
    );
    // qwen has no BOS slot: an unknown configured BOS does not matter there.
    assert_eq!(bind(&tok, "qwen").unwrap(), (None, Some(4)));
    // No EOS configured: LLaMA-Factory would add <|endoftext|>; the default template needs it.
    let tok = configured(dir.path(), r#"{"bos_token": "<s>", "eos_token": null}"#);
    let e = bind(&tok, "default").unwrap_err().to_string();
    assert!(e.contains("needs the EOS token '<|endoftext|>'"), "{e}");
    // A stop word written in the template's text must be a token.
    let words = dir.path().join("w");
    std::fs::create_dir(&words).unwrap();
    let path = char_tokenizer(&words);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("<|im_end|>", "<|x_end|>");
    std::fs::write(&path, text).unwrap();
    let tok = TokenCounter::from_file(&path).unwrap();
    let e = bind(&tok, "qwen").unwrap_err().to_string();
    assert!(e.contains("stop-word token '<|im_end|>'"), "{e}");
}

#[test]
fn the_files_truncation_and_padding_are_ignored_as_transformers_ignores_them() {
    // A tokenizer.json saved with truncation/padding on would cut or pad every count and every
    // encoding; transformers (and so LLaMA-Factory) applies them only when a call asks.
    let dir = tempfile::tempdir().unwrap();
    let path = char_tokenizer(dir.path());
    let text = std::fs::read_to_string(&path).unwrap().replace(
        r#""truncation":null,"padding":null"#,
        r#""truncation":{"direction":"Right","max_length":3,"strategy":"LongestFirst","stride":0},
        "padding":{"strategy":{"Fixed":16},"direction":"Right","pad_to_multiple_of":null,
        "pad_id":0,"pad_type_id":0,"pad_token":"<unk>"}"#,
    );
    assert!(text.contains("max_length"));
    std::fs::write(&path, text).unwrap();
    let tok = TokenCounter::from_file(&path).unwrap();
    assert_eq!(tok.count("aaaaaaa").unwrap(), 7);
    assert_eq!(tok.encode("aa").unwrap(), [5, 5]);
}
