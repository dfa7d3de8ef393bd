//! Token ids and labels for training, exactly as LLaMA-Factory builds them.
//!
//! Supervised ([`encode_supervised`]): `SupervisedDatasetProcessor._encode_data_example` of
//! `src/llamafactory/data/processor/supervised.py`: the conversation is encoded turn by turn
//! into (source, target) id pairs (each template element tokenized on its own, the same
//! elements [`TemplateCounter::count`] counts), then the turn loop fits each pair into the
//! budget left with `infer_seqlen` (`efficient_eos` reserves one token up front and appends
//! the EOS, labelled, at the end). Source labels are `IGNORE_INDEX` unless `train_on_prompt`;
//! with `efficient_eos` the first source token of every turn but the first is labelled EOS
//! (it follows the previous response). `mask_history` walks the turns newest first (the last
//! turn gets the budget first), trains only the last turn and prepends each earlier turn, as
//! LLaMA-Factory does; its "first turn" tests then apply to the reversed order, which this
//! reproduces too.
//!
//! Pairwise ([`encode_pairwise`]): `PairwiseDatasetProcessor._encode_data_example`: the prompt
//! (every message but the final response) is encoded once and shared by the chosen and the
//! rejected completion; `infer_seqlen(prompt, max(chosen, rejected), cutoff)` truncates both.
//!
//! The turn loop is the one [`super::truncate::truncate`] models for the length report: without
//! `mask_history` an encoded record is exactly `truncate(pairs, cutoff, efficient_eos).kept`
//! tokens long (a test checks it).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;

use super::count::TemplateCounter;
use super::template::{conversation, fill, Conversation, Element, Slot, Unrenderable};
use super::truncate::infer_seqlen;
use crate::error::{DataError, DataErrorKind, Result};
use crate::io::{OnError, ReaderOptions, RecordReader};
use crate::record::{Origin, Record};

/// Label of a position that carries no loss (PyTorch's `ignore_index`).
pub const IGNORE_INDEX: i32 = -100;

/// Options of [`encode_supervised`] (LLaMA-Factory's `cutoff_len`, `mask_history`,
/// `train_on_prompt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    pub cutoff_len: u64,
    pub mask_history: bool,
    pub train_on_prompt: bool,
}

/// One encoded training example.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    pub input_ids: Vec<u32>,
    /// Same length as `input_ids`; [`IGNORE_INDEX`] where no loss is taken.
    pub labels: Vec<i32>,
}

/// One encoded preference pair: `prompt + chosen` and `prompt + rejected` are the sequences;
/// the prompt is the same ids for both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodedPair {
    pub prompt: Vec<u32>,
    pub chosen: Vec<u32>,
    pub rejected: Vec<u32>,
}

fn to_label(id: u32) -> i32 {
    // Vocabularies are far below 2^31; saturate rather than wrap if one ever is not.
    i32::try_from(id).unwrap_or(i32::MAX)
}

impl TemplateCounter<'_> {
    /// Ids of message `i` of `conv` (user turns even, assistant turns odd), as
    /// `Template._convert_elements_to_ids` builds them: every text element tokenized on its
    /// own, BOS skipped when the tokenizer has none.
    pub fn message_ids(&self, i: usize, conv: &Conversation, system: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for (e, slot) in self.template().message_elements(i, system) {
            match e {
                Element::Bos => ids.extend(self.bos_id()),
                Element::Eos => ids.extend(self.eos_id()),
                Element::Text(t) => {
                    let content = match slot {
                        Slot::Fixed => "",
                        Slot::System => system,
                        Slot::Message => conv.messages[i].as_str(),
                    };
                    ids.extend(self.counter().encode(&fill(t, content))?);
                }
            }
        }
        Ok(ids)
    }

    /// The effective system prompt: the record's own, else the template's default.
    fn system_of<'c>(&'c self, conv: &'c Conversation) -> &'c str {
        match conv.system.as_deref() {
            Some(s) if !s.is_empty() => s,
            _ => self.template().default_system.as_str(),
        }
    }

    /// (source ids, target ids) per turn, as `encode_multiturn` returns them.
    pub fn encode_pairs(&self, conv: &Conversation) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
        let system = self.system_of(conv);
        (0..conv.messages.len() / 2)
            .map(|turn| {
                Ok((
                    self.message_ids(2 * turn, conv, system)?,
                    self.message_ids(2 * turn + 1, conv, system)?,
                ))
            })
            .collect()
    }

    /// Input ids and labels of one conversation (see the module comment).
    pub fn encode_supervised(&self, conv: &Conversation, opts: EncodeOptions) -> Result<Encoded> {
        let efficient_eos = self.template().efficient_eos;
        let eos = self.eos_id();
        let mut pairs = self.encode_pairs(conv)?;
        if opts.mask_history {
            pairs.reverse();
        }
        let cutoff = opts.cutoff_len;
        let mut total = u64::from(efficient_eos);
        // With mask_history the turns are prepended: collect them, then concatenate in reverse.
        let mut pieces: Vec<(Vec<u32>, Vec<i32>)> = Vec::with_capacity(pairs.len());
        for (turn, (source, target)) in pairs.into_iter().enumerate() {
            if total >= cutoff {
                break;
            }
            let (ns, nt) = infer_seqlen(source.len() as u64, target.len() as u64, cutoff - total);
            let (ns, nt) = (ns as usize, nt as usize);
            total += (ns + nt) as u64;
            let source = &source[..ns];
            let target = &target[..nt];
            let mut ids = Vec::with_capacity(ns + nt);
            let mut labels = Vec::with_capacity(ns + nt);
            ids.extend_from_slice(source);
            ids.extend_from_slice(target);
            if opts.train_on_prompt {
                labels.extend(source.iter().map(|&t| to_label(t)));
            } else {
                labels.resize(ns, IGNORE_INDEX);
                if efficient_eos && turn != 0 && ns > 0 {
                    labels[0] = eos.map_or(IGNORE_INDEX, to_label);
                }
            }
            if opts.mask_history && turn != 0 {
                labels.resize(ns + nt, IGNORE_INDEX);
            } else {
                labels.extend(target.iter().map(|&t| to_label(t)));
            }
            pieces.push((ids, labels));
        }
        if opts.mask_history {
            pieces.reverse();
        }
        let mut out = Encoded::default();
        for (ids, labels) in pieces {
            out.input_ids.extend(ids);
            out.labels.extend(labels);
        }
        if efficient_eos {
            if let Some(eos) = eos {
                out.input_ids.push(eos);
                out.labels.push(to_label(eos));
            }
        }
        Ok(out)
    }

    /// A preference pair: the prompt is encoded once (`encode_oneturn`'s prompt: every message
    /// but the last), the two completions are the final message's ids for each response.
    pub fn encode_pairwise(
        &self,
        chosen: &Conversation,
        rejected: &Conversation,
        cutoff_len: u64,
    ) -> Result<EncodedPair> {
        let system = self.system_of(chosen);
        let n = chosen.messages.len();
        let mut prompt = Vec::new();
        for i in 0..n - 1 {
            prompt.extend(self.message_ids(i, chosen, system)?);
        }
        let mut c = self.message_ids(n - 1, chosen, system)?;
        let mut r = self.message_ids(n - 1, rejected, system)?;
        if self.template().efficient_eos {
            c.extend(self.eos_id());
            r.extend(self.eos_id());
        }
        let (ns, nt) = infer_seqlen(prompt.len() as u64, c.len().max(r.len()) as u64, cutoff_len);
        prompt.truncate(ns as usize);
        c.truncate(nt as usize);
        r.truncate(nt as usize);
        Ok(EncodedPair {
            prompt,
            chosen: c,
            rejected: r,
        })
    }
}

/// Why one record of a batch was not encoded (the caller locates it).
pub type RecordResult<T> = std::result::Result<T, Unrenderable>;

/// Encodes records in parallel (rayon), in input order. A record that cannot be rendered gives
/// its [`Unrenderable`]; a tokenizer failure stops the batch.
pub fn encode_supervised(
    records: &[Record],
    bound: &TemplateCounter<'_>,
    opts: EncodeOptions,
) -> Result<Vec<RecordResult<Encoded>>> {
    records
        .par_iter()
        .with_min_len(8)
        .map(|record| match conversation(record) {
            Ok(conv) => bound.encode_supervised(&conv, opts).map(Ok),
            Err(u) => Ok(Err(u)),
        })
        .collect()
}

/// The text of a `chosen`/`rejected` field: a string, or a message object
/// (`{role, content}` / `{from, value}`) as sharegpt-style ranking data has it.
fn response_text(record: &Record, field: &str) -> RecordResult<String> {
    let bad = |kind, reason: &str| Unrenderable {
        field: field.into(),
        kind,
        reason: reason.into(),
    };
    match record.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Object(m)) => match m.get("content").or_else(|| m.get("value")) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(bad(
                DataErrorKind::FieldType,
                "expected a string or a {role, content} message",
            )),
        },
        None | Some(Value::Null) => Err(bad(DataErrorKind::MissingField, "missing")),
        Some(_) => Err(bad(
            DataErrorKind::FieldType,
            "expected a string or a {role, content} message",
        )),
    }
}

/// The (chosen, rejected) conversations of a ranking record: Alpaca style (`instruction`,
/// `input`, `history`, `system`, `chosen`, `rejected`) or messages style with `chosen` and
/// `rejected` as the final assistant message.
pub fn pair_conversations(record: &Record) -> RecordResult<(Conversation, Conversation)> {
    let chosen = response_text(record, "chosen")?;
    let rejected = response_text(record, "rejected")?;
    let mut base = record.clone();
    base.remove("chosen");
    base.remove("rejected");
    let is_messages = ["messages", "conversations", "conversation"]
        .iter()
        .any(|f| base.contains_key(*f));
    let conv = if is_messages {
        // The prompt turns end with the user; append a placeholder answer to reuse the checks.
        let field = ["messages", "conversations", "conversation"]
            .into_iter()
            .find(|f| base.contains_key(*f))
            .expect("checked above");
        if let Some(Value::Array(list)) = base.get_mut(field) {
            let mut msg = serde_json::Map::new();
            msg.insert("role".into(), Value::String("assistant".into()));
            msg.insert("content".into(), Value::String(String::new()));
            list.push(Value::Object(msg));
        }
        base.remove("output");
        conversation(&base)?
    } else {
        base.insert("output".into(), Value::String(String::new()));
        conversation(&base)?
    };
    let n = conv.messages.len();
    let mut c = conv.clone();
    c.messages[n - 1] = chosen;
    let mut r = conv;
    r.messages[n - 1] = rejected;
    Ok((c, r))
}

/// Encodes ranking records in parallel, in input order (see [`pair_conversations`]).
pub fn encode_pairwise(
    records: &[Record],
    bound: &TemplateCounter<'_>,
    cutoff_len: u64,
) -> Result<Vec<RecordResult<EncodedPair>>> {
    records
        .par_iter()
        .with_min_len(8)
        .map(|record| match pair_conversations(record) {
            Ok((c, r)) => bound.encode_pairwise(&c, &r, cutoff_len).map(Ok),
            Err(u) => Ok(Err(u)),
        })
        .collect()
}

/// Where the records to encode come from.
pub enum Input<'a> {
    /// JSON objects, one per string (JSON Lines already split); located as `<lines>`.
    Lines(&'a [&'a str]),
    /// A file in any format the readers know.
    File(&'a Path, ReaderOptions),
}

/// Records with their origins, and the ones that could not be read (in `Skip` mode).
pub struct Loaded {
    pub path: PathBuf,
    pub records: Vec<Record>,
    pub origins: Vec<Origin>,
    pub rejections: Vec<DataError>,
}

/// Reads all records of `input`. A line that is not a JSON object is an error (`Raise`) or a
/// rejection (`Skip`), located by its 0-based index.
pub fn load_records(input: Input<'_>, on_error: OnError) -> Result<Loaded> {
    match input {
        Input::Lines(lines) => {
            let path = PathBuf::from("<lines>");
            let mut out = Loaded {
                path: path.clone(),
                records: Vec::with_capacity(lines.len()),
                origins: Vec::with_capacity(lines.len()),
                rejections: Vec::new(),
            };
            for (i, line) in lines.iter().enumerate() {
                let index = i as u64;
                match serde_json::from_str::<Value>(line) {
                    Ok(Value::Object(record)) => {
                        out.records.push(record);
                        out.origins.push(Origin { index, line: None });
                    }
                    other => {
                        let reason = match other {
                            Ok(_) => "not a JSON object".to_string(),
                            Err(e) => format!("invalid JSON: {e}"),
                        };
                        let e = DataError::new(&path, DataErrorKind::Json, reason).at_record(index);
                        match on_error {
                            OnError::Raise => return Err(e.into()),
                            OnError::Skip => out.rejections.push(e),
                        }
                    }
                }
            }
            Ok(out)
        }
        Input::File(path, mut options) => {
            options.on_error = on_error;
            let mut reader = RecordReader::open(path, options)?;
            let mut out = Loaded {
                path: path.to_path_buf(),
                records: Vec::new(),
                origins: Vec::new(),
                rejections: Vec::new(),
            };
            while let Some(batch) = reader.next_batch()? {
                out.records.extend(batch.records);
                out.origins.extend(batch.origins);
                out.rejections
                    .extend(batch.rejections.into_iter().map(|r| r.error));
            }
            Ok(out)
        }
    }
}

fn locate(loaded: &Loaded, origin: &Origin, u: Unrenderable) -> DataError {
    let mut e = DataError::new(&loaded.path, u.kind, u.reason)
        .at_record(origin.index)
        .in_field(u.field);
    e.line = origin.line;
    e
}

/// Concatenated sequences and their boundaries: sequence `k` is
/// `values[offsets[k]..offsets[k + 1]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ragged<T> {
    pub values: Vec<T>,
    pub offsets: Vec<u64>,
}

impl<T: Copy> Ragged<T> {
    fn new() -> Self {
        Self {
            values: Vec::new(),
            offsets: vec![0],
        }
    }

    fn push(&mut self, seq: &[T]) {
        self.values.extend_from_slice(seq);
        self.offsets.push(self.values.len() as u64);
    }
}

/// Supervised examples of a whole input, flat.
#[derive(Debug, Clone)]
pub struct EncodedBatch {
    pub input_ids: Ragged<u32>,
    /// Same offsets as `input_ids`.
    pub labels: Vec<i32>,
    /// The 0-based record index of each example.
    pub indices: Vec<u64>,
    pub rejections: Vec<DataError>,
}

/// Preference pairs of a whole input, flat.
#[derive(Debug, Clone)]
pub struct EncodedPairBatch {
    pub prompt: Ragged<u32>,
    pub chosen: Ragged<u32>,
    pub rejected: Ragged<u32>,
    pub indices: Vec<u64>,
    pub rejections: Vec<DataError>,
}

/// Encodes every record of `input` for SFT. Records that cannot be rendered stop the run
/// (`Raise`, a located error naming the field) or are listed in `rejections` (`Skip`).
pub fn encode_supervised_input(
    input: Input<'_>,
    bound: &TemplateCounter<'_>,
    opts: EncodeOptions,
    on_error: OnError,
) -> Result<EncodedBatch> {
    check_cutoff(opts.cutoff_len)?;
    let loaded = load_records(input, on_error)?;
    let encoded = encode_supervised(&loaded.records, bound, opts)?;
    let mut out = EncodedBatch {
        input_ids: Ragged::new(),
        labels: Vec::new(),
        indices: Vec::new(),
        rejections: Vec::new(),
    };
    out.rejections = collect(encoded, loaded, on_error, |e, index| {
        out.input_ids.push(&e.input_ids);
        out.labels.extend(e.labels);
        out.indices.push(index);
    })?;
    Ok(out)
}

/// Encodes every ranking record of `input` for DPO (see [`encode_supervised_input`]).
pub fn encode_pairwise_input(
    input: Input<'_>,
    bound: &TemplateCounter<'_>,
    cutoff_len: u64,
    on_error: OnError,
) -> Result<EncodedPairBatch> {
    check_cutoff(cutoff_len)?;
    let loaded = load_records(input, on_error)?;
    let encoded = encode_pairwise(&loaded.records, bound, cutoff_len)?;
    let mut out = EncodedPairBatch {
        prompt: Ragged::new(),
        chosen: Ragged::new(),
        rejected: Ragged::new(),
        indices: Vec::new(),
        rejections: Vec::new(),
    };
    out.rejections = collect(encoded, loaded, on_error, |p, index| {
        out.prompt.push(&p.prompt);
        out.chosen.push(&p.chosen);
        out.rejected.push(&p.rejected);
        out.indices.push(index);
    })?;
    Ok(out)
}

/// Hands each encoded record with its index to `keep`; an unrenderable one stops the run
/// (`Raise`) or joins the reader's rejections (`Skip`), returned in record order.
fn collect<T>(
    encoded: Vec<std::result::Result<T, Unrenderable>>,
    loaded: Loaded,
    on_error: OnError,
    mut keep: impl FnMut(T, u64),
) -> Result<Vec<DataError>> {
    let mut rejections = Vec::new();
    for (e, origin) in encoded.into_iter().zip(&loaded.origins) {
        match e {
            Ok(e) => keep(e, origin.index),
            Err(u) => {
                let err = locate(&loaded, origin, u);
                match on_error {
                    OnError::Raise => return Err(err.into()),
                    OnError::Skip => rejections.push(err),
                }
            }
        }
    }
    rejections.extend(loaded.rejections);
    rejections.sort_by_key(|e| e.record);
    Ok(rejections)
}

fn check_cutoff(cutoff_len: u64) -> Result<()> {
    if cutoff_len == 0 {
        return Err(crate::Error::config("cutoff_len must be at least 1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::lengths::template::Template;
    use crate::lengths::tests::char_tokenizer;
    use crate::lengths::truncate::truncate;
    use crate::lengths::TokenCounter;

    fn conv(system: Option<&str>, messages: &[&str]) -> Conversation {
        Conversation {
            system: system.map(str::to_string),
            messages: messages.iter().map(|m| m.to_string()).collect(),
        }
    }

    const OPTS: EncodeOptions = EncodeOptions {
        cutoff_len: 1024,
        mask_history: false,
        train_on_prompt: false,
    };

    #[test]
    fn intern2_ids_and_prompt_masked_labels() {
        let dir = tempfile::tempdir().unwrap();
        let tok = TokenCounter::from_file(char_tokenizer(dir.path())).unwrap();
        let t =
            TemplateCounter::new(&tok, Template::builtin("intern2").unwrap(), None, None).unwrap();
        let e = t
            .encode_supervised(&conv(Some("S"), &["a", "a"]), OPTS)
            .unwrap();
        // only "a" is in the vocabulary: every other character is <unk> (0)
        let unk = 0;
        let mut want = vec![1, 3];
        want.extend([unk; 7]); // "system\n" (unknown characters)
        want.extend([unk, 4, unk]); // "S", <|im_end|>, "\n"
        want.push(3);
        want.extend([unk; 5]); // "user\n"
        want.extend([5, 4, unk, 3]); // "a", <|im_end|>, "\n", <|im_start|>
        want.extend([5, unk, unk, unk, unk, unk, 5, unk, unk, unk]); // "assistant\n"
        let prompt_len = want.len();
        want.extend([5, 4, unk]); // "a<|im_end|>\n"
        assert_eq!(e.input_ids, want);
        assert!(e.labels[..prompt_len].iter().all(|&l| l == IGNORE_INDEX));
        assert_eq!(e.labels[prompt_len..], [5, 4, 0]);
        let counted = t.count(&conv(Some("S"), &["a", "a"])).unwrap();
        assert_eq!(counted.total(), e.input_ids.len() as u64);
    }

    #[test]
    fn length_equals_the_length_reports_truncated_total() {
        let dir = tempfile::tempdir().unwrap();
        let tok = TokenCounter::from_file(char_tokenizer(dir.path())).unwrap();
        let convs = [
            conv(Some("S"), &["aaaa", "a", "aa", "aaaaaaaaaaaaaaaaaaaaaa"]),
            conv(None, &["a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]),
            conv(
                Some("S"),
                &["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a", "a", "a"],
            ),
        ];
        for name in ["intern2", "intern2_v08", "qwen", "default", "llama3"] {
            let mut tmpl = Template::builtin(name).unwrap();
            tmpl.default_system = "sys".into();
            let eos = (name == "llama3").then_some("</s>");
            let t = TemplateCounter::new(&tok, tmpl, None, eos).unwrap();
            for c in &convs {
                let pairs = t.count(c).unwrap().pairs;
                for cutoff in [5, 17, 33, 40, 41, 64, 1000] {
                    let opts = EncodeOptions {
                        cutoff_len: cutoff,
                        ..OPTS
                    };
                    let e = t.encode_supervised(c, opts).unwrap();
                    let want = truncate(&pairs, cutoff, t.template().efficient_eos).kept;
                    assert_eq!(e.input_ids.len() as u64, want, "{name} cutoff {cutoff}");
                    assert_eq!(e.labels.len(), e.input_ids.len());
                }
            }
        }
    }

    #[test]
    fn mask_history_trains_only_the_last_turn_and_train_on_prompt_labels_all() {
        let dir = tempfile::tempdir().unwrap();
        let tok = TokenCounter::from_file(char_tokenizer(dir.path())).unwrap();
        let t =
            TemplateCounter::new(&tok, Template::builtin("chatml").unwrap(), None, None).unwrap();
        let c = conv(None, &["a", "aa", "a", "aaa"]);
        let plain = t.encode_supervised(&c, OPTS).unwrap();
        let masked = t
            .encode_supervised(
                &c,
                EncodeOptions {
                    mask_history: true,
                    ..OPTS
                },
            )
            .unwrap();
        assert_eq!(plain.input_ids, masked.input_ids, "same ids when all fits");
        let trained = |e: &Encoded| e.labels.iter().filter(|&&l| l != IGNORE_INDEX).count();
        assert_eq!(trained(&plain), 4 + 5, "both responses + <|im_end|>\\n");
        assert_eq!(trained(&masked), 5);
        let all = t
            .encode_supervised(
                &c,
                EncodeOptions {
                    train_on_prompt: true,
                    ..OPTS
                },
            )
            .unwrap();
        assert_eq!(trained(&all), all.input_ids.len());
        // a tight budget goes to the last turn first under mask_history
        let tight = EncodeOptions {
            cutoff_len: 20,
            mask_history: true,
            train_on_prompt: false,
        };
        let m = t.encode_supervised(&c, tight).unwrap();
        assert_eq!(m.input_ids.len(), 20);
        assert_eq!(trained(&m), 5, "the last response survives whole");
    }

    #[test]
    fn efficient_eos_labels_the_separator_and_appends_eos() {
        let dir = tempfile::tempdir().unwrap();
        let tok = TokenCounter::from_file(char_tokenizer(dir.path())).unwrap();
        let v08 = Template::builtin("intern2_v08").unwrap();
        let t = TemplateCounter::new(&tok, v08, None, None).unwrap();
        let e = t
            .encode_supervised(&conv(None, &["a", "a", "a", "a"]), OPTS)
            .unwrap();
        assert_eq!(*e.input_ids.last().unwrap(), 2);
        assert_eq!(*e.labels.last().unwrap(), 2);
        // turn 1 starts with the separator <|im_end|>: labelled EOS (id 2)
        let first_len = 21 + 1;
        assert_eq!(e.input_ids[first_len], 4);
        assert_eq!(e.labels[first_len], 2);
        assert_eq!(e.labels[first_len - 1], 5, "the first response is trained");
    }

    #[test]
    fn pairwise_shares_the_prompt_and_truncates_both() {
        let dir = tempfile::tempdir().unwrap();
        let tok = TokenCounter::from_file(char_tokenizer(dir.path())).unwrap();
        let t =
            TemplateCounter::new(&tok, Template::builtin("chatml").unwrap(), None, None).unwrap();
        let rec = |v: Value| v.as_object().unwrap().clone();
        let records = vec![
            rec(
                json!({"instruction": "a", "chosen": "aaaa", "rejected": "a",
                       "history": [["a", "a"]]}),
            ),
            rec(json!({"messages": [{"role": "user", "content": "a"}],
                       "chosen": {"role": "assistant", "content": "a"}, "rejected": "aa"})),
            rec(json!({"instruction": "a", "chosen": "a"})),
        ];
        let out = encode_pairwise(&records, &t, 1024).unwrap();
        let p0 = out[0].as_ref().unwrap();
        let single = t
            .encode_supervised(&conv(None, &["a", "a", "a", "aaaa"]), OPTS)
            .unwrap();
        let n = p0.prompt.len();
        assert_eq!([&p0.prompt[..], &p0.chosen[..]].concat(), single.input_ids);
        assert!(single.labels[n - 1] == IGNORE_INDEX && single.labels[n] != IGNORE_INDEX);
        assert_eq!(p0.rejected.len(), 1 + 2);
        let p1 = out[1].as_ref().unwrap();
        assert_eq!((p1.chosen.len(), p1.rejected.len()), (3, 4));
        let e = out[2].as_ref().unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.kind),
            ("rejected", DataErrorKind::MissingField)
        );
        let lines = [
            r#"{"instruction": "a", "output": "aa"}"#,
            "[1]",
            r#"{"instruction": "a"}"#,
        ];
        let e = encode_supervised_input(Input::Lines(&lines), &t, OPTS, OnError::Skip).unwrap();
        assert_eq!((e.indices.clone(), e.rejections.len()), (vec![0], 2));
        assert_eq!(e.input_ids.offsets, [0, e.labels.len() as u64]);
        assert_eq!(e.rejections[1].field.as_deref(), Some("output"));
        let err = encode_supervised_input(Input::Lines(&lines), &t, OPTS, OnError::Raise);
        assert!(err.err().unwrap().to_string().contains("record 1"));
        let short = encode_pairwise(&records[..1], &t, 30).unwrap();
        let s = short[0].as_ref().unwrap();
        assert!(s.prompt.len() + s.chosen.len() <= 30);
        assert_eq!(s.prompt[..], p0.prompt[..s.prompt.len()]);
    }
}
