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
import re
import subprocess
import sys
import time

import numpy as np
import scipy
import sklearn
from sklearn.datasets import load_svmlight_file
from sklearn.linear_model import LogisticRegression

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)
import build  # noqa: E402
import card  # noqa: E402
import modelfile  # noqa: E402

# piece_windows: every piece (sentence) of a text is also scored on its own, so one planted sentence is
# not averaged away by the ordinary text packed around it.
FEATURES = {"buckets_log2": 18, "char_min": 1, "char_max": 5, "word_max": 2, "window_bytes": 512,
            "piece_windows": True}
# Target false-positive rates on benign TRAINING texts (out-of-fold) for the two bands, per head. dev
# and production act on high findings only (a medium finding's score stays under their challenge score);
# strict also acts on medium ones. Tool results: high at the 1 % target, medium at 2 % for strict. User
# text keeps 0.5 % / 1 % (not re-chosen for the 1 % target yet: the model card says so).
BANDS = {"direct": {"high": 0.005, "medium": 0.01}, "indirect": {"high": 0.01, "medium": 0.02}}
C_GRID = [16.0, 48.0]
# The multilingual texts written for this project are few next to the English corpora: weigh them up.
AUTHORED_WEIGHT = 4.0
SEED = 20250305
FOLDS = build.FOLDS
WORK = os.path.join(ROOT, "target", "model")
MODEL = os.path.join(ROOT, "policies", "models", "injection-v1.bin")
METRICS = os.path.join(ROOT, "policies", "models", "injection-v1.metrics.json")
METRICS2 = os.path.join(ROOT, "policies", "models", "injection-v1.heldout2.metrics.json")
EVAL = os.path.join(HERE, "data", "eval.jsonl")
EVAL2 = os.path.join(HERE, "data", "eval2.jsonl")
EVAL3 = os.path.join(HERE, "data", "eval3.jsonl")
METRICS3 = os.path.join(ROOT, "policies", "models", "injection-v1.heldout3.metrics.json")
EVAL4 = os.path.join(HERE, "data", "eval4.jsonl")
METRICS4 = os.path.join(ROOT, "policies", "models", "injection-v1.heldout4.metrics.json")
EVAL5 = os.path.join(HERE, "data", "eval5.jsonl")
METRICS5 = os.path.join(ROOT, "policies", "models", "injection-v1.heldout5.metrics.json")
EVAL6 = os.path.join(HERE, "data", "eval6.jsonl")
METRICS6 = os.path.join(ROOT, "policies", "models", "injection-v1.heldout6.metrics.json")
TOOL = os.path.join(ROOT, "target", "release", "examples", "injection_model")


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def check_frozen(path, fresh):
    """The evaluation sets are frozen: composing them again must give the committed bytes."""
    if open(path, "rb").read() != open(fresh, "rb").read():
        raise SystemExit(f"{os.path.relpath(path, ROOT)} would change: the evaluation split is frozen; "
                         "training data changes must not alter it")


def spec_arg():
    f = FEATURES
    return (f"{f['buckets_log2']},{f['char_min']},{f['char_max']},{f['word_max']},{f['window_bytes']},"
            f"{int(f['piece_windows'])}")


def fit(X, y, w, C):
    # The dual liblinear solver: fast for many more features than windows.
    m = LogisticRegression(C=C, solver="liblinear", dual=True, tol=1e-3, class_weight="balanced", max_iter=5000,
                           random_state=SEED)
    m.fit(X, y, sample_weight=w)
    return m


fold_of = build.fold_of


def assign_folds(samples):
    """Cross-validation folds by content, not by text: texts composed from the same hand-written
    sentence or phrase piece share its fold (compose.py sets "fold"; build.py's planted training
    texts take the fold of the attack in them). build.py's benign documents joined from several
    sentences of authored/train/ would straddle folds: they are left out (compose.py's documents,
    built within one fold, take their place). Returns the ids left out."""
    atoms, attacks = {}, {}
    for l in build.LANGS:
        for sec, lines in build.read_sections(os.path.join(HERE, "data", "authored", "train", f"{l}.txt")).items():
            for t in lines:
                atoms[t] = fold_of(t)
                if sec in ("direct", "indirect", "task"):
                    attacks.setdefault(l, []).append(t)
    dropped = set()
    for i, r in samples.items():
        if "fold" in r:
            continue
        t = r["text"]
        if r["source"] != "authored" or t in atoms:
            r["fold"] = fold_of(t)
            continue
        inside = [a for a in attacks.get(r["lang"], []) if a in t]
        if r["indirect"] == 1 and inside:
            r["fold"] = atoms[max(inside, key=len)]
        else:
            dropped.add(i)
    return dropped


def oof_scores(Xh, y, w, folds_of_rows, fit_rows, C):
    """Out-of-fold window logits (folds by text, in parallel). Only `fit_rows` are fitted; every row of a
    held-out fold is scored, as the gateway scores every window and piece."""
    from joblib import Parallel, delayed

    folds = [(np.where(folds_of_rows != f)[0], np.where(folds_of_rows == f)[0]) for f in range(FOLDS)]
    models = Parallel(n_jobs=min(FOLDS, os.cpu_count() or 1))(
        delayed(fit)(Xh[tr[fit_rows[tr]]], y[tr[fit_rows[tr]]], w[tr[fit_rows[tr]]], C) for tr, _ in folds)
    oof = np.zeros(len(y))
    for m, (_, te) in zip(models, folds):
        oof[te] = m.decision_function(Xh[te])
    return oof


def realistic(r):
    """Texts that were not composed from phrase pieces: hand-written sentences and external data. C is
    chosen on these attacks; the bands keep these and the composed benign texts under their rates."""
    return r["source"] != "composed"


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


def diagnose(head, per_text, samples, thresholds):
    """Out-of-fold rates on the training data, per language, for the natural (hand-written) texts and the
    composed ones: what development decisions are made on (never the evaluation sets)."""
    cut = {k: np.log(v / (1 - v)) for k, v in thresholds.items()}
    rows = {}
    for g, z in per_text.items():
        r = samples[g]
        nat = "nat" if r["source"] == "authored" else ("cmp" if r["source"] == "composed" else "ext")
        key = (r["lang"], nat, r[head])
        t = rows.setdefault(key, [0, 0, 0])
        t[0] += 1
        t[1] += z >= cut["medium"]
        t[2] += z >= cut["high"]
    print(f"  {head}: out-of-fold, per language: attacks TPR (high/medium) | benign FPR (high/medium); natural texts [composed]")
    langs = sorted({k[0] for k in rows})
    for l in langs:
        def fmt(nat, y):
            t = rows.get((l, nat, y))
            return f"{t[2] / t[0]:.2f}/{t[1] / t[0]:.2f} n={t[0]}" if t else "-"
        print(f"    {l:3} {fmt('nat', 1):>20} [{fmt('cmp', 1):>20}] | {fmt('nat', 0):>20} [{fmt('cmp', 0):>20}]"
              f"  ext: {fmt('ext', 1)} | {fmt('ext', 0)}")


def check_later_sets_frozen():
    """The second to fifth evaluation sets, composed again, must give the committed bytes."""
    for name, frozen, builder in [("eval2", EVAL2, build.build_eval2), ("eval3", EVAL3, build.build_eval3),
                                  ("eval4", EVAL4, build.build_eval4), ("eval5", EVAL5, build.build_eval5),
                                  ("eval6", EVAL6, build.build_eval6)]:
        fresh = os.path.join(WORK, f"{name}.jsonl")
        builder(fresh)
        check_frozen(frozen, fresh)


def score():
    """Score the weights in MODEL on every evaluation set (the whole pipeline) into the metrics files."""
    for path, out in [(EVAL, METRICS), (EVAL2, METRICS2), (EVAL3, METRICS3), (EVAL4, METRICS4), (EVAL5, METRICS5),
                      (EVAL6, METRICS6)]:
        run([TOOL, "evaluate", path, "--write", out, "--model", MODEL])


def write_card(features, trained, timing):
    card.write(os.path.join(ROOT, "policies", "models", "injection-v1.md"), features, trained,
               METRICS, METRICS2, METRICS3, METRICS4, METRICS5, timing, METRICS6)


def card_timing():
    """The training time the current card quotes: a fresh checkout has no `target/model/timing.json`,
    and rescoring the same weights does not change how long they took to train."""
    path = os.path.join(ROOT, "policies", "models", "injection-v1.md")
    m = re.search(r"`make model` took (\d+) s .*?cross-validation: (\d+) s", open(path, encoding="utf-8").read())
    return {"total_seconds": int(m.group(1)), "train_seconds": int(m.group(2))} if m else {}


def evaluate_only():
    """Score the shipped weights again and rewrite the metrics and the card, without training: the
    metrics are of the whole pipeline, so a change to the phrase rules or the profiles changes them
    (`make model-eval`). The evaluation sets are checked frozen first, as in training."""
    check_later_sets_frozen()
    if "--no-build" not in sys.argv:
        run(["cargo", "build", "--quiet", "--release", "-p", "asg", "--example", "injection_model"])
    header, _ = modelfile.read_header(MODEL)
    timing_path = os.path.join(WORK, "timing.json")
    timing = json.load(open(timing_path)) if os.path.exists(timing_path) else card_timing()
    score()
    write_card(header["features"], header["trained"], timing)
    print("model: metrics and card rewritten for the shipped weights")


def main():
    if "--eval-only" in sys.argv:
        os.makedirs(WORK, exist_ok=True)
        return evaluate_only()
    t0 = time.time()
    evaluate = "--no-eval" not in sys.argv
    os.makedirs(WORK, exist_ok=True)
    train_jsonl = os.path.join(WORK, "train.jsonl")
    fresh_eval = os.path.join(WORK, "eval.jsonl")
    build.main(train_jsonl, fresh_eval)
    check_frozen(EVAL, fresh_eval)
    check_later_sets_frozen()
    # One release build of the tool; it reads fresh weights from the file (--model), so writing the
    # model does not force a rebuild of the gateway library before the evaluation.
    if "--no-build" not in sys.argv:
        run(["cargo", "build", "--quiet", "--release", "-p", "asg", "--example", "injection_model"])
    samples = {}
    with open(train_jsonl, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            samples[r["id"]] = r
    svm = os.path.join(WORK, "train.svm")
    run([TOOL, "features", spec_arg(), train_jsonl, svm])
    # svmlight indexes are 1-based (bucket + 1); zero_based=False maps them back to column = bucket.
    X, sid = load_svmlight_file(svm, n_features=1 << FEATURES["buckets_log2"], zero_based=False)
    X = X.tocsr()
    sid = sid.astype(int)
    # 1 for a window that is a lone piece of a longer text: scored, but not fitted as an attack (most
    # pieces of a planted document or a long jailbreak are ordinary sentences).
    lone = np.loadtxt(svm + ".pieces", dtype=np.int8).reshape(-1)
    assert len(lone) == len(sid), "one piece flag per exported window"
    nwin = np.bincount(sid, minlength=max(samples) + 1)
    dropped = assign_folds(samples)
    print(f"folds: {len(dropped)} texts that would straddle folds left out", flush=True)
    heads, report = [], {}
    for head in ["direct", "indirect"]:
        rows = np.array([i for i, s in enumerate(sid) if samples[s][head] is not None and s not in dropped])
        y = np.array([samples[sid[i]][head] for i in rows])
        w = 1.0 / np.sqrt(nwin[sid[rows]])
        w = w * np.array([AUTHORED_WEIGHT if samples[s]["source"] == "authored" else 1.0 for s in sid[rows]])
        Xh, groups = X[rows], sid[rows]
        fit_rows = ~((lone[rows] == 1) & (y == 1))
        fold_rows = np.array([samples[s]["fold"] for s in groups])
        # Cross-validation on training texts only: pick C, then thresholds from out-of-fold scores.
        best = None
        for C in C_GRID:
            oof = oof_scores(Xh, y, w, fold_rows, fit_rows, C)
            per_text = text_max(oof, groups)
            labels = {g: samples[g][head] for g in per_text}
            # Benign texts in two groups, hand-written and external ones, and documents and prompts
            # composed within one fold: a band must keep both under its rate.
            benign = [[z for g, z in per_text.items() if labels[g] == 0 and realistic(samples[g]) == r]
                      for r in (True, False)]
            attack = [z for g, z in per_text.items() if labels[g] == 1 and realistic(samples[g])]
            cut = max(np.sort(b)[::-1][int(0.01 * len(b))] for b in benign if b)
            tpr = float(np.mean(np.array(attack) > cut))
            print(f"{head}: C={C} out-of-fold TPR of hand-written and external attacks at 1% FPR = {tpr:.4f}", flush=True)
            if best is None or tpr > best[1]:
                best = (C, tpr, benign, attack, per_text)
        C, tpr, benign, attack, per_text = best
        thresholds = {k: max(threshold(b, rate) for b in benign if b) for k, rate in BANDS[head].items()}
        diagnose(head, per_text, samples, thresholds)
        m = fit(Xh[fit_rows], y[fit_rows], w[fit_rows], C)
        coef = m.coef_[0]
        scale = float(np.max(np.abs(coef)) / 32767.0)
        q = np.clip(np.round(coef / scale), -32767, 32767).astype("<i2")
        heads.append({"name": head, "bias": float(m.intercept_[0]), "scale": scale, "thresholds": thresholds,
                      "weights": q.tobytes()})
        report[head] = {"C": C, "authored_weight": AUTHORED_WEIGHT, "oof_tpr_at_1pct_fpr": round(tpr, 4), "thresholds": thresholds,
                        "train_windows": int(fit_rows.sum()), "train_texts": int(len(set(groups))),
                        "nonzero_weights": int(np.count_nonzero(q))}
    digest = hashlib.sha256(open(train_jsonl, "rb").read()).hexdigest()
    trained = {"train_sha256": digest, "train_texts": len(samples), "sklearn": sklearn.__version__,
               "numpy": np.__version__, "scipy": scipy.__version__, "heads": report}
    modelfile.write(MODEL, "injection-v1", FEATURES, heads, trained)
    train_seconds = time.time() - t0
    if not evaluate:
        print(f"model: wrote {os.path.relpath(MODEL, ROOT)} in {train_seconds:.0f} s (no evaluation)")
        return
    score()
    total = time.time() - t0
    timing = {"train_seconds": round(train_seconds), "total_seconds": round(total)}
    json.dump(timing, open(os.path.join(WORK, "timing.json"), "w"))
    write_card(FEATURES, trained, timing)
    print(f"model: wrote {os.path.relpath(MODEL, ROOT)} ({os.path.getsize(MODEL)} bytes) in {total:.0f} s")


if __name__ == "__main__":
    main()
