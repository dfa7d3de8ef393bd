//! End-to-end tests of the dedup engine on real Chinese medical QA text (Huatuo-26M test split)
//! and on small hand-made corpora.

use std::sync::OnceLock;

use super::minhash::splitmix64;
use super::shingle::shingle_set;
use super::*;

const HUATUO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/huatuo26m/huatuo26M_test.json"
);

/// Question + answer of each Huatuo record (6,000 texts, ~170 chars on average).
fn huatuo() -> &'static [String] {
    static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        let raw = std::fs::read_to_string(HUATUO).expect("read Huatuo-26M test split");
        let rows: Vec<serde_json::Value> = serde_json::from_str(&raw).expect("parse JSON");
        let first = |v: &serde_json::Value, f: &str| -> String {
            v[f].as_array()
                .and_then(|a| a.first())
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_string()
        };
        rows.iter()
            .map(|r| format!("{}\n{}", first(r, "instruction"), first(r, "output")))
            .collect()
    })
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `text` with `edits` random char substitutions / insertions / deletions (chars from `pool`).
fn edit(text: &str, edits: usize, pool: &[char], rng: &mut Rng) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..edits {
        let pos = rng.below(chars.len());
        let c = pool[rng.below(pool.len())];
        match rng.below(3) {
            0 => chars[pos] = c,
            1 => chars.insert(pos, c),
            _ => {
                chars.remove(pos);
            }
        }
    }
    chars.into_iter().collect()
}

fn true_jaccard(a: &str, b: &str, cfg: &DedupConfig) -> f64 {
    let p = cfg.shingle_params();
    jaccard(&shingle_set(a, &p).1, &shingle_set(b, &p).1)
}

/// ~2,300 texts: 2,000 real ones plus 300 planted near-copies (true Jaccard ≥ 0.85) shuffled in;
/// returns the texts and the planted (original, copy) index pairs.
fn planted_corpus(cfg: &DedupConfig) -> (Vec<String>, Vec<(usize, usize)>) {
    let real: Vec<&String> = huatuo()
        .iter()
        .filter(|t| t.chars().count() >= 60)
        .take(2000)
        .collect();
    let pool: Vec<char> = real.iter().take(50).flat_map(|t| t.chars()).collect();
    let mut rng = Rng(2024);
    let mut copies = Vec::new(); // (original's position in `real`, copy)
    while copies.len() < 300 {
        let o = rng.below(real.len());
        let edits = 1 + rng.below(4);
        let copy = edit(real[o], edits, &pool, &mut rng);
        if copy != *real[o] && true_jaccard(real[o], &copy, cfg) >= 0.85 {
            copies.push((o, copy));
        }
    }
    // Shuffle originals and copies together (Fisher-Yates), tracking where each lands.
    let mut items: Vec<(String, Option<usize>)> =
        real.iter().map(|t| (t.to_string(), None)).collect();
    items.extend(copies.into_iter().map(|(o, c)| (c, Some(o))));
    let mut order: Vec<usize> = (0..items.len()).collect();
    for i in (1..order.len()).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    let mut position = vec![0; items.len()];
    for (new, &old) in order.iter().enumerate() {
        position[old] = new;
    }
    let texts: Vec<String> = order.iter().map(|&old| items[old].0.clone()).collect();
    let pairs = items
        .iter()
        .enumerate()
        .filter_map(|(old, (_, o))| o.map(|o| (position[o], position[old])))
        .collect();
    (texts, pairs)
}

fn refs(texts: &[String]) -> Vec<&str> {
    texts.iter().map(String::as_str).collect()
}

#[test]
fn signature_estimate_tracks_true_jaccard_on_real_text() {
    for sketch in [Sketch::MinHash, Sketch::Oph] {
        estimate_tracks_true_jaccard(DedupConfig {
            sketch,
            ..DedupConfig::default()
        });
    }
}

fn estimate_tracks_true_jaccard(cfg: DedupConfig) {
    let sketch = cfg.sketch;
    let texts: Vec<&String> = huatuo()
        .iter()
        .filter(|t| t.chars().count() >= 120)
        .take(400)
        .collect();
    let pool: Vec<char> = texts.iter().take(20).flat_map(|t| t.chars()).collect();
    let mut rng = Rng(7);
    // Variants from light to heavy edits span the whole similarity range.
    let mut pairs = Vec::new();
    for (k, t) in texts.iter().enumerate() {
        let len = t.chars().count();
        let edits = 1 + (k % 20) * len / 60;
        pairs.push((t.to_string(), edit(t, edits, &pool, &mut rng)));
    }
    let flat: Vec<&str> = pairs
        .iter()
        .flat_map(|(a, b)| [a.as_str(), b.as_str()])
        .collect();
    let sigs = signatures(&flat, &cfg.minhash_params()).unwrap();
    let (mut within, mut sum_err, mut sum_sq, mut sum_var) = (0, 0.0, 0.0, 0.0);
    let mut spread = [0usize; 5];
    for (k, (a, b)) in pairs.iter().enumerate() {
        let j = true_jaccard(a, b, &cfg);
        let est = sigs.estimate(2 * k, 2 * k + 1);
        spread[((j * 5.0) as usize).min(4)] += 1;
        within += usize::from((est - j).abs() <= 0.1);
        sum_err += est - j;
        sum_sq += (est - j).powi(2);
        sum_var += j * (1.0 - j) / cfg.num_perm as f64;
    }
    let n = pairs.len() as f64;
    assert!(
        spread.iter().all(|&c| c >= 20),
        "similarities span [0, 1]: {spread:?}"
    );
    assert!(
        within as f64 / n >= 0.97,
        "{sketch:?}: {within}/{n} estimates within ±0.1"
    );
    assert!(
        (sum_err / n).abs() < 0.01,
        "{sketch:?}: bias {}",
        sum_err / n
    );
    // The error variance matches independent permutations' J(1-J)/num_perm.
    let ratio = sum_sq / sum_var;
    assert!(
        (0.75..1.3).contains(&ratio),
        "{sketch:?}: error variance / theory = {ratio}"
    );
}

#[test]
fn planted_near_duplicates_are_found() {
    let cfg = DedupConfig::default();
    let (texts, planted) = planted_corpus(&cfg);
    let tr = refs(&texts);
    for (verify, sketch) in [
        (true, Sketch::MinHash),
        (false, Sketch::MinHash),
        (true, Sketch::Oph),
        (false, Sketch::Oph),
    ] {
        let cfg = DedupConfig {
            verify,
            sketch,
            ..cfg
        };
        let res = near_duplicates(&tr, &cfg).unwrap();
        let found = planted
            .iter()
            .filter(|&&(o, c)| res.keeper(o) == res.keeper(c))
            .count();
        let recall = found as f64 / planted.len() as f64;
        assert!(recall >= 0.95, "verify={verify}: recall {recall}");
        assert!(res.stats.near_duplicates >= 280, "{:?}", res.stats);
        for (i, d) in res.duplicate_of.iter().enumerate() {
            let Some(d) = d else { continue };
            assert!(
                res.is_kept(d.of as usize),
                "duplicates point at kept records"
            );
            assert_eq!(res.cluster[i], res.cluster[d.of as usize]);
            if verify {
                let j = true_jaccard(tr[i], tr[d.of as usize], &cfg);
                assert!(j >= cfg.threshold, "false positive {i}→{} at {j}", d.of);
                assert!((j - d.similarity).abs() < 1e-12);
            } else {
                assert!(d.similarity >= cfg.threshold, "estimate {}", d.similarity);
            }
        }
    }
}

#[test]
fn short_texts_match_only_exactly() {
    let texts = [
        "头痛",
        "头疼",
        "头痛",
        "发烧了",
        "发烧啦",
        "咳嗽",
        "咳嗽",
        "嗓子疼",
        "",
        " ",
        "肚子疼",
        "肚子痛",
        "ok",
        "OK",
    ];
    for verify in [true, false] {
        let cfg = DedupConfig {
            verify,
            ..DedupConfig::default()
        };
        let res = near_duplicates(&texts, &cfg).unwrap();
        assert_eq!(res.stats.near_duplicates, 0);
        assert_eq!(res.stats.short + res.stats.empty, texts.len());
        for (i, d) in res.duplicate_of.iter().enumerate() {
            if let Some(d) = d {
                assert_eq!(d.kind, DupKind::Exact);
                assert_eq!(texts[i], texts[d.of as usize]);
            }
        }
        let removed: Vec<usize> = (0..texts.len()).filter(|&i| !res.is_kept(i)).collect();
        assert_eq!(removed, vec![2, 6]);
    }
}

#[test]
fn exact_duplicates_and_keep_policies() {
    let base =
        "患者男，45岁，反复上腹痛三个月，饭后加重，伴反酸嗳气，请问是胃溃疡吗？应该做胃镜检查吗？";
    let longer = "患者男，45岁，反复上腹痛三个月，饭后加重，伴反酸嗳气，请问是胃溃疡吗？应该做胃镜检查吗？谢谢";
    let other =
        "孩子三岁，发烧三十九度，手脚冰凉，精神差，需要马上去医院吗？平时身体很好没有病史。";
    let texts = [base, other, base, longer, other, base];
    let cfg = DedupConfig::default();

    let res = near_duplicates(&texts, &cfg).unwrap();
    let of = |r: &DedupResult, i: usize| r.duplicate_of[i].map(|d| (d.of, d.kind));
    assert_eq!(of(&res, 0), None);
    assert_eq!(of(&res, 1), None);
    assert_eq!(of(&res, 2), Some((0, DupKind::Exact)));
    assert_eq!(of(&res, 3), Some((0, DupKind::Near)));
    assert_eq!(of(&res, 4), Some((1, DupKind::Exact)));
    assert_eq!(of(&res, 5), Some((0, DupKind::Exact)));
    assert_eq!(res.stats.exact_duplicates, 3);
    assert_eq!(res.stats.near_duplicates, 1);
    assert_eq!(res.cluster, vec![0, 1, 0, 0, 1, 0]);
    assert_eq!(res.cluster_sizes, vec![4, 2]);
    let sim = res.duplicate_of[3].unwrap().similarity;
    assert!((0.8..1.0).contains(&sim), "{sim}");

    let longest = DedupConfig {
        keep: KeepPolicy::Longest,
        ..cfg
    };
    let res = near_duplicates(&texts, &longest).unwrap();
    assert!(res.is_kept(3));
    assert_eq!(of(&res, 0), Some((3, DupKind::Near)));
    assert_eq!(
        of(&res, 2),
        Some((3, DupKind::Near)),
        "exact copies follow their group"
    );
    assert_eq!(of(&res, 4), Some((1, DupKind::Exact)));

    let prio = DedupConfig {
        keep: KeepPolicy::Priority,
        ..cfg
    };
    let ranks = [3, 2, 1, 5, 0, 1];
    let inputs = DedupInputs {
        priority: Some(&ranks),
        ..DedupInputs::default()
    };
    let res = dedup(&texts, &inputs, &prio).unwrap();
    // base copies 0, 2, 5 (ranks 3, 1, 1) → 2 represents them; 3 has rank 5; other: 4 (rank 0)
    assert_eq!(res.kept_indices(), vec![2, 4]);
    assert_eq!(of(&res, 0), Some((2, DupKind::Exact)));
    assert_eq!(of(&res, 5), Some((2, DupKind::Exact)));
    assert_eq!(of(&res, 3), Some((2, DupKind::Near)));
    assert_eq!(of(&res, 1), Some((4, DupKind::Exact)));
    assert!(
        dedup(&texts, &DedupInputs::default(), &prio).is_err(),
        "priority needs ranks"
    );

    // Custom exact keys: records 1 and 3 share a key although their texts differ.
    let keys = ["a", "k", "b", "k", "c", "d"];
    let inputs = DedupInputs {
        exact_keys: Some(&keys),
        ..DedupInputs::default()
    };
    let res = dedup(&texts, &inputs, &cfg).unwrap();
    assert_eq!(of(&res, 3), Some((1, DupKind::Exact)));
    assert_eq!(
        of(&res, 2),
        Some((0, DupKind::Near)),
        "same text, different key: near at 1.0"
    );
    assert_eq!(res.duplicate_of[2].unwrap().similarity, 1.0);
}

#[test]
fn two_scope_within_then_across_sources() {
    let t = |s: &str| s.to_string();
    let a = t("高血压患者平时饮食应该注意什么？需要低盐低脂饮食，多吃蔬菜水果，少吃油腻食物，戒烟限酒，适量运动。");
    let a2 = t("高血压患者平时饮食应该注意什么？需要低盐低脂饮食，多吃蔬菜水果，少吃油腻食物，戒烟限酒，适量运动！");
    let b = t("糖尿病人可以吃西瓜吗？血糖控制平稳时可以少量食用，最好在两餐之间吃，并监测餐后血糖的变化。");
    let b2 = t("糖尿病人可以吃西瓜吗？血糖控制平稳时可以少量食用，最好在两餐之间吃，并监测餐后血糖的变化。谢谢");
    let c = t("宝宝湿疹反复发作怎么办？注意保湿，穿纯棉衣物，避免过热出汗，严重时在医生指导下外用弱效激素药膏。");
    //            0       1        2       3        4       5
    let texts = [a.clone(), a2, b.clone(), b2.clone(), c.clone(), b];
    let sources = [0, 0, 1, 0, 1, 1];
    let tr = refs(&texts);
    let cfg = DedupConfig::default();
    let res = dedup_two_scope(&tr, &sources, &DedupInputs::default(), &cfg).unwrap();
    let got: Vec<_> = (0..texts.len())
        .map(|i| (res.duplicate_of[i].map(|d| (d.of, d.kind)), res.scope[i]))
        .collect();
    assert_eq!(
        got,
        vec![
            (None, None),
            (Some((0, DupKind::Near)), Some(Scope::Within)), // a2 ~ a, both source 0
            (None, None),
            (Some((2, DupKind::Near)), Some(Scope::Cross)), // b2 (src 0) ~ b (src 1)
            (None, None),
            (Some((2, DupKind::Exact)), Some(Scope::Within)), // b again in source 1
        ]
    );
    assert_eq!(res.final_keeper, vec![0, 0, 2, 2, 4, 2]);
    assert_eq!(res.cluster, vec![0, 0, 1, 1, 2, 1]);
    assert_eq!(res.within.near_duplicates + res.within.exact_duplicates, 2);
    assert_eq!(res.cross.records, 4);
    assert_eq!(res.cross.near_duplicates, 1);

    // A within-source duplicate whose keeper is removed across sources: final keeper follows.
    let texts = [b2.clone(), b2, texts[2].clone(), c];
    let sources = [0, 0, 1, 1];
    let ranks = [1, 1, 0, 0];
    let tr = refs(&texts);
    let prio = DedupConfig {
        keep: KeepPolicy::Priority,
        ..cfg
    };
    let inputs = DedupInputs {
        priority: Some(&ranks),
        ..DedupInputs::default()
    };
    let res = dedup_two_scope(&tr, &sources, &inputs, &prio).unwrap();
    assert_eq!(res.duplicate_of[1].map(|d| d.of), Some(0));
    assert_eq!(res.scope[1], Some(Scope::Within));
    assert_eq!(
        res.duplicate_of[0].map(|d| d.of),
        Some(2),
        "source 1 ranks first"
    );
    assert_eq!(res.scope[0], Some(Scope::Cross));
    assert_eq!(res.final_keeper, vec![2, 2, 2, 3]);
    assert!(dedup_two_scope(&tr, &[0, 1], &inputs, &prio).is_err());
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let cfg = DedupConfig::default();
    let (texts, _) = planted_corpus(&cfg);
    let tr = refs(&texts);
    let sources: Vec<u32> = (0..texts.len() as u32).map(|i| i % 3).collect();
    let run = |threads: usize, cfg: DedupConfig| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let sigs = signatures(&tr, &cfg.minhash_params()).unwrap();
            let res = near_duplicates(&tr, &cfg).unwrap();
            let two = dedup_two_scope(&tr, &sources, &DedupInputs::default(), &cfg).unwrap();
            (sigs, res, two)
        })
    };
    for verify in [true, false] {
        let cfg = DedupConfig { verify, ..cfg };
        let one = run(1, cfg);
        let four = run(4, cfg);
        assert!(
            one == four,
            "verify={verify}: results differ across thread counts"
        );
        assert!(one.1.stats.near_duplicates > 0);
    }
    let other_seed = run(2, DedupConfig { seed: 99, ..cfg });
    assert_ne!(other_seed.0, run(2, cfg).0, "the seed changes signatures");
}

#[test]
fn config_errors_are_reported() {
    let texts = ["a"];
    let bad = [
        DedupConfig {
            threshold: 0.0,
            ..DedupConfig::default()
        },
        DedupConfig {
            num_perm: 0,
            ..DedupConfig::default()
        },
        DedupConfig {
            ngram: 0,
            ..DedupConfig::default()
        },
        DedupConfig {
            bands: Some(64),
            rows: Some(4),
            ..DedupConfig::default()
        },
    ];
    for cfg in bad {
        assert!(
            matches!(near_duplicates(&texts, &cfg), Err(Error::Config(_))),
            "{cfg:?}"
        );
    }
    let keys = ["a", "b"];
    let inputs = DedupInputs {
        exact_keys: Some(&keys),
        ..DedupInputs::default()
    };
    assert!(dedup(&texts, &inputs, &DedupConfig::default()).is_err());
    let empty = near_duplicates(&[], &DedupConfig::default()).unwrap();
    assert!(empty.duplicate_of.is_empty() && empty.cluster_sizes.is_empty());
}

/// Throughput of signatures + LSH on 100k texts of ~230 chars (release:
/// `cargo test --release --lib dedup -- --ignored --nocapture`).
#[test]
#[ignore = "speed measurement: run with --release -- --ignored --nocapture"]
#[allow(clippy::print_stdout)]
fn bench_signatures_and_lsh_100k() {
    let src = huatuo();
    let mut rng = Rng(1);
    let texts: Vec<String> = (0..100_000)
        .map(|_| {
            let a = &src[rng.below(src.len())];
            let b = &src[rng.below(src.len())];
            format!("{a}{b}").chars().take(230).collect()
        })
        .collect();
    let tr = refs(&texts);
    let avg = tr.iter().map(|t| t.chars().count()).sum::<usize>() as f64 / tr.len() as f64;
    let cfg = DedupConfig::default();
    let (bands, rows) = cfg.lsh_params().unwrap();
    let t0 = std::time::Instant::now();
    let sigs = signatures(&tr, &cfg.minhash_params()).unwrap();
    let t1 = std::time::Instant::now();
    let buckets = lsh::buckets(&BandKeys::from_signatures(&sigs, bands, rows), None, None);
    let pairs = buckets.pairs(PairMode::Star);
    let t2 = std::time::Instant::now();
    let res = near_duplicates(&tr, &cfg).unwrap();
    let t3 = std::time::Instant::now();
    let secs = |d: std::time::Duration| d.as_secs_f64();
    println!(
        "{} texts, {avg:.0} chars avg, {} threads, {bands}x{rows}: signatures {:.2}s, LSH {:.2}s \
         ({} buckets, {} pairs) → {:.0} records/s; full dedup {:.2}s ({:.0} records/s), {:?}",
        tr.len(),
        rayon::current_num_threads(),
        secs(t1 - t0),
        secs(t2 - t1),
        buckets.len(),
        pairs.len(),
        tr.len() as f64 / secs(t2 - t0),
        secs(t3 - t2),
        tr.len() as f64 / secs(t3 - t2),
        res.stats,
    );
}

/// The out-of-core path (texts and band keys in temporary files) writes exactly what the
/// in-memory path writes: kept records, clusters and counts, in every scope, with and without
/// verification, under every keep policy; and it leaves no temporary files behind.
#[test]
fn out_of_core_runs_equal_in_memory_runs() {
    use files::{dedup_files, DedupFilesConfig, ScopeMode, SourceFile};
    let (mut texts, _) = planted_corpus(&DedupConfig::default());
    // exact copies across and within sources, short and blank texts
    for k in 0..40 {
        texts.insert(k * 37 % texts.len(), texts[k * 53].clone());
    }
    texts.extend(["短", "", "  ", "短"].map(String::from));
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<SourceFile> = (0..3)
        .map(|s| {
            let path = dir.path().join(format!("src{s}.jsonl"));
            let lines: String = texts
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 3 == s)
                .map(|(i, t)| format!("{}\n", serde_json::json!({"id": i, "text": t})))
                .collect();
            std::fs::write(&path, lines).unwrap();
            SourceFile {
                path,
                name: format!("src{s}"),
            }
        })
        .collect();
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let run = |cfg: &DedupFilesConfig, tag: &str, from: Option<&files::FromSketches<'_>>| {
        let out = dir.path().join(format!("{tag}.jsonl"));
        let clusters = dir.path().join(format!("{tag}.clusters.jsonl"));
        let stats = dedup_files(
            &inputs,
            from,
            files::KeptOutput::One(&out),
            Some(&clusters),
            None,
            cfg,
            &mut |_, _, _| Ok(()),
        )
        .unwrap();
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
        (stats, read(&out), read(&clusters))
    };
    for scope in [
        ScopeMode::Both,
        ScopeMode::PerSource,
        ScopeMode::CrossSource,
    ] {
        for (verify, keep) in [
            (true, KeepPolicy::First),
            (true, KeepPolicy::Longest),
            (true, KeepPolicy::Priority),
            (false, KeepPolicy::First),
        ] {
            let cfg = DedupFilesConfig {
                dedup: DedupConfig {
                    verify,
                    keep,
                    ..DedupConfig::default()
                },
                scope,
                fields: Some(vec!["text".to_string()]),
                source_rank: Some(vec![2, 0, 1]),
                tmp_dir: Some(spill.clone()),
                ..DedupFilesConfig::default()
            };
            let (mem, mem_out, mem_clusters) = run(&cfg, "mem", None);
            let disk_cfg = DedupFilesConfig {
                memory_limit: Some(0),
                ..cfg.clone()
            };
            let (disk, disk_out, disk_clusters) = run(&disk_cfg, "disk", None);
            // pass 1 from per-file sketches (the Ray engine's path), in memory and out of core
            let sketches: Vec<std::path::PathBuf> = inputs
                .iter()
                .enumerate()
                .map(|(k, src)| {
                    let path = dir.path().join(format!("src{k}.sketch"));
                    sketch::sketch_file(src, &path, &cfg, &mut |_, _, _| Ok(())).unwrap();
                    path
                })
                .collect();
            let from = files::FromSketches {
                sketches: &sketches,
                linker: None,
            };
            let (sk_mem, sk_mem_out, sk_mem_clusters) = run(&cfg, "skmem", Some(&from));
            let (sk_disk, sk_disk_out, sk_disk_clusters) = run(&disk_cfg, "skdisk", Some(&from));
            // and the buckets linked as jobs of a few members each, texts read from the sketches
            let texts = remote::SketchTexts::open(&sketches).unwrap();
            let linker = remote::LocalLinker {
                texts: &texts,
                members_per_job: 7,
            };
            let linked = files::FromSketches {
                sketches: &sketches,
                linker: Some(&linker),
            };
            let (sk_link, sk_link_out, sk_link_clusters) = run(&disk_cfg, "sklink", Some(&linked));
            let what = format!("{scope:?} verify={verify} keep={keep:?}");
            assert!(!mem.out_of_core && disk.out_of_core && disk.spilled_bytes > 0);
            assert!(!sk_mem.out_of_core && sk_disk.out_of_core);
            for (out, clusters, stats, how) in [
                (&disk_out, &disk_clusters, &disk, "out of core"),
                (&sk_mem_out, &sk_mem_clusters, &sk_mem, "from sketches"),
                (
                    &sk_link_out,
                    &sk_link_clusters,
                    &sk_link,
                    "from sketches, linked as jobs",
                ),
                (
                    &sk_disk_out,
                    &sk_disk_clusters,
                    &sk_disk,
                    "from sketches out of core",
                ),
            ] {
                assert_eq!(&mem_out, out, "{what} {how}: kept records differ");
                assert_eq!(&mem_clusters, clusters, "{what} {how}: clusters differ");
                assert_eq!(mem.sources, stats.sources, "{what} {how}");
                assert_eq!(
                    (mem.within, mem.cross),
                    (stats.within, stats.cross),
                    "{what} {how}"
                );
            }
            assert!(mem.clusters > 0, "{what}: nothing found");
            let left: Vec<_> = std::fs::read_dir(&spill).unwrap().collect();
            assert!(left.is_empty(), "temporary files left behind: {left:?}");
        }
    }
}

/// A sketch is refused, not trusted, when it is damaged, made with other options, or its input
/// changed since; a quarantine written from sketches equals a local run's.
#[test]
fn sketches_are_checked_before_use() {
    use files::{dedup_files, DedupFilesConfig, SourceFile};
    use sketch::{read_sketch, sketch_file};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    let long = "患者头痛发热咳嗽三天，伴有咽痛流涕，请问应该吃什么药比较好呢";
    std::fs::write(
        &path,
        format!("{{\"text\":\"{long}\"}}\n{{\"text\": broken\n{{\"text\":\"{long}\"}}\n"),
    )
    .unwrap();
    let src = SourceFile {
        path: path.clone(),
        name: "a".into(),
    };
    let cfg = DedupFilesConfig {
        fields: Some(vec!["text".into()]),
        reader: crate::io::ReaderOptions {
            on_error: crate::io::OnError::Skip,
            ..Default::default()
        },
        ..DedupFilesConfig::default()
    };
    let sk = dir.path().join("a.sketch");
    let summary = sketch_file(&src, &sk, &cfg, &mut |_, _, _| Ok(())).unwrap();
    assert_eq!((summary.records, summary.rejected), (2, 1));
    assert!(read_sketch(&sk, &src, &cfg).is_ok());

    // the quarantine and output from the sketch equal a local run's
    let run = |from: Option<&files::FromSketches<'_>>, tag: &str| {
        let (out, q) = (
            dir.path().join(format!("{tag}.jsonl")),
            dir.path().join(format!("{tag}.q.jsonl")),
        );
        dedup_files(
            std::slice::from_ref(&src),
            from,
            files::KeptOutput::One(&out),
            None,
            Some(&q),
            &cfg,
            &mut |_, _, _| Ok(()),
        )
        .unwrap();
        (std::fs::read(out).unwrap(), std::fs::read(q).unwrap())
    };
    let from = files::FromSketches {
        sketches: std::slice::from_ref(&sk),
        linker: None,
    };
    assert_eq!(run(None, "local"), run(Some(&from), "sketch"));

    let other = DedupFilesConfig {
        fields: None,
        ..cfg.clone()
    };
    let err = read_sketch(&sk, &src, &other).err().unwrap().to_string();
    assert!(err.contains("other dedup options"), "{err}");

    let mut bytes = std::fs::read(&sk).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let broken = dir.path().join("broken.sketch");
    std::fs::write(&broken, &bytes).unwrap();
    let err = read_sketch(&broken, &src, &cfg).err().unwrap().to_string();
    assert!(err.contains("checksum"), "{err}");
    std::fs::write(&broken, &bytes[..20]).unwrap();
    assert!(read_sketch(&broken, &src, &cfg).is_err());

    std::fs::write(&path, format!("{{\"text\":\"{long}\"}}\n")).unwrap();
    let err = read_sketch(&sk, &src, &cfg).err().unwrap().to_string();
    assert!(err.contains("changed after it was sketched"), "{err}");
}
