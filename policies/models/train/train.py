"""Train the injection classifier and write policies/models/injection-v1.bin, its metrics and its card.

    .venv/bin/python policies/models/train/train.py      (what `make model` runs)

Steps: compose the data (build.py) -> export window features with the Rust featurizer (the same code
the gateway scores with) -> fit one logistic regression per head -> pick thresholds by cross-validation
on the TRAINING data only -> quantize to int16 and write the model file -> evaluate the shipped model on
the frozen evaluation split (Rust, every profile) -> write the model card.
"""
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import scipy
import sklearn
from sklearn.datasets import load_svmlight_file
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)
import build  # noqa: E402
import card  # noqa: E402
import modelfile  # noqa: E402

FEATURES = {"buckets_log2": 18, "char_min": 1, "char_max": 5, "word_max": 2, "window_bytes": 512}
# Target false-positive rates on benign TRAINING texts (out-of-fold) for the two bands.
FPR_HIGH, FPR_MEDIUM = 0.005, 0.02
C_GRID = [16.0]
# The multilingual texts written for this project are few next to the English corpora: weigh them up.
AUTHORED_WEIGHT = 4.0
SEED = 20250305
FOLDS = 3
WORK = os.path.join(ROOT, "target", "model")
MODEL = os.path.join(ROOT, "policies", "models", "injection-v1.bin")
METRICS = os.path.join(ROOT, "policies", "models", "injection-v1.metrics.json")
EVAL = os.path.join(HERE, "data", "eval.jsonl")


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def spec_arg():
    f = FEATURES
    return f"{f['buckets_log2']},{f['char_min']},{f['char_max']},{f['word_max']},{f['window_bytes']}"


def fit(X, y, w, C):
    m = LogisticRegression(C=C, solver="liblinear", class_weight="balanced", max_iter=2000, random_state=SEED)
    m.fit(X, y, sample_weight=w)
    return m


def text_max(logits, sids):
    """Max window logit per text id."""
    out = {}
    for z, s in zip(logits, sids):
        if s not in out or z > out[s]:
            out[s] = z
    return out


def threshold(benign_scores, fpr):
    """Smallest probability whose false-positive rate on `benign_scores` (logits) is at most `fpr`."""
    z = np.sort(np.array(benign_scores))[::-1]
    k = int(np.floor(fpr * len(z)))
    cut = z[k] if k < len(z) else z[-1]
    p = 1 / (1 + np.exp(-cut))
    return float(min(0.9999, max(0.5, np.nextafter(p, 1))))


def main():
    t0 = time.time()
    os.makedirs(WORK, exist_ok=True)
    train_jsonl = os.path.join(WORK, "train.jsonl")
    build.main(train_jsonl, EVAL)
    samples = {}
    with open(train_jsonl, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            samples[r["id"]] = r
    svm = os.path.join(WORK, "train.svm")
    run(["cargo", "run", "--quiet", "--release", "-p", "asg", "--example", "injection_model", "--",
         "features", spec_arg(), train_jsonl, svm])
    # svmlight indexes are 1-based (bucket + 1); zero_based=False maps them back to column = bucket.
    X, sid = load_svmlight_file(svm, n_features=1 << FEATURES["buckets_log2"], zero_based=False)
    X = X.tocsr()
    sid = sid.astype(int)
    nwin = np.bincount(sid, minlength=max(samples) + 1)
    heads, report = [], {}
    for head in ["direct", "indirect"]:
        rows = np.array([i for i, s in enumerate(sid) if samples[s][head] is not None])
        y = np.array([samples[sid[i]][head] for i in rows])
        w = 1.0 / np.sqrt(nwin[sid[rows]])
        w = w * np.array([AUTHORED_WEIGHT if samples[s]["source"] == "authored" else 1.0 for s in sid[rows]])
        Xh, groups = X[rows], sid[rows]
        # Cross-validation on training texts only: pick C, then thresholds from out-of-fold scores.
        best = None
        for C in C_GRID:
            oof = np.zeros(len(rows))
            for tr, te in GroupKFold(n_splits=FOLDS).split(Xh, y, groups):
                m = fit(Xh[tr], y[tr], w[tr], C)
                oof[te] = m.decision_function(Xh[te])
            per_text = text_max(oof, groups)
            labels = {g: samples[g][head] for g in per_text}
            benign = [z for g, z in per_text.items() if labels[g] == 0]
            attack = [z for g, z in per_text.items() if labels[g] == 1]
            cut = np.sort(benign)[::-1][int(0.01 * len(benign))]
            tpr = float(np.mean(np.array(attack) > cut))
            print(f"{head}: C={C} out-of-fold TPR at 1% FPR = {tpr:.4f}", flush=True)
            if best is None or tpr > best[1]:
                best = (C, tpr, benign, attack)
        C, tpr, benign, attack = best
        thresholds = {"medium": threshold(benign, FPR_MEDIUM), "high": threshold(benign, FPR_HIGH)}
        m = fit(Xh, y, w, C)
        coef = m.coef_[0]
        scale = float(np.max(np.abs(coef)) / 32767.0)
        q = np.clip(np.round(coef / scale), -32767, 32767).astype("<i2")
        heads.append({"name": head, "bias": float(m.intercept_[0]), "scale": scale, "thresholds": thresholds,
                      "weights": q.tobytes()})
        report[head] = {"C": C, "authored_weight": AUTHORED_WEIGHT, "oof_tpr_at_1pct_fpr": round(tpr, 4), "thresholds": thresholds,
                        "train_windows": int(len(rows)), "train_texts": int(len(set(groups))),
                        "nonzero_weights": int(np.count_nonzero(q))}
    digest = hashlib.sha256(open(train_jsonl, "rb").read()).hexdigest()
    trained = {"train_sha256": digest, "train_texts": len(samples), "sklearn": sklearn.__version__,
               "numpy": np.__version__, "scipy": scipy.__version__, "heads": report}
    modelfile.write(MODEL, "injection-v1", FEATURES, heads, trained)
    train_seconds = time.time() - t0
    run(["cargo", "run", "--quiet", "--release", "-p", "asg", "--example", "injection_model", "--",
         "evaluate", EVAL, "--write", METRICS])
    total = time.time() - t0
    card.write(os.path.join(ROOT, "policies", "models", "injection-v1.md"), FEATURES, trained, METRICS,
               {"train_seconds": round(train_seconds), "total_seconds": round(total)})
    print(f"model: wrote {os.path.relpath(MODEL, ROOT)} ({os.path.getsize(MODEL)} bytes) in {total:.0f} s")


if __name__ == "__main__":
    main()
