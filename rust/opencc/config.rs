//! OpenCC's built-in configs and dictionaries, embedded, and the parsing of a config's JSON into
//! a [`ConfigSpec`] tree.
//!
//! The JSON files are OpenCC 1.4.2's `data/config/*.json`, unchanged. Dictionary references
//! (`"file": "TSPhrases.ocd2"`, any of the `text`/`ocd`/`ocd2` types) resolve to the embedded
//! text dictionary of the same stem. `may_output_tofu` dictionaries are kept, as the `opencc`
//! Python package does by default (`include_tofu_risk_dictionaries=True`). Inline dictionaries
//! and plugin (jieba) segmentation are not supported: no built-in config uses them.

use serde_json::Value;

use crate::error::{Error, Result};

/// Built-in config names with their JSON, sorted by name.
const CONFIGS: &[(&str, &str)] = &[
    ("hk2s", include_str!("dict/config/hk2s.json")),
    ("hk2sp", include_str!("dict/config/hk2sp.json")),
    ("hk2t", include_str!("dict/config/hk2t.json")),
    ("jp2t", include_str!("dict/config/jp2t.json")),
    ("s2hk", include_str!("dict/config/s2hk.json")),
    ("s2hkp", include_str!("dict/config/s2hkp.json")),
    ("s2t", include_str!("dict/config/s2t.json")),
    ("s2tw", include_str!("dict/config/s2tw.json")),
    ("s2twp", include_str!("dict/config/s2twp.json")),
    ("t2hk", include_str!("dict/config/t2hk.json")),
    ("t2jp", include_str!("dict/config/t2jp.json")),
    ("t2s", include_str!("dict/config/t2s.json")),
    ("t2tw", include_str!("dict/config/t2tw.json")),
    ("tw2s", include_str!("dict/config/tw2s.json")),
    ("tw2sp", include_str!("dict/config/tw2sp.json")),
    ("tw2t", include_str!("dict/config/tw2t.json")),
];

/// Config names, in the order of `CONFIGS`.
pub(crate) const CONFIG_NAMES: &[&str] = &[
    "hk2s", "hk2sp", "hk2t", "jp2t", "s2hk", "s2hkp", "s2t", "s2tw", "s2twp", "t2hk", "t2jp",
    "t2s", "t2tw", "tw2s", "tw2sp", "tw2t",
];

/// Embedded text dictionaries by file stem (see `dict/README.md` for provenance).
pub(crate) const DICTS: &[(&str, &str)] = &[
    (
        "CJK_Compatibility_Ideographs",
        include_str!("dict/CJK_Compatibility_Ideographs.txt"),
    ),
    ("HKPhrases", include_str!("dict/HKPhrases.txt")),
    ("HKPhrasesRev", include_str!("dict/HKPhrasesRev.txt")),
    ("HKVariants", include_str!("dict/HKVariants.txt")),
    (
        "HKVariantsPhrases",
        include_str!("dict/HKVariantsPhrases.txt"),
    ),
    ("HKVariantsRev", include_str!("dict/HKVariantsRev.txt")),
    (
        "HKVariantsRevPhrases",
        include_str!("dict/HKVariantsRevPhrases.txt"),
    ),
    (
        "JPShinjitaiCharacters",
        include_str!("dict/JPShinjitaiCharacters.txt"),
    ),
    (
        "JPShinjitaiCharactersRev",
        include_str!("dict/JPShinjitaiCharactersRev.txt"),
    ),
    (
        "JPShinjitaiPhrases",
        include_str!("dict/JPShinjitaiPhrases.txt"),
    ),
    ("STCharacters", include_str!("dict/STCharacters.txt")),
    ("STPhrases", include_str!("dict/STPhrases.txt")),
    (
        "STPhrases_GeneratedFromRegionalPhrases",
        include_str!("dict/STPhrases_GeneratedFromRegionalPhrases.txt"),
    ),
    ("TSCharacters", include_str!("dict/TSCharacters.txt")),
    ("TSCharactersExt", include_str!("dict/TSCharactersExt.txt")),
    ("TSPhrases", include_str!("dict/TSPhrases.txt")),
    ("TWPhrases", include_str!("dict/TWPhrases.txt")),
    ("TWPhrasesRev", include_str!("dict/TWPhrasesRev.txt")),
    ("TWVariants", include_str!("dict/TWVariants.txt")),
    (
        "TWVariantsPhrases",
        include_str!("dict/TWVariantsPhrases.txt"),
    ),
    ("TWVariantsRev", include_str!("dict/TWVariantsRev.txt")),
    (
        "TWVariantsRevPhrases",
        include_str!("dict/TWVariantsRevPhrases.txt"),
    ),
];

/// How a dictionary group combines its members (OpenCC `DictGroupMatchPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// The first member with any prefix match wins, however short.
    ShortCircuit,
    /// The longest prefix match over all members wins; on a tie, the earliest member.
    Union,
}

/// A dictionary reference of a config.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum DictSpec {
    /// An embedded dictionary: (stem, text).
    File(&'static str, &'static str),
    Group(Policy, Vec<DictSpec>),
}

/// A parsed config: each stage is one conversion over one dictionary (tree).
pub(crate) struct ConfigSpec {
    pub name: &'static str,
    pub normalization: Vec<DictSpec>,
    pub segmentation: Option<DictSpec>,
    pub chain: Vec<DictSpec>,
}

/// The index of a config in [`CONFIG_NAMES`]; a trailing `.json` is accepted.
pub(crate) fn config_index(name: &str) -> Result<usize> {
    let stem = name.strip_suffix(".json").unwrap_or(name);
    CONFIG_NAMES.iter().position(|n| *n == stem).ok_or_else(|| {
        Error::config(format!(
            "unknown OpenCC config '{name}'; valid configs are: {}",
            CONFIG_NAMES.join(", ")
        ))
    })
}

/// Parses the embedded JSON of config number `index`.
pub(crate) fn load(index: usize) -> Result<ConfigSpec> {
    let (name, json) = CONFIGS[index];
    let bad = |what: &str| Error::config(format!("OpenCC config {name}: {what}"));
    let doc: Value = serde_json::from_str(json).map_err(|e| bad(&e.to_string()))?;
    let chain_of = |key: &str| -> Result<Vec<DictSpec>> {
        match doc.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| parse_dict(item.get("dict").ok_or_else(|| bad("stage without dict"))?))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| bad(&e.to_string())),
            Some(_) => Err(bad(&format!("{key} must be an array"))),
        }
    };
    let segmentation = match doc.get("segmentation") {
        None => None,
        Some(seg) => {
            if seg.get("type").and_then(Value::as_str) != Some("mmseg") {
                return Err(bad("only mmseg segmentation is supported"));
            }
            let dict = seg
                .get("dict")
                .ok_or_else(|| bad("segmentation without dict"))?;
            Some(parse_dict(dict).map_err(|e| bad(&e.to_string()))?)
        }
    };
    let chain = chain_of("conversion_chain")?;
    if chain.is_empty() {
        return Err(bad("empty conversion_chain"));
    }
    Ok(ConfigSpec {
        name,
        normalization: chain_of("normalization")?,
        segmentation,
        chain,
    })
}

fn parse_dict(doc: &Value) -> Result<DictSpec> {
    let kind = doc.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "group" => {
            let policy = match doc.get("match_policy").and_then(Value::as_str) {
                None | Some("short_circuit") => Policy::ShortCircuit,
                Some("union") => Policy::Union,
                Some(other) => return Err(Error::config(format!("unknown match_policy {other}"))),
            };
            let members = doc
                .get("dicts")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::config("group without dicts"))?;
            let members = members.iter().map(parse_dict).collect::<Result<Vec<_>>>()?;
            Ok(DictSpec::Group(policy, members))
        }
        "text" | "ocd" | "ocd2" => {
            let file = doc.get("file").and_then(Value::as_str).unwrap_or("");
            let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
            DICTS
                .iter()
                .find(|(n, _)| *n == stem)
                .map(|(n, text)| DictSpec::File(n, text))
                .ok_or_else(|| Error::config(format!("no embedded dictionary {file}")))
        }
        other => Err(Error::config(format!(
            "unsupported dictionary type '{other}'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_table() {
        let names: Vec<_> = CONFIGS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, CONFIG_NAMES);
        assert_eq!(
            config_index("t2s.json").unwrap(),
            config_index("t2s").unwrap()
        );
        let err = config_index("x2y").unwrap_err().to_string();
        assert!(
            err.contains("x2y") && err.contains("s2twp") && err.contains("tw2t"),
            "{err}"
        );
    }

    #[test]
    fn every_config_parses() {
        for i in 0..CONFIGS.len() {
            let spec = load(i).unwrap();
            assert_eq!(spec.normalization.len(), 1, "{}", spec.name);
            assert!(!spec.chain.is_empty());
        }
    }

    #[test]
    fn s2twp_structure() {
        let spec = load(config_index("s2twp").unwrap()).unwrap();
        let DictSpec::Group(Policy::Union, seg) = spec.segmentation.unwrap() else {
            panic!("segmentation must be a union group")
        };
        assert!(matches!(
            seg[1],
            DictSpec::File("STPhrases_GeneratedFromRegionalPhrases", _)
        ));
        assert_eq!(spec.chain.len(), 2);
        let DictSpec::Group(Policy::ShortCircuit, last) = &spec.chain[1] else {
            panic!()
        };
        assert!(matches!(last[0], DictSpec::File("TWPhrases", _)));
    }
}
