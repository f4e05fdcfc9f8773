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

use edge_llm_gateway::guard::injection::{detector, InjectionPolicy};
use serde_json::Value;

fn corpus(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/injection/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// Counts (hits, total) under each label.
#[derive(Default)]
struct Tally(BTreeMap<String, (usize, usize)>);

impl Tally {
    fn add(&mut self, label: &str, hit: bool) {
        let entry = self.0.entry(label.to_owned()).or_default();
        entry.0 += usize::from(hit);
        entry.1 += 1;
    }

    fn print(&self, title: &str, measure: &str) {
        println!("{title}");
        for (label, (hits, total)) in &self.0 {
            let rate = *hits as f64 / *total as f64;
            println!("  {label:<26} {measure} {rate:.3}  ({hits}/{total})");
        }
    }
}

#[test]
fn detector_meets_recall_and_false_positive_targets() {
    let threshold = InjectionPolicy::default().threshold;
    let detector = detector();
    let field = |item: &Value, name: &str| item[name].as_str().unwrap_or("").to_owned();

    let attacks = corpus("attacks.json");
    let (mut by_category, mut by_obfuscation, mut by_language) =
        (Tally::default(), Tally::default(), Tally::default());
    let mut misses = Vec::new();
    for attack in &attacks {
        let text = field(attack, "text");
        let finding = detector.inspect(&text);
        let hit = finding.score >= threshold;
        by_category.add(&field(attack, "category"), hit);
        by_obfuscation.add(&field(attack, "obfuscation"), hit);
        by_language.add(&field(attack, "language"), hit);
        if !hit {
            misses.push(format!("{:>3} {}", finding.score, text.escape_debug()));
        }
    }

    let benign = corpus("benign.json");
    let mut by_topic = Tally::default();
    let mut false_positives = Vec::new();
    for item in &benign {
        let text = field(item, "text");
        let finding = detector.inspect(&text);
        let flagged = finding.score >= threshold;
        by_topic.add(&field(item, "topic"), flagged);
        if flagged {
            false_positives.push(format!(
                "{:>3} {:?} {}",
                finding.score,
                finding.categories,
                text.escape_debug()
            ));
        }
    }

    // A long document made of the benign prompts is benign too: weak signals far apart
    // must not add up.
    let document: String = benign
        .iter()
        .map(|item| field(item, "text") + "\n")
        .collect();
    let whole = detector.inspect(&document);
    println!(
        "the benign corpus as one {} KB document scores {}",
        document.len() / 1024,
        whole.score
    );
    assert!(
        whole.score < threshold,
        "the benign corpus as one document is flagged: {whole:?}"
    );

    let detected = attacks.len() - misses.len();
    let recall = detected as f64 / attacks.len() as f64;
    let fpr = false_positives.len() as f64 / benign.len() as f64;
    println!("threshold {threshold}: recall {recall:.3} ({detected}/{}), false-positive rate {fpr:.4} ({}/{})", attacks.len(), false_positives.len(), benign.len());
    by_category.print("recall by category:", "recall");
    by_obfuscation.print("recall by obfuscation:", "recall");
    by_language.print("recall by language:", "recall");
    by_topic.print("false positives by benign topic:", "FPR");
    println!("missed attacks (score, text):");
    misses.iter().for_each(|miss| println!("  {miss}"));
    println!("false positives (score, categories, text):");
    false_positives.iter().for_each(|fp| println!("  {fp}"));

    assert!(
        attacks.len() >= 300 && benign.len() >= 300,
        "corpora below 300 prompts"
    );
    assert!(recall >= 0.90, "recall {recall:.3} below 0.90");
    assert!(fpr <= 0.01, "false-positive rate {fpr:.4} above 0.01");
}

#[test]
fn detector_generalizes_to_the_held_out_sets() {
    let threshold = InjectionPolicy::default().threshold;
    let detector = detector();
    let text = |item: &Value| item["text"].as_str().unwrap_or("").to_owned();
    let attacks = corpus("holdout-attacks.json");
    let mut by_category = Tally::default();
    let mut misses = Vec::new();
    for attack in &attacks {
        let finding = detector.inspect(&text(attack));
        let hit = finding.score >= threshold;
        by_category.add(attack["category"].as_str().unwrap_or(""), hit);
        if !hit {
            misses.push(format!(
                "{:>3} {}",
                finding.score,
                text(attack).escape_debug()
            ));
        }
    }
    let benign = corpus("holdout-benign.json");
    let false_positives: Vec<String> = benign
        .iter()
        .map(|item| (detector.inspect(&text(item)), text(item)))
        .filter(|(finding, _)| finding.score >= threshold)
        .map(|(finding, text)| {
            format!(
                "{:>3} {:?} {}",
                finding.score,
                finding.categories,
                text.escape_debug()
            )
        })
        .collect();
    let recall = (attacks.len() - misses.len()) as f64 / attacks.len() as f64;
    let fpr = false_positives.len() as f64 / benign.len() as f64;
    println!(
        "held out: recall {recall:.3} ({}/{}), false-positive rate {fpr:.3} ({}/{})",
        attacks.len() - misses.len(),
        attacks.len(),
        false_positives.len(),
        benign.len()
    );
    by_category.print("held-out recall by category:", "recall");
    println!("held-out misses:");
    misses.iter().for_each(|miss| println!("  {miss}"));
    println!("held-out false positives:");
    false_positives.iter().for_each(|fp| println!("  {fp}"));
    assert!(recall >= 0.60, "held-out recall {recall:.3} below 0.60");
    assert!(
        fpr <= 0.05,
        "held-out false-positive rate {fpr:.3} above 0.05"
    );
}
