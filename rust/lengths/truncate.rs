//! LLaMA-Factory's SFT truncation, to tell for a cut-off whether a record would be truncated and
//! whether its final response would be cut. `infer_seqlen` is `processor_utils.infer_seqlen`;
//! [`truncate`] is the turn loop of `SupervisedDatasetProcessor._encode_data_example` without
//! `mask_history` (turns oldest first; stop once the budget is used up; `efficient_eos` reserves
//! one token up front and appends it at the end). Packing is not modelled.

/// (source, target) lengths after fitting one turn into `cutoff` tokens, exactly as
/// `infer_seqlen` computes them (including its `int()` truncation toward zero).
pub fn infer_seqlen(source_len: u64, target_len: u64, cutoff: u64) -> (u64, u64) {
    let max_target = if target_len * 2 < cutoff {
        cutoff
    } else if source_len * 2 < cutoff {
        cutoff - source_len
    } else {
        // int(cutoff * (target / (source + target))) in Python floats
        (cutoff as f64 * (target_len as f64 / (source_len + target_len) as f64)) as u64
    };
    let new_target = max_target.min(target_len);
    let new_source = cutoff.saturating_sub(new_target).min(source_len);
    (new_source, new_target)
}

/// What truncation to one cut-off does to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Truncation {
    /// Tokens left (the sequence fed to the model, final EOS included for `efficient_eos`).
    pub kept: u64,
    /// Some tokens were removed.
    pub truncated: bool,
    /// The final assistant turn lost tokens (or was not reached).
    pub response_cut: bool,
    /// The final assistant turn kept no tokens at all.
    pub response_dropped: bool,
}

/// Applies LLaMA-Factory's turn loop to `pairs` ((source, target) lengths per turn).
pub fn truncate(pairs: &[(u32, u32)], cutoff: u64, efficient_eos: bool) -> Truncation {
    let reserved = u64::from(efficient_eos);
    let mut total = reserved;
    let full: u64 = pairs
        .iter()
        .map(|&(s, t)| u64::from(s) + u64::from(t))
        .sum::<u64>()
        + reserved;
    let mut last_target = None;
    for (k, &(s, t)) in pairs.iter().enumerate() {
        if total >= cutoff {
            break;
        }
        let (ns, nt) = infer_seqlen(u64::from(s), u64::from(t), cutoff - total);
        total += ns + nt;
        if k + 1 == pairs.len() {
            last_target = Some(nt);
        }
    }
    let kept = total;
    let final_target = pairs.last().map_or(0, |&(_, t)| u64::from(t));
    let response_cut = match last_target {
        Some(nt) => nt < final_target,
        None => !pairs.is_empty(),
    };
    Truncation {
        kept,
        truncated: kept < full,
        response_cut,
        response_dropped: !pairs.is_empty() && last_target.unwrap_or(0) == 0 && final_target > 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infer_seqlen_matches_llamafactory_table() {
        // Values computed with LLaMA-Factory's Python infer_seqlen.
        let cases = [
            ((100, 100, 1024), (100, 100)),   // fits
            ((2000, 100, 1024), (924, 100)),  // short target: truncate the source
            ((100, 2000, 1024), (100, 924)),  // short source: truncate the target
            ((1000, 3000, 1024), (256, 768)), // both long: proportional
            ((3000, 1000, 1024), (768, 256)),
            ((600, 600, 1000), (500, 500)),
            ((700, 300, 1000), (700, 300)), // target*2 < cutoff, source fits as is
            ((5, 7, 3), (2, 1)),            // int(3 * 7/12) = int(1.75) = 1
        ];
        for ((s, t, c), want) in cases {
            assert_eq!(infer_seqlen(s, t, c), want, "infer_seqlen({s}, {t}, {c})");
        }
        assert_eq!(infer_seqlen(0, 0, 10), (0, 0));
        assert_eq!(infer_seqlen(10, 0, 4), (4, 0));
    }

    #[test]
    fn untruncated_when_everything_fits() {
        let t = truncate(&[(10, 20), (5, 5)], 40, false);
        assert_eq!(
            t,
            Truncation {
                kept: 40,
                ..Truncation::default()
            }
        );
        let t = truncate(&[(10, 20), (5, 5)], 40, true);
        assert!(t.truncated, "efficient_eos needs one more token");
    }

    #[test]
    fn later_turns_are_dropped_once_the_budget_is_used() {
        // turn 1 fills the budget exactly: the final turn is never reached.
        let t = truncate(&[(30, 10), (5, 5)], 40, false);
        assert_eq!(t.kept, 40);
        assert!(t.truncated && t.response_cut && t.response_dropped);
        // final turn's target shortened, history intact
        let t = truncate(&[(10, 10), (5, 100)], 60, false);
        assert_eq!(t.kept, 60);
        assert!(t.truncated && t.response_cut && !t.response_dropped);
        // only the prompt of the final turn shortened
        let t = truncate(&[(100, 10)], 60, false);
        assert_eq!(t.kept, 60);
        assert!(t.truncated && !t.response_cut);
    }
}
