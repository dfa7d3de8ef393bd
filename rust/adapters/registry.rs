//! The table of adapters (`csft-data sources`), in the order CollectiveSFT's Table 1 and
//! SF-Med's SFT table list the datasets, then the generic ones.

use super::dialogue::{self, DIALOGUE_TEMPLATES, MAPPING_TEMPLATES};
use super::mcqa::{self, *};
use super::qa::{self, *};
use super::{AdapterInfo, Reader, Style};
use crate::error::{Error, Result};
use crate::io::Format;

pub const ADAPTERS: &[AdapterInfo] = &[
    AdapterInfo {
        name: "cmb",
        style: Style::Mcqa,
        dataset: "CMB-Exam (FreedomIntelligence/CMB): JSON/JSONL items with exam_type, exam_class, exam_subject, question, option, answer",
        description: "Chinese medical exams; header names exam type, class and subject; options sorted",
        templates: CMB_TEMPLATES,
        reader: Reader::Records(mcqa::cmb, None),
    },
    AdapterInfo {
        name: "cmexam",
        style: Style::Mcqa,
        dataset: "CMExam (williamliujl/CMExam): CSV Question, Options ('A text\\nB text'), Answer, Explanation",
        description: "Chinese National Medical Licensing Examination; explanation before the answer",
        templates: CMEXAM_TEMPLATES,
        reader: Reader::Records(mcqa::cmexam, None),
    },
    AdapterInfo {
        name: "mlecqa",
        style: Style::Mcqa,
        dataset: "MLEC-QA: {Clinic,Stomatology,PublicHealth,TCM,CWM}_{train,dev,test}.json arrays of {qid, qtype, qtext, options, answer}",
        description: "Chinese medical licensing exam subsets; options sorted",
        templates: MLECQA_TEMPLATES,
        reader: Reader::Records(mcqa::mlecqa, None),
    },
    AdapterInfo {
        name: "nlpec",
        style: Style::Mcqa,
        dataset: "NLPEC: NLPEC_public_data/train.json, JSON lines {questionText, option[], answer[1-based], context[], subject}",
        description: "licensed pharmacist exam; multi-answer items keep every letter; contexts as explanation",
        templates: NLPEC_TEMPLATES,
        reader: Reader::Records(mcqa::nlpec, None),
    },
    AdapterInfo {
        name: "medmcqa",
        style: Style::Mcqa,
        dataset: "MedMCQA: JSON lines {question, opa..opd, cop (0-based), exp, subject_name, topic_name, id}",
        description: "Indian medical entrance exams (English)",
        templates: MEDMCQA_TEMPLATES,
        reader: Reader::Records(mcqa::medmcqa, None),
    },
    AdapterInfo {
        name: "headqa",
        style: Style::Mcqa,
        dataset: "HEAD-QA: HEAD.json / HEAD_EN.json {exams: {name: {category, year, data: [{qid, qtext, ra, answers}]}}}",
        description: "Spanish healthcare specialization exams (es or en); English header as CollectiveSFT",
        templates: HEADQA_TEMPLATES,
        reader: Reader::HeadQa,
    },
    AdapterInfo {
        name: "cmedqa2",
        style: Style::Qa,
        dataset: "cMedQA2: question.csv + answer.csv (+ optional *_candidates.txt to select a split)",
        description: "one record per (question, answer)",
        templates: QA_TEMPLATES,
        reader: Reader::CMedQa2,
    },
    AdapterInfo {
        name: "webmedqa",
        style: Style::Qa,
        dataset: "webMedQA: medQA.{train,valid,test}.txt TSV department, is_answer, question_id, question, answer",
        description: "keeps is_answer=1 rows, timestamps removed",
        templates: QA_TEMPLATES,
        reader: Reader::WebMedQa,
    },
    AdapterInfo {
        name: "cmd_toyhom",
        style: Style::Qa,
        dataset: "Chinese-medical-dialogue-data (Toyhom): GBK CSV department,title,ask,answer",
        description: "instruction = title, input = ask, output = answer",
        templates: TOYHOM_TEMPLATES,
        reader: Reader::Records(qa::toyhom, Some(Format::Csv)),
    },
    AdapterInfo {
        name: "cmd_toyhom_txt",
        style: Style::Qa,
        dataset: "Chinese-medical-dialogue-data (Toyhom): GBK .txt blocks 'title,ask' / answer / blank",
        description: "as cmd_toyhom, from the .txt form",
        templates: TOYHOM_TEMPLATES,
        reader: Reader::ToyhomTxt,
    },
    AdapterInfo {
        name: "pubmedqa",
        style: Style::Qa,
        dataset: "PubMedQA: ori_pqal.json object keyed by PMID {QUESTION, CONTEXTS, LABELS, LONG_ANSWER, final_decision}",
        description: "question → abstract as input → long answer + yes/no/maybe",
        templates: PUBMEDQA_TEMPLATES,
        reader: Reader::Records(qa::pubmedqa, Some(Format::Json)),
    },
    AdapterInfo {
        name: "huatuo26m",
        style: Style::Qa,
        dataset: "Huatuo-26M: JSON/JSONL {instruction, output} (text or one-element lists)",
        description: "single-turn consultations",
        templates: QA_TEMPLATES,
        reader: Reader::Records(qa::huatuo26m, None),
    },
    AdapterInfo {
        name: "chatmed_consult",
        style: Style::Qa,
        dataset: "ChatMed-Consult: JSON lines {query, response}",
        description: "single-turn consultations",
        templates: QA_TEMPLATES,
        reader: Reader::Records(qa::chatmed, None),
    },
    AdapterInfo {
        name: "huatuo_sft",
        style: Style::Qa,
        dataset: "HuatuoGPT-sft-data (FreedomIntelligence): JSON lines {id?, data: [\"问：…\", \"答：…\", …]}",
        description: "question/answer turns with the 问：/答： prefixes removed; later turns with history",
        templates: DIALOGUE_TEMPLATES,
        reader: Reader::Records(dialogue::huatuo_sft, None),
    },
    AdapterInfo {
        name: "meddialog",
        style: Style::Dialogue,
        dataset: "MedDialog / COVID-Dialogue raw text: id=N, URL, Description, Dialogue (病人：/医生： or Patient:/Doctor:)",
        description: "patient → doctor turns; per turn with history, or per conversation",
        templates: DIALOGUE_TEMPLATES,
        reader: Reader::MedDialog,
    },
    AdapterInfo {
        name: "discmed",
        style: Style::Dialogue,
        dataset: "DISC-Med-SFT: JSON lines {_id, source, conversation: [{role, content}]}",
        description: "CollectiveSFT's merging: same-role runs joined, empty user turn before an assistant opening",
        templates: DIALOGUE_TEMPLATES,
        reader: Reader::Records(dialogue::discmed, None),
    },
    AdapterInfo {
        name: "cmtmedqa",
        style: Style::Dialogue,
        dataset: "CMtMedQA (Zhongjing): JSON array mixing {id, instruction, input, output, history} and {instruct, output}",
        description: "multi-turn consultations with history; safety prompts single-turn",
        templates: DIALOGUE_TEMPLATES,
        reader: Reader::Records(dialogue::cmtmedqa, None),
    },
    AdapterInfo {
        name: "cmid",
        style: Style::NerIntent,
        dataset: "CMID: CMID.json {originalText, entities, label_4class, label_36class} (or DISC's sample {question, dataset_info})",
        description: "medical entities and intent as CollectiveSFT's sentence",
        templates: CMID_TEMPLATES,
        reader: Reader::Records(qa::cmid, None),
    },
    AdapterInfo {
        name: "alpaca",
        style: Style::Generic,
        dataset: "any JSON/JSONL/CSV/Parquet of {instruction, input, output, system?, history?}",
        description: "Alpaca records, checked and kept",
        templates: &[],
        reader: Reader::Records(dialogue::alpaca, None),
    },
    AdapterInfo {
        name: "sharegpt",
        style: Style::Dialogue,
        dataset: "any JSON/JSONL/Parquet of conversations [{from, value}] or messages [{role, content}]",
        description: "ShareGPT / OpenAI messages; per turn with history, or per conversation",
        templates: DIALOGUE_TEMPLATES,
        reader: Reader::Records(dialogue::sharegpt, None),
    },
    AdapterInfo {
        name: "mapping",
        style: Style::Generic,
        dataset: "any JSON/JSONL/CSV/Parquet with a declared field mapping (and optional templates)",
        description: "instruction/input/output/system/history/id from named fields, or from templates over fields",
        templates: MAPPING_TEMPLATES,
        reader: Reader::Records(dialogue::mapping, None),
    },
];

/// An adapter by name.
pub fn adapter(name: &str) -> Result<&'static AdapterInfo> {
    ADAPTERS.iter().find(|a| a.name == name).ok_or_else(|| {
        let names: Vec<&str> = ADAPTERS.iter().map(|a| a.name).collect();
        Error::config(format!(
            "unknown adapter '{name}'; expected one of {}",
            names.join(", ")
        ))
    })
}
