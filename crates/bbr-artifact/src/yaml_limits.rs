//! YAML parser limits scaled from the size of the input, for every reader of YAML that bbr
//! (or Go bbr) wrote: a backup tool must be able to read back whatever it wrote.
//!
//! serde-saphyr's default [`Budget`] caps a document at 250,000 nodes, 1,000,000 events and
//! 64 MiB of scalar text. Our own `metadata` writer exceeds that from about 125,000 files in
//! one backup (two scalars per checksum), so a backup that exited 0 could not be restored.
//! Here the counting limits grow with the input instead:
//!
//! * **Nodes** (scalars, sequences, mappings): every node needs at least one byte of its
//!   own (a plain scalar's first character, a quote, `[`, `{`), except empty (null)
//!   scalars, which are implied by an indicator (`-`, `?`, `:`, `,`); one `:` can imply two
//!   of them (empty key and empty value). So a document of `n` bytes has at most `2·n`
//!   nodes: [`NODES_PER_BYTE`].
//! * **Events**: a node is at most two parser events (start and end), and aliases, comments
//!   and document markers each take at least one byte, so at most `4·n` events:
//!   [`EVENTS_PER_BYTE`].
//! * **Scalar bytes**: a scalar's content is never longer than its source, except that an
//!   explicit tag is counted in its resolved spelling (`!!str` → `tag:yaml.org,2002:str`);
//!   nothing we write has tags, so `2·n` leaves room for a few hand-written ones:
//!   [`SCALAR_BYTES_PER_BYTE`].
//!
//! None of these three is ever below serde-saphyr's default, so small documents keep exactly
//! the limits they had. The scaling stops at [`CEILING_BYTES`] (4 GiB, the metadata of
//! about 50 million files), which bounds the numbers on any platform.
//!
//! What does **not** scale, because no legitimate file grows it and every amplification
//! attack needs it: aliases and anchors (50,000 each; neither Go's yaml.v2 nor our writer
//! ever emits one), the alias replay budget (1,000,000 replayed events in total, which is
//! what stops a "billion laughs" document however much padding surrounds it), the
//! recorded-anchor budget, and the nesting depth ([`MAX_DEPTH`] = 64; `metadata` is 5
//! deep, a deployment manifest rarely more than 15).
//!
//! Scaling from the byte length costs no extra memory beyond the input: the text is already
//! in memory, and the parser's work is linear in it.

use serde::Deserialize;
use serde_saphyr::{Budget, Options};

/// Most nodes a document can hold per byte (see the module docs).
pub const NODES_PER_BYTE: usize = 2;
/// Most parser events a document can produce per byte (see the module docs).
pub const EVENTS_PER_BYTE: usize = 4;
/// Scalar text allowed per input byte (see the module docs).
pub const SCALAR_BYTES_PER_BYTE: usize = 2;
/// Input length beyond which the limits stop growing: 4 GiB.
pub const CEILING_BYTES: usize = 4 << 30;
/// Deepest nesting of sequences and mappings accepted, whatever the size.
pub const MAX_DEPTH: usize = 64;

/// The serde-saphyr [`Budget`] for an input of `input_len` bytes.
pub fn budget_for(input_len: usize) -> Budget {
    let defaults = Budget::default();
    let n = input_len.min(CEILING_BYTES);
    let mut budget = Budget::default();
    budget.max_nodes = defaults.max_nodes.max(n.saturating_mul(NODES_PER_BYTE));
    budget.max_events = defaults.max_events.max(n.saturating_mul(EVENTS_PER_BYTE));
    budget.max_total_scalar_bytes = defaults
        .max_total_scalar_bytes
        .max(n.saturating_mul(SCALAR_BYTES_PER_BYTE));
    budget.max_depth = MAX_DEPTH;
    // Not scaled on purpose: max_aliases, max_anchors, max_recorded_anchor_events,
    // max_recorded_anchor_bytes, the alias/anchor ratio heuristic (see the module docs).
    budget
}

/// Parser options for an input of `input_len` bytes: [`budget_for`] plus serde-saphyr's
/// fixed alias replay limits.
pub fn options_for(input_len: usize) -> Options {
    let mut options = Options::default();
    options.budget = Some(budget_for(input_len));
    options
}

/// `serde_saphyr::from_str` with the limits of [`options_for`] the length of `text`.
pub fn from_str<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, options_for(text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A "billion laughs": ten levels of ten aliases each, 10^10 strings once expanded.
    fn billion_laughs() -> String {
        let mut doc = String::from("a0: &a0 [\"lol\"]\n");
        for i in 1..=10 {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 10].join(", ");
            doc.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        doc
    }

    #[test]
    fn small_inputs_keep_the_library_defaults() {
        let d = Budget::default();
        let b = budget_for(100);
        assert_eq!(b.max_nodes, d.max_nodes);
        assert_eq!(b.max_events, d.max_events);
        assert_eq!(b.max_total_scalar_bytes, d.max_total_scalar_bytes);
        assert_eq!(b.max_aliases, d.max_aliases);
        assert_eq!(b.max_depth, MAX_DEPTH);
    }

    #[test]
    fn limits_scale_with_the_input_and_stop_at_the_ceiling() {
        let b = budget_for(100 << 20);
        assert_eq!(b.max_nodes, 200 << 20);
        assert_eq!(b.max_events, 400 << 20);
        assert_eq!(b.max_total_scalar_bytes, 200 << 20);
        let top = budget_for(usize::MAX);
        assert_eq!(top.max_nodes, CEILING_BYTES * NODES_PER_BYTE);
        assert_eq!(top.max_events, CEILING_BYTES * EVENTS_PER_BYTE);
        // What guards against amplification does not move.
        assert_eq!(top.max_aliases, Budget::default().max_aliases);
        assert_eq!(top.max_anchors, Budget::default().max_anchors);
        assert_eq!(
            options_for(usize::MAX)
                .alias_limits
                .max_total_replayed_events,
            serde_saphyr::options::AliasLimits::default().max_total_replayed_events
        );
    }

    #[test]
    fn the_densest_documents_fit_their_own_budget() {
        // The worst cases of the per-byte bounds: `[:,:,…]` is a sequence of single-pair
        // mappings with an empty key and value (3 nodes, 4 events per 2 bytes); then empty
        // sequence entries, one-character scalars, comments.
        let n = 400_000;
        let docs = [
            format!("[{}]", vec![":"; n].join(",")),
            "-\n".repeat(n),
            format!("[{}]", vec!["a"; n].join(",")),
            format!("a: b\n{}", "#\n".repeat(n)),
        ];
        // One node per byte would not be enough for the first.
        let mut tight = options_for(docs[0].len());
        if let Some(b) = tight.budget.as_mut() {
            b.max_nodes = docs[0].len();
        }
        let err = serde_saphyr::from_str_with_options::<serde::de::IgnoredAny>(&docs[0], tight)
            .expect_err("1.5 nodes per byte");
        assert!(err.to_string().contains("Nodes"), "{err}");
        for doc in docs {
            let parsed: Result<serde::de::IgnoredAny, _> = from_str(&doc);
            let short: String = doc.chars().take(20).collect();
            parsed.unwrap_or_else(|e| panic!("{short:?}…: {e}"));
        }
    }

    #[test]
    fn billion_laughs_is_refused_even_inside_a_huge_document() {
        // Replayed aliases count as nodes, so a small bomb hits the node budget; a padded
        // one hits a fixed one (recorded anchor events, alias replay).
        let refused = |e: &serde_saphyr::Error| {
            let m = e.to_string();
            m.contains("budget breached: ") || m.contains("alias replay limit exceeded")
        };
        let bomb = billion_laughs();
        let err = from_str::<serde_json::Value>(&bomb).expect_err("bomb");
        assert!(refused(&err), "{err}");
        // Padding the bomb to 50 MB raises the counting limits, not the alias ones.
        let mut padded = bomb.clone();
        let filler: BTreeMap<String, String> = (0..600_000)
            .map(|i| (format!("k{i:07}"), "x".repeat(64)))
            .collect();
        for (k, v) in &filler {
            padded.push_str(&format!("{k}: {v}\n"));
        }
        assert!(padded.len() > 45_000_000, "{}", padded.len());
        let err = from_str::<serde_json::Value>(&padded).expect_err("padded bomb");
        assert!(refused(&err), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_whatever_the_size() {
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let err = from_str::<serde_json::Value>(&deep).expect_err("deep");
        assert!(err.to_string().contains("Depth"), "{err}");
        // 2.4 MB of padding first: the depth limit does not grow with the size.
        let mut block: String = (0..200_000).map(|i| format!("p{i:07}: 1\n")).collect();
        for i in 0..100 {
            block.push_str(&" ".repeat(i));
            block.push_str("k:\n");
        }
        let err = from_str::<serde_json::Value>(&block).expect_err("deep block");
        assert!(err.to_string().contains("Depth"), "{err}");
    }
}
