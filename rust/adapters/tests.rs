//! Unit tests: exact rendered strings per CollectiveSFT's templates, the parsers, and the
//! accounting of a whole run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;

fn rec(v: Value) -> Record {
    v.as_object().unwrap().clone()
}

fn run(name: &str, r: Value) -> Conv {
    run_with(name, r, false)
}

fn run_with(name: &str, r: Value, per_conversation: bool) -> Conv {
    let info = adapter(name).unwrap();
    let templates = Templates::new(name, info.templates, &BTreeMap::new()).unwrap();
    let mapping = BTreeMap::new();
    let ctx = Ctx {
        templates: &templates,
        per_conversation,
        questions_only: false,
        mapping: &mapping,
        file: "f.json",
        index: 7,
    };
    let Reader::Records(f, _) = info.reader else {
        panic!("not a record adapter")
    };
    f(&rec(r), &ctx)
}

fn one(c: Conv) -> Alpaca {
    match c {
        Ok(Outcome::Records(mut v)) if v.len() == 1 => v.pop().unwrap(),
        other => panic!("expected one record, got {other:?}"),
    }
}

#[test]
fn cmb_exact_collectivesft_strings() {
    let a = one(run(
        "cmb",
        json!({"exam_type": "医师考试", "exam_class": "执业医师", "exam_subject": "口腔执业医师",
               "question": "此男孩可能患", "answer": "D", "question_type": "单项选择题",
               "option": "{'B': '浸润性肺结核', 'A': '小叶型肺炎', 'D': '原发性肺结核', 'C': '继发性肺结核'}"}),
    ));
    assert_eq!(
        a.instruction,
        "该问题源自医师考试，面向执业医师中的口腔执业医师。\n\n"
    );
    assert_eq!(
        a.input,
        "此男孩可能患\nA: 小叶型肺炎\nB: 浸润性肺结核\nC: 继发性肺结核\nD: 原发性肺结核\n"
    );
    assert_eq!(a.output, "答案是D。");
    assert_eq!(a.id, "f.json:7");
    let e = run(
        "cmb",
        json!({"exam_type": "a", "exam_class": "b", "exam_subject": "c", "question": "q",
               "answer": "F", "option": {"A": "x", "B": "y"}}),
    )
    .unwrap_err();
    assert_eq!(
        (e.field.as_deref(), e.kind),
        (Some("answer"), DataErrorKind::Value)
    );
}

#[test]
fn medmcqa_topic_explanation_and_zero_based_cop() {
    let base = json!({"question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d",
                      "cop": 1, "subject_name": "Pathology", "topic_name": "Inflammation",
                      "exp": "Because.", "id": "x1"});
    let a = one(run("medmcqa", base.clone()));
    assert_eq!(
        a.instruction,
        "This is a question about Pathology from real-world medical entrance exam.\n\
         The topic is Inflammation.\n\n"
    );
    assert_eq!(a.input, "Q?\nA: a\nB: b\nC: c\nD: d\n");
    assert_eq!(a.output, "Because.\nThe answer is B .");
    let mut b = base.clone();
    b["topic_name"] = Value::Null;
    b["exp"] = Value::Null;
    let a = one(run("medmcqa", b));
    assert_eq!(
        a.instruction,
        "This is a question about Pathology from real-world medical entrance exam.\n\n"
    );
    assert_eq!(a.output, "The answer is B .");
    let mut c = base;
    c["cop"] = json!(4);
    assert!(run("medmcqa", c).is_err());
}

#[test]
fn nlpec_multi_answer_and_contexts() {
    let a = one(run(
        "nlpec",
        json!({"questionText": "属于大环内酯类的有", "option": ["红霉素", "青霉素", "阿奇霉素"],
               "answer": ["1", "3"], "subject": "药学专业知识（二）",
               "context": ["c1", "c2", "c3"], "questionId": 5}),
    ));
    assert_eq!(
        a.instruction,
        "这是国家药品监督管理局执业药师资格认证考试的题目。\n源自药学专业知识（二）\n\n"
    );
    assert_eq!(
        a.input,
        "属于大环内酯类的有\nA: 红霉素\nB: 青霉素\nC: 阿奇霉素\n"
    );
    assert_eq!(a.output, "红霉素：c1\n青霉素：c2\n阿奇霉素：c3\n答案是AC。");
    assert_eq!(a.id, "5");
    let a = one(run(
        "nlpec",
        json!({"questionText": "q", "option": ["x", "y"], "answer": ["2"], "context": ["", ""]}),
    ));
    assert_eq!(
        a.instruction,
        "这是国家药品监督管理局执业药师资格认证考试的题目。\n\n"
    );
    assert_eq!(a.output, "\n答案是B。");
    let e = run(
        "nlpec",
        json!({"questionText": "q", "option": ["x", "y"], "answer": ["2"], "context": ["c"]}),
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("context"));
}

#[test]
fn cmid_sentence_variants() {
    let a = one(run(
        "cmid",
        json!({"originalText": "间质性肺炎吃什么药?", "entities": [
                  {"label_type": "疾病和诊断", "start_pos": 0, "end_pos": 5},
                  {"label_type": "药物", "start_pos": 6, "end_pos": 7}],
               "label_4class": ["'病症'"], "label_36class": ["'治疗方法'"]}),
    ));
    assert_eq!(
        a.instruction,
        "分析下列描述中提到的医学专有名词并分析其意图：\n\n"
    );
    assert_eq!(a.input, "间质性肺炎吃什么药?");
    assert_eq!(
        a.output,
        "该描述提到了间质性肺炎，药物什, 并期望知道该病症及其治疗方法。"
    );
    // DISC's sample form: no entity spans, labels under dataset_info.
    let a = one(run(
        "cmid",
        json!({"id": "1-6020", "question": "小便疼是怎么回事？", "cate": "病症",
               "dataset_info": {"label_4class": "病症", "label_36class": "病因"}}),
    ));
    assert_eq!(a.output, "该描述期望知道该病症及其病因。");
    assert_eq!(a.id, "1-6020");
    let a = one(run(
        "cmid",
        json!({"question": "q", "dataset_info": {"label_4class": "其他", "label_36class": "养生"}}),
    ));
    assert_eq!(a.output, "该描述期望知道养生。");
    let s = run(
        "cmid",
        json!({"question": "q", "dataset_info": {"label_4class": "其他", "label_36class": "多问"}}),
    );
    assert!(matches!(s, Ok(Outcome::Skipped(_))));
}

#[test]
fn discmed_merging_and_turns() {
    let conv = json!({"_id": "d1", "conversation": [
        {"role": "assistant", "content": "您好"},
        {"role": "user", "content": "头疼"}, {"role": "user", "content": "三天了 "},
        {"role": "assistant", "content": "多休息"}, {"role": "user", "content": "谢谢"}]});
    let Ok(Outcome::Records(v)) = run("discmed", conv.clone()) else {
        panic!()
    };
    assert_eq!(v.len(), 2);
    assert_eq!(
        (v[0].instruction.as_str(), v[0].output.as_str()),
        ("", "您好")
    );
    assert_eq!(v[1].instruction, "头疼 三天了");
    assert_eq!(
        v[1].history,
        Some(vec![(String::new(), "您好".to_string())])
    );
    assert_eq!(v[1].turn, Some(2));
    let Ok(Outcome::Records(v)) = run_with("discmed", conv, true) else {
        panic!()
    };
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].output, "多休息");
    assert_eq!(v[0].history.as_ref().unwrap().len(), 1);
    assert_eq!(v[0].turn, None);
}

#[test]
fn headqa_and_text_parsers() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("HEAD.json");
    std::fs::write(
        &head,
        r#"{"version": "1.0", "language": "en", "exams": {"Cuaderno_2013_1_B": {"name": "Cuaderno_2013_1_B", "category": "biology", "year": "2013", "data": [
            {"qid": "1", "qtext": "Excitatory postsynaptic potentials:", "ra": "3", "answers": [{"aid": 1, "atext": "All or nothing."}, {"aid": 2, "atext": "Hyperpolarizing."}, {"aid": 3, "atext": "Can be summed."}], "image": ""},
            {"qid": "2", "qtext": "Bad", "ra": "9", "answers": [{"aid": 1, "atext": "x"}], "image": ""}]}}}"#,
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let opts = AdaptOptions {
        on_error: OnError::Skip,
        ..AdaptOptions::default()
    };
    let q = dir.path().join("q.jsonl");
    let stats = convert(adapter("headqa").unwrap(), &[head], &out, Some(&q), &opts).unwrap();
    assert_eq!(
        (
            stats.files[0].records,
            stats.files[0].converted,
            stats.files[0].rejected
        ),
        (2, 1, 1)
    );
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        line["instruction"],
        "This is a question about biology from exams to access a specialized position in \
         healthcare system.\n\n"
    );
    assert_eq!(
        line["input"],
        "Excitatory postsynaptic potentials:\nA: All or nothing.\nB: Hyperpolarizing.\nC: Can be summed.\n"
    );
    assert_eq!(line["output"], "The answer is C .");
    assert_eq!(line["id"], "Cuaderno_2013_1_B/1");
    assert_eq!(
        stats.rejected_by_reason.get("value (answer)").copied(),
        None,
        "ra out of range is named by its field"
    );
    assert_eq!(stats.rejected_by_reason.get("value (ra)").copied(), Some(1));
}

#[test]
fn meddialog_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.txt");
    std::fs::write(
        &p,
        "\nid=1\nhttps://x\n\nDescription\n咳嗽三天。\n\nDialogue\n医生：\n咳嗽多久了？\n医生：\n发烧吗？\n病人：\n三天\n\
         病人：\n不发烧\n医生：\n多喝水\n病人：\n谢谢\n\nDiagnosis and suggestions\n感冒\n\n\
         id=1\nhttps://y\n\nDescription\nq\n\nDialogue\nPatient:\nhi\rthere\nDoctor:\nrest\n\n\
         id=2\nhttps://z\n\nDescription\n只有描述\n\n",
    )
    .unwrap();
    let out = dir.path().join("o.jsonl");
    let stats = convert(
        adapter("meddialog").unwrap(),
        std::slice::from_ref(&p),
        &out,
        None,
        &AdaptOptions::default(),
    )
    .unwrap();
    let f = &stats.files[0];
    assert_eq!((f.records, f.converted, f.skipped, f.written), (3, 2, 1, 4));
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["instruction"], "咳嗽三天。");
    assert_eq!(lines[0]["output"], "咳嗽多久了？\n发烧吗？");
    assert_eq!(lines[1]["instruction"], "三天\n不发烧");
    assert_eq!(lines[2]["instruction"], "谢谢");
    assert_eq!(lines[2]["output"], "感冒");
    assert_eq!(lines[2]["history"].as_array().unwrap().len(), 2);
    assert_eq!(lines[3]["id"], "1#2");
    assert_eq!(lines[3]["instruction"], "hi\nthere");
}

#[test]
fn toyhom_txt_and_webmedqa_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("内科.txt");
    let (gbk, _, _) =
        encoding_rs::GBK.encode("头疼,三天了怎么办\n多休息\n\n\n只有标题没有逗号\n答\n\n");
    std::fs::write(&p, gbk).unwrap();
    let out = dir.path().join("o.jsonl");
    let opts = AdaptOptions {
        on_error: OnError::Skip,
        ..AdaptOptions::default()
    };
    let stats = convert(adapter("cmd_toyhom_txt").unwrap(), &[p], &out, None, &opts).unwrap();
    assert_eq!((stats.files[0].converted, stats.files[0].rejected), (1, 1));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("\"instruction\":\"头疼\",\"input\":\"三天了怎么办\",\"output\":\"多休息\"")
    );
    assert_eq!(
        text::strip_timestamps("a2016-04-1210:30b 2016-04-12"),
        "ab 2016-04-12"
    );
}

#[test]
fn every_adapter_has_unique_name_and_checked_overrides() {
    let mut names: Vec<&str> = ADAPTERS.iter().map(|a| a.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ADAPTERS.len());
    assert!(adapter("nope").is_err());
    let dir = tempfile::tempdir().unwrap();
    let opts = AdaptOptions {
        templates: [("output".to_string(), "{oops}".to_string())].into(),
        ..AdaptOptions::default()
    };
    let e = convert(
        adapter("cmb").unwrap(),
        &[PathBuf::from("x.json")],
        &dir.path().join("o.jsonl"),
        None,
        &opts,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Config(_)));
}

#[test]
fn huatuo_sft_prefixes_turns_and_bad_order() {
    let r = json!({"data": ["问：头疼怎么办？", "答：多休息。", "问:还要吃药吗", "答： 不用。", "问：谢谢"]});
    let Ok(Outcome::Records(v)) = run("huatuo_sft", r) else {
        panic!()
    };
    assert_eq!(v.len(), 2);
    assert_eq!(
        (v[0].instruction.as_str(), v[0].output.as_str()),
        ("头疼怎么办？", "多休息。")
    );
    assert_eq!(
        (v[1].instruction.as_str(), v[1].output.as_str()),
        ("还要吃药吗", "不用。")
    );
    assert_eq!(v[1].history.as_ref().unwrap().len(), 1);
    let swapped = json!({"data": ["答：多休息。", "问：头疼怎么办？"]});
    let Err(e) = run("huatuo_sft", swapped) else {
        panic!()
    };
    assert!(e.reason.contains("expected a '问：' turn"), "{}", e.reason);
    assert!(matches!(
        run("huatuo_sft", json!({"data": ["问：只有问题"]})),
        Ok(Outcome::Skipped(_))
    ));
}

#[test]
fn a_number_where_text_is_expected_is_a_rejection_naming_the_field() {
    // `"content": 12345` used to become the text "12345" silently.
    let conv = json!({"_id": "d1", "conversation": [
        {"role": "user", "content": 12345}, {"role": "assistant", "content": "好"}]});
    let err = run("discmed", conv).unwrap_err();
    assert_eq!(err.kind, DataErrorKind::FieldType);
    assert_eq!(err.field.as_deref(), Some("conversation"));
    assert!(
        err.reason.contains("got content as a number"),
        "{}",
        err.reason
    );
    let cmb = json!({"exam_type": "医师考试", "exam_class": "执业医师", "exam_subject": "内科",
        "question": 42, "answer": "A", "question_type": "单项选择题", "option": {"A": "甲", "B": "乙"}});
    let err = run("cmb", cmb).unwrap_err();
    assert_eq!(
        (err.field.as_deref(), err.kind),
        (Some("question"), DataErrorKind::FieldType)
    );
    assert!(err.reason.contains("got a number"), "{}", err.reason);
    // Ids may be numbers: they are not content.
    let ok = json!({"_id": 7, "conversation": [
        {"role": "user", "content": "头疼"}, {"role": "assistant", "content": "休息"}]});
    assert_eq!(one(run("discmed", ok)).id, "7");
}

#[test]
fn every_output_record_carries_every_alpaca_key_with_one_type() {
    // LLaMA-Factory reads example["system"] / example["history"] for every record, and a
    // columnar reader needs one type per key: "" / [] / turn 1 for a record without them.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.jsonl");
    std::fs::write(
        &src,
        concat!(
            r#"{"instruction": "问", "input": "", "output": "答"}"#,
            "\n",
            r#"{"instruction": "问2", "input": "", "output": "答2", "system": "你是医生", "history": [["q", "a"]]}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    convert(
        adapter("alpaca").unwrap(),
        &[src],
        &out,
        None,
        &AdaptOptions::default(),
    )
    .unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&lines[0]), keys(&lines[1]));
    assert_eq!(
        (&lines[0]["system"], &lines[0]["history"], &lines[0]["turn"]),
        (&json!(""), &json!([]), &json!(1))
    );
    assert_eq!(
        (&lines[1]["system"], &lines[1]["history"], &lines[1]["turn"]),
        (&json!("你是医生"), &json!([["q", "a"]]), &json!(2))
    );
}

#[test]
fn evaluation_sets_keep_items_with_answer_side_defects() {
    // Real CMExam rows have empty answers: checking a training record against an item needs
    // its question and options only.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("cmexam.csv");
    std::fs::write(
        &csv,
        "Question,Options,Answer,Explanation\n\
         高血压的诊断标准是,A 甲\\nB 乙,,\n\
         糖尿病的诊断标准是,A 甲\\nB 乙,E,\n\
         ,A 甲\\nB 乙,A,\n\
         肺炎的首选药物是,A 甲\\nB 乙,B,解释\n",
    )
    .unwrap();
    let run = |questions_only: bool| {
        let opts = AdaptOptions {
            on_error: OnError::Skip,
            questions_only,
            ..AdaptOptions::default()
        };
        let out = dir.path().join(format!("out-{questions_only}.jsonl"));
        let q = dir.path().join(format!("q-{questions_only}.jsonl"));
        let stats = convert(
            adapter("cmexam").unwrap(),
            std::slice::from_ref(&csv),
            &out,
            Some(&q),
            &opts,
        )
        .unwrap();
        (stats, std::fs::read_to_string(out).unwrap())
    };
    let (strict, _) = run(false);
    assert_eq!((strict.written, strict.files[0].rejected), (1, 3));
    let (eval, text) = run(true);
    assert_eq!((eval.written, eval.files[0].rejected), (3, 1));
    assert_eq!(
        eval.rejected_by_reason.keys().collect::<Vec<_>>(),
        ["value (question)"]
    );
    assert!(text.lines().next().unwrap().contains("高血压的诊断标准是"));
}
