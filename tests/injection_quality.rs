//! Measures the prompt-injection detector on the labelled corpora in `tests/data/injection`
//! and fails below 0.90 recall or above 0.01 false-positive rate at the default threshold.
//! Run with `--nocapture` to read the figures per category, obfuscation, language and
//! benign topic, and every miss and false positive.

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
