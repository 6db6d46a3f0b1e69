"""Benign code and technical prose for training: chunks of the Rust sources and READMEs of the crates this
project depends on (Cargo.lock), MIT or Apache-2.0 licensed, taken from the local cargo registry.

    python policies/models/train/crates_benign.py   # rewrites data/external/crates_benign.jsonl
    python policies/models/train/crates_benign.py docs   # rewrites data/external/crates_docs_benign.jsonl

The second form takes the crates' Markdown documentation (README, CONTRIBUTING, CHANGELOG, docs/) in longer
pieces: prose with install steps, links ("see https://…", "report bugs at …") and instructions to the reader,
which the indirect head, trained with short pieces, read as planted instructions in real READMEs.

The training build reads only the committed JSONL (a fresh clone has no registry). Doc comments and
READMEs are full of imperatives addressed to a reader ("call this before …", "ignore the return value",
"send the request again") and of text about attacks (timing attacks, certificate validation): the hard
negatives an injection classifier must learn to leave alone. Each row names its crate, version, licence
and file.
"""
import glob
import json
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
OUT = os.path.join(HERE, "data", "external", "crates_benign.jsonl")
DOCS_OUT = os.path.join(HERE, "data", "external", "crates_docs_benign.jsonl")
PER_CRATE, CHUNK = 8, 420
DOCS_PER_CRATE, DOCS_CHUNK = 6, 1200


def locked():
    text = open(os.path.join(ROOT, "Cargo.lock"), encoding="utf-8").read()
    return sorted(set(re.findall(r'name = "([^"]+)"\nversion = "([^"]+)"\nsource = "registry', text)))


def licence(d):
    try:
        toml = open(os.path.join(d, "Cargo.toml"), encoding="utf-8").read()
    except OSError:
        return None
    m = re.search(r'^license\s*=\s*"([^"]+)"', toml, re.M)
    return m.group(1) if m else None


def chunks(text, size=CHUNK):
    """Paragraph-aligned pieces of at most `size` bytes."""
    out, cur = [], ""
    for para in re.split(r"\n\s*\n", text):
        para = para.strip("\n")
        if not para.strip():
            continue
        if cur and len((cur + "\n\n" + para).encode()) > size:
            out.append(cur)
            cur = ""
        cur = (cur + "\n\n" + para) if cur else para
        if len(cur.encode()) > size:
            out.append(cur.encode()[:size].decode("utf-8", "ignore"))
            cur = ""
    if cur:
        out.append(cur)
    return [c for c in out if len(c.encode()) >= 80]


def crate_dirs():
    """(name, version, licence, folder) of every MIT or Apache-2.0 crate in Cargo.lock found in the registry."""
    regs = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/"))
    for name, version in locked():
        d = next((os.path.join(r, f"{name}-{version}") for r in regs if os.path.isdir(os.path.join(r, f"{name}-{version}"))), None)
        lic = d and licence(d)
        if lic and ("MIT" in lic or "Apache-2.0" in lic):
            yield name, version, lic, d


def sample(files_of, size, min_bytes, per_crate, seed, out, label):
    """`per_crate` chunks (at most `size` bytes, at least `min_bytes`) of the files `files_of(folder)` names,
    for every crate, written to `out`."""
    rng = random.Random(seed)
    rows = []
    for name, version, lic, d in crate_dirs():
        pool = []
        for p in files_of(d):
            try:
                text = open(p, encoding="utf-8").read()
            except (OSError, UnicodeDecodeError):
                continue
            pool += [(os.path.relpath(p, d), c) for c in chunks(text, size) if len(c.encode()) >= min_bytes]
        for path, c in rng.sample(pool, min(per_crate, len(pool))):
            rows.append({"crate": name, "version": version, "licence": lic, "file": path, "text": c})
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{label}: {len(rows)} chunks from {len({r['crate'] for r in rows})} crates -> {os.path.relpath(out, ROOT)}")


def sources(d):
    """Rust sources and the README."""
    return sorted(glob.glob(os.path.join(d, "src", "**", "*.rs"), recursive=True)) + \
        [p for p in [os.path.join(d, "README.md")] if os.path.exists(p)]


def markdown(d):
    """Markdown at the crate's root and under docs/."""
    return sorted(glob.glob(os.path.join(d, "*.md")) + glob.glob(os.path.join(d, "docs", "**", "*.md"), recursive=True))


if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["docs"]:
        sample(markdown, DOCS_CHUNK, 300, DOCS_PER_CRATE, 20261206, DOCS_OUT, "crates_benign docs")
    else:
        sample(sources, CHUNK, 0, PER_CRATE, 20251205, OUT, "crates_benign")
