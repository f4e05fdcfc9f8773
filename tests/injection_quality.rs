//! Measures the prompt-injection detector on the labelled corpora in `tests/data/injection`
//! and fails below 0.90 recall or above 0.01 false-positive rate at the default threshold.
//! Run with `--nocapture` to read the figures per category, obfuscation, language and
//! benign topic, and every miss and false positive.
//!
//! The rules were developed against `attacks.json` and `benign.json`; the held-out sets
//! (`holdout-*.json`) were written afterwards and never used to change a rule, so their
//! figures are the better guess of how the detector does on phrasings it has not seen
//! (when written: recall 0.683, no false positive). They are printed, and held to a floor
//! below that (0.60 recall, 0.05 false-positive rate) so that a change that breaks
//! generalization fails too. Improving on them means new rules for the misses, and then a
//! new held-out set: one that has been tuned on is no longer held out.

use std::collections::BTreeMap;

use edge_llm_gateway::guard::injection::InjectionPolicy;
use guard_scan::injection::detector;
use serde_json::Value;

fn corpus(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/injection/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// Counts (flagged, total) under each label.
#[derive(Default)]
struct Tally(BTreeMap<String, (usize, usize)>);

impl Tally {
    fn add(&mut self, label: &str, flagged: bool) {
        let entry = self.0.entry(label.to_owned()).or_default();
        entry.0 += usize::from(flagged);
        entry.1 += 1;
    }

    fn print(&self, title: &str, measure: &str) {
        println!("{title}");
        for (label, (flagged, total)) in &self.0 {
            let rate = *flagged as f64 / *total as f64;
            println!("  {label:<26} {measure} {rate:.3}  ({flagged}/{total})");
        }
    }
}

/// The detector's verdicts on a corpus.
struct Verdicts {
    /// One tally per label field asked for.
    by: Vec<Tally>,
    /// The items with the wrong verdict (missed attacks, flagged benign prompts): score,
    /// categories, text.
    wrong: Vec<String>,
    total: usize,
}

impl Verdicts {
    /// The share of items with the wrong verdict.
    fn error_rate(&self) -> f64 {
        self.wrong.len() as f64 / self.total as f64
    }

    fn print_wrong(&self, title: &str) {
        println!("{title}");
        self.wrong.iter().for_each(|item| println!("  {item}"));
    }
}

/// Scores every item of `items` at the default threshold, tallied under each of the
/// `labels` fields; an item's verdict is wrong when it is flagged and `attacks` is false,
/// or not flagged and `attacks` is true.
fn verdicts(items: &[Value], labels: &[&str], attacks: bool) -> Verdicts {
    let threshold = InjectionPolicy::default().threshold;
    let field = |item: &Value, name: &str| item[name].as_str().unwrap_or("").to_owned();
    let mut by: Vec<Tally> = labels.iter().map(|_| Tally::default()).collect();
    let mut wrong = Vec::new();
    for item in items {
        let text = field(item, "text");
        let finding = detector().inspect(&text);
        let flagged = finding.score >= threshold;
        for (tally, label) in by.iter_mut().zip(labels) {
            tally.add(&field(item, label), flagged);
        }
        if flagged != attacks {
            let (score, categories) = (finding.score, finding.categories);
            wrong.push(format!("{score:>3} {categories:?} {}", text.escape_debug()));
        }
    }
    Verdicts {
        by,
        wrong,
        total: items.len(),
    }
}

#[test]
fn detector_meets_recall_and_false_positive_targets() {
    let threshold = InjectionPolicy::default().threshold;
    let attacks = verdicts(
        &corpus("attacks.json"),
        &["category", "obfuscation", "language"],
        true,
    );
    let benign_items = corpus("benign.json");
    let benign = verdicts(&benign_items, &["topic"], false);

    // A long document made of the benign prompts is benign too: weak signals far apart
    // must not add up.
    let document: String = benign_items
        .iter()
        .map(|item| format!("{}\n", item["text"].as_str().unwrap_or("")))
        .collect();
    let whole = detector().inspect(&document);
    println!(
        "the benign corpus as one {} KB document scores {}",
        document.len() / 1024,
        whole.score
    );
    assert!(
        whole.score < threshold,
        "the benign corpus as one document is flagged: {whole:?}"
    );

    let recall = 1.0 - attacks.error_rate();
    let fpr = benign.error_rate();
    println!(
        "threshold {threshold}: recall {recall:.3} ({}/{}), false-positive rate {fpr:.4} ({}/{})",
        attacks.total - attacks.wrong.len(),
        attacks.total,
        benign.wrong.len(),
        benign.total
    );
    for (tally, title) in attacks.by.iter().zip([
        "recall by category:",
        "recall by obfuscation:",
        "recall by language:",
    ]) {
        tally.print(title, "recall");
    }
    benign.by[0].print("false positives by benign topic:", "FPR");
    attacks.print_wrong("missed attacks (score, categories, text):");
    benign.print_wrong("false positives (score, categories, text):");

    assert!(
        attacks.total >= 300 && benign.total >= 300,
        "corpora below 300 prompts"
    );
    assert!(recall >= 0.90, "recall {recall:.3} below 0.90");
    assert!(fpr <= 0.01, "false-positive rate {fpr:.4} above 0.01");
}

#[test]
fn detector_generalizes_to_the_held_out_sets() {
    let attacks = verdicts(&corpus("holdout-attacks.json"), &["category"], true);
    let benign = verdicts(&corpus("holdout-benign.json"), &[], false);
    let recall = 1.0 - attacks.error_rate();
    let fpr = benign.error_rate();
    println!(
        "held out: recall {recall:.3} ({}/{}), false-positive rate {fpr:.3} ({}/{})",
        attacks.total - attacks.wrong.len(),
        attacks.total,
        benign.wrong.len(),
        benign.total
    );
    attacks.by[0].print("held-out recall by category:", "recall");
    attacks.print_wrong("held-out misses:");
    benign.print_wrong("held-out false positives:");
    assert!(recall >= 0.60, "held-out recall {recall:.3} below 0.60");
    assert!(
        fpr <= 0.05,
        "held-out false-positive rate {fpr:.3} above 0.05"
    );
}
