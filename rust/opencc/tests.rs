//! Tests of the public converter: OpenCC's published test cases and golden files (vendored in
//! `tests/data/opencc_testcases.json`), plus spot checks of OpenCC behaviours whose expected
//! outputs were taken from the `opencc` 1.4.2 Python package.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{config_names, Converter};

fn conv(config: &str, text: &str) -> String {
    Converter::get(config).unwrap().convert(text)
}

fn testcases() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/opencc_testcases.json"
    );
    let text = std::fs::read_to_string(path).expect("read opencc_testcases.json");
    serde_json::from_str(&text).expect("parse opencc_testcases.json")
}

/// Runs every (input, config, expected) of `items`; returns per-config (passed, total) and the
/// failures.
fn run_cases(items: &[Value]) -> (BTreeMap<String, (usize, usize)>, Vec<String>) {
    let mut per_config = BTreeMap::new();
    let mut failures = Vec::new();
    for case in items {
        let input = case["input"].as_str().unwrap();
        for (config, expected) in case["expected"].as_object().unwrap() {
            let expected = expected.as_str().unwrap();
            let got = conv(config, input);
            let entry = per_config.entry(config.clone()).or_insert((0, 0));
            entry.1 += 1;
            if got == expected {
                entry.0 += 1;
            } else {
                failures.push(format!(
                    "{} [{config}]\n  input:    {input}\n  expected: {expected}\n  got:      {got}",
                    case["id"]
                ));
            }
        }
    }
    (per_config, failures)
}

#[test]
fn opencc_published_testcases() {
    let data = testcases();
    let (per_config, failures) = run_cases(data["cases"].as_array().unwrap());
    // Every built-in config is covered by the upstream cases.
    assert_eq!(per_config.len(), config_names().len(), "{per_config:?}");
    let total: usize = per_config.values().map(|(_, n)| n).sum();
    assert!(total >= 500, "only {total} cases");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn opencc_golden_files() {
    let data = testcases();
    let (per_config, failures) = run_cases(data["golden"].as_array().unwrap());
    assert_eq!(per_config.len(), 5);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn basic_conversions() {
    assert_eq!(conv("t2s", "漢字轉換，滑鼠"), "汉字转换，滑鼠");
    assert_eq!(conv("s2t", "汉字转换"), "漢字轉換");
    assert_eq!(
        conv("s2twp", "鼠标和内存，B超和乙肝"),
        "滑鼠和記憶體，超音波和B肝"
    );
    assert_eq!(conv("tw2sp", "滑鼠和記憶體，超音波"), "鼠标和内存，超声波");
    assert_eq!(conv("tw2s", "mySQL隱碼攻擊"), "mySQL隐码攻击");
    assert_eq!(conv("jp2t", "芸術 欠航"), "藝術 缺航");
    assert_eq!(conv("t2jp", "藝術 缺航"), "芸術 欠航");
    assert_eq!(conv("s2hk", ""), "");
    assert_eq!(
        conv("s2t", "plain ASCII text, 123"),
        "plain ASCII text, 123"
    );
    assert_eq!(conv("s2t", "\u{2a6a5}\u{20000}"), "\u{2a6a5}\u{20000}");
}

#[test]
fn normalization_maps_compatibility_ideographs() {
    // U+F900 and U+2F800 are CJK compatibility ideographs.
    assert_eq!(conv("t2s", "\u{f900}\u{2f800}"), "岂丽");
    assert_eq!(conv("s2t", "\u{f900}"), "豈");
}

#[test]
fn ideographic_description_sequences_are_kept() {
    assert_eq!(conv("t2s", "⿰氵發髮"), "⿰氵發发");
    assert_eq!(conv("s2t", "⿰氵发发"), "⿰氵发發");
}

/// OpenCC hands segments on as C strings, so with a segmenting config an unmatched segment is
/// cut at its first NUL; configs without segmentation keep NULs.
#[test]
fn nul_truncates_segments_like_opencc() {
    assert_eq!(conv("s2tw", "a\0汉字b"), "a");
    assert_eq!(conv("s2tw", "汉字\0汉字"), "漢字");
    assert_eq!(conv("s2tw", "发展\0汉字"), "發展");
    assert_eq!(conv("t2s", "a\0漢字b"), "a\0汉字b");
}

#[test]
fn names_and_errors() {
    assert_eq!(config_names().len(), 16);
    for name in config_names() {
        let converter = Converter::get(name).unwrap();
        assert_eq!(converter.name(), *name);
        assert!(format!("{converter:?}").len() < 100);
        assert!(std::ptr::eq(
            converter,
            Converter::get(&format!("{name}.json")).unwrap()
        ));
    }
    let err = Converter::get("s2x").unwrap_err();
    assert!(matches!(err, crate::error::Error::Config(_)));
    let msg = err.to_string();
    assert!(msg.contains("s2x"), "{msg}");
    for name in config_names() {
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn convert_into_appends() {
    let mut out = String::from("前缀:");
    Converter::get("t2s")
        .unwrap()
        .convert_into("漢字", &mut out);
    assert_eq!(out, "前缀:汉字");
}

#[test]
fn shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Converter>();
    let converter = Converter::get("s2twp").unwrap();
    let expected = converter.convert("鼠标和内存");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| assert_eq!(converter.convert("鼠标和内存"), expected));
        }
    });
}

/// `STPhrases_GeneratedFromRegionalPhrases` is generated upstream by running t2s over the keys
/// of HKPhrases and TWPhrases (see `dict/regenerate.py`); regenerating it with this crate's own
/// t2s gives exactly the embedded file.
#[test]
fn generated_st_phrases_match_own_t2s() {
    use super::config::DICTS;
    use super::dict::entries;
    let dict = |name: &str| DICTS.iter().find(|(n, _)| *n == name).unwrap().1;
    let t2s = Converter::get("t2s").unwrap();
    let mut generated: BTreeMap<String, String> = BTreeMap::new();
    for source in ["HKPhrases", "TWPhrases"] {
        for (key, _) in entries(dict(source)) {
            let simplified = t2s.convert(key);
            if simplified.chars().count() >= 3 {
                generated
                    .entry(simplified)
                    .or_insert_with(|| key.to_string());
            }
        }
    }
    let embedded: BTreeMap<String, String> =
        entries(dict("STPhrases_GeneratedFromRegionalPhrases"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(generated, embedded);
}
