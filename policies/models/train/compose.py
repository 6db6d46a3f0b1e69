"""Training texts composed from the second and third rounds of authored data
(data/authored/train2/<lang>.txt: sentences and phrase pieces; train3/ to train9/<lang>.txt: sentences only).

Each language file has natural sentences ([direct] [indirect] [benign_prompt] [benign_doc]) and phrase
pieces (g_*). From them this module builds, per language:

* direct attacks: override + goal, persona + goal, framing + override/goal, a piece of another
  language's override followed by this language's goal (language switching), and disguised variants
  (spacing, separators, leetspeak: the normalizer folds some, the character n-grams see the rest);
* indirect attacks: an addressee + an action for the agent, an override + an action, natural planted
  instructions, each planted into a short window of a sentence document or of a structured document
  (JSON, table, CSV, log line, e-mail, search result) of the same language;
* benign texts: request + task prompts, natural prompts, sentence documents, structured documents
  with local names, places and companies (Faker, MIT), and ordinary questions inside documents (a
  question in an e-mail is not an instruction to the agent).

Planted training texts are cut to one classifier window around the planted instruction, so the label
of every exported window is right. Everything is seeded: the same inputs give the same texts.
"""
import json
import os
import random
import re
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN2 = os.path.join(HERE, "data", "authored", "train2")
# Later rounds: natural sentences only, merged into train2's sections.
SENTENCE_ROUNDS = [os.path.join(HERE, "data", "authored", f"train{n}") for n in (3, 4, 5, 6, 7, 8, 9)]

FAKER_LOCALES = {"en": "en_US", "es": "es_ES", "fr": "fr_FR", "de": "de_DE", "it": "it_IT", "pt": "pt_BR",
                 "nl": "nl_NL", "ru": "ru_RU", "uk": "uk_UA", "pl": "pl_PL", "tr": "tr_TR", "ar": "ar_SA",
                 "he": "he_IL", "hi": "hi_IN", "bn": "bn_BD", "zh": "zh_CN", "ja": "ja_JP", "ko": "ko_KR",
                 "vi": "vi_VN", "id": "id_ID"}

# Column / field labels per language: name, city, company, status, date, amount, note; then status values.
LABELS = {
    "en": ("name city company status date amount note", "open closed pending paid shipped"),
    "es": ("nombre ciudad empresa estado fecha importe nota", "abierto cerrado pendiente pagado enviado"),
    "fr": ("nom ville entreprise statut date montant note", "ouvert fermé en_attente payé expédié"),
    "de": ("Name Stadt Firma Status Datum Betrag Notiz", "offen geschlossen ausstehend bezahlt versandt"),
    "it": ("nome città azienda stato data importo nota", "aperto chiuso in_attesa pagato spedito"),
    "pt": ("nome cidade empresa situação data valor observação", "aberto fechado pendente pago enviado"),
    "nl": ("naam stad bedrijf status datum bedrag notitie", "open gesloten wachtend betaald verzonden"),
    "ru": ("имя город компания статус дата сумма примечание", "открыт закрыт ожидает оплачен отправлен"),
    "uk": ("ім'я місто компанія статус дата сума примітка", "відкрито закрито очікує оплачено надіслано"),
    "pl": ("imię miasto firma status data kwota uwagi", "otwarte zamknięte oczekuje opłacone wysłane"),
    "tr": ("ad şehir şirket durum tarih tutar not", "açık kapalı beklemede ödendi gönderildi"),
    "ar": ("الاسم المدينة الشركة الحالة التاريخ المبلغ ملاحظة", "مفتوح مغلق معلق مدفوع مرسل"),
    "he": ("שם עיר חברה סטטוס תאריך סכום הערה", "פתוח סגור ממתין שולם נשלח"),
    "hi": ("नाम शहर कंपनी स्थिति तारीख़ राशि टिप्पणी", "खुला बंद लंबित भुगतान_हुआ भेजा_गया"),
    "bn": ("নাম শহর কোম্পানি অবস্থা তারিখ পরিমাণ মন্তব্য", "খোলা বন্ধ অপেক্ষমাণ পরিশোধিত পাঠানো"),
    "zh": ("姓名 城市 公司 状态 日期 金额 备注", "处理中 已关闭 待定 已付款 已发货"),
    "ja": ("氏名 都市 会社 状態 日付 金額 備考", "対応中 完了 保留 支払済 発送済"),
    "ko": ("이름 도시 회사 상태 날짜 금액 비고", "진행중 종료 대기 결제완료 발송완료"),
    "vi": ("tên thành_phố công_ty trạng_thái ngày số_tiền ghi_chú", "mở đóng chờ đã_trả đã_gửi"),
    "id": ("nama kota perusahaan status tanggal jumlah catatan", "terbuka ditutup menunggu lunas dikirim"),
}
SEP = {"zh": "", "ja": ""}
END = {"zh": "。", "ja": "。", "hi": "।", "bn": "।"}


def read_sections(path):
    out, cur = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            if re.fullmatch(r"\[[a-z0-9_]+\]", line):
                cur = line[1:-1]
                out.setdefault(cur, [])
                continue
            out[cur].append(line.strip())
    return out


def cap(s):
    return s[:1].upper() + s[1:] if s else s


def join(lang, *parts):
    """Clauses as one sentence-like text in `lang` (no spaces for Chinese and Japanese)."""
    sep = SEP.get(lang, " ")
    out = ""
    for p in parts:
        p = p.strip()
        if not p:
            continue
        if out and out[-1] not in ",:;，：、":
            out += END.get(lang, ".")
        out = (out + sep + p) if out else cap(p)
    return out + ("" if out[-1:] in ".!?。！？" else END.get(lang, "."))


def disguise(rng, text):
    """Spelling tricks attackers use; the normalizer undoes some of them."""
    k = rng.randrange(5)
    if k == 0:
        return " ".join(text)[: 2 * len(text)] if len(text) < 60 else text.replace(" ", "  ")
    if k == 1:
        return ".".join(text.split(" ")) if " " in text else "-".join(text)
    if k == 2:
        return text.translate(str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0"}))
    if k == 3:
        return text.upper()
    return text.replace(" ", "_")


def faker_for(lang):
    try:
        from faker import Faker
    except ImportError:
        raise SystemExit("make model needs Faker (policies/models/train/requirements.txt)")
    f = Faker(FAKER_LOCALES[lang])
    # Seeded per language: without it every run drew other names and cities, and the training set (and its
    # digest in the card) could not be reproduced.
    f.seed_instance(zlib.crc32(lang.encode()))
    return f


def structured(rng, lang, fk, notes):
    """A benign structured document of `lang`: JSON, table, CSV, log, e-mail, search results, ticket list."""
    labels, states = LABELS[lang][0].split(), LABELS[lang][1].split()
    name, city, company, status, date, amount, note = labels
    kind = rng.choice(["json", "table", "csv", "log", "email", "search", "tickets"])

    def person():
        return fk.name()

    def day():
        return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"

    if kind == "json":
        recs = [{name: person(), city: fk.city(), status: rng.choice(states), date: day(),
                 amount: round(rng.uniform(5, 5000), 2)} for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.6:
            recs[0][note] = rng.choice(notes)
        return json.dumps({"items": recs, "total": len(recs)}, ensure_ascii=False)
    if kind == "table":
        rows = [f"| {name} | {company} | {city} | {status} |", "|---|---|---|---|"]
        rows += [f"| {person()} | {fk.company()} | {fk.city()} | {rng.choice(states)} |" for _ in range(rng.randint(2, 6))]
        return "\n".join(rows)
    if kind == "csv":
        rows = [f"{date},{name},{amount},{status}"]
        rows += [f"{day()},{person()},{rng.randint(1, 9999)}.{rng.randint(0, 99):02d},{rng.choice(states)}" for _ in range(rng.randint(3, 8))]
        return "\n".join(rows)
    if kind == "log":
        lines = []
        for _ in range(rng.randint(2, 6)):
            lvl = rng.choice(["INFO", "INFO", "WARN", "ERROR"])
            msg = rng.choice(notes) if rng.random() < 0.4 else f"{status}={rng.choice(states)} {name}={person()}"
            lines.append(f"{day()}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z {lvl} {msg}")
        return "\n".join(lines)
    if kind == "email":
        body = " ".join(rng.sample(notes, min(len(notes), rng.randint(1, 3))))
        return f"From: {person()} <{fk.user_name()}@example.com>\n{person()},\n{body}\n{person()}, {fk.company()}"
    if kind == "search":
        res = [f"{i + 1}. {rng.choice(notes)[:80]} - {fk.domain_word()}.example.{rng.choice(['com', 'org', 'net'])}"
               for i in range(rng.randint(2, 5))]
        return "\n".join(res)
    return "\n".join(f"#{rng.randint(100, 9999)} [{rng.choice(states)}] {rng.choice(notes)[:90]} ({person()})"
                     for _ in range(rng.randint(2, 5)))


def plant_structured(rng, lang, fk, notes, attack):
    """`attack` where data goes in a structured document: a field, a cell, a log message, an e-mail line."""
    labels = LABELS[lang][0].split()
    kind = rng.choice(["json", "table", "log", "email", "search", "text"])
    if kind == "json":
        rec = {labels[0]: fk.name(), labels[1]: fk.city(), labels[6]: attack}
        return json.dumps({"items": [rec]}, ensure_ascii=False)
    if kind == "table":
        return f"| {labels[0]} | {labels[6]} |\n|---|---|\n| {fk.name()} | {rng.choice(notes)[:60]} |\n| {fk.name()} | {attack} |"
    if kind == "log":
        return f"2025-03-0{rng.randint(1, 9)}T10:0{rng.randint(0, 9)}:00Z INFO {rng.choice(notes)[:60]}\n2025-03-0{rng.randint(1, 9)}T10:1{rng.randint(0, 9)}:00Z INFO {attack}"
    if kind == "email":
        return f"From: {fk.name()} <{fk.user_name()}@example.com>\n{rng.choice(notes)}\n{attack}\n{fk.name()}"
    if kind == "search":
        return f"1. {rng.choice(notes)[:70]} - {fk.domain_word()}.example.com\n2. {attack} - {fk.domain_word()}.example.org"
    return f"{rng.choice(notes)} {attack} {rng.choice(notes)}"


def crop(text, around, limit=480):
    """At most `limit` UTF-8 bytes of `text` that keep the substring `around` whole."""
    if len(text.encode()) <= limit:
        return text
    i = text.find(around)
    if i < 0:
        return around
    room = max(0, limit - len(around.encode())) // 2
    before = text[:i].encode()[-room:].decode("utf-8", "ignore")
    after = text[i + len(around):].encode()[:room].decode("utf-8", "ignore")
    return before + around + after


FOLDS = 3


def fold_of(text):
    """The cross-validation fold of a hand-written sentence or phrase piece (stable across runs)."""
    return zlib.crc32(text.encode()) % FOLDS


def by_fold(book):
    """Each section split by fold: a composed text of fold f is made only of pieces of fold f, so the
    out-of-fold scores that choose C and the bands never see a text built from what a model was fitted
    on (an empty part falls back to the whole section)."""
    out = []
    for f in range(FOLDS):
        out.append({sec: [t for t in lines if fold_of(t) == f] or lines for sec, lines in book.items()})
    return out


def compose(langs, seed=20251205, scale=1.0):
    """Training samples (dicts without id) from train2 for every language."""
    rng = random.Random(seed)
    books = {l: read_sections(os.path.join(TRAIN2, f"{l}.txt")) for l in langs}
    # train3 to train9: natural sentences only, merged into the same sections.
    for l in langs:
        for base in SENTENCE_ROUNDS:
            for sec, lines in read_sections(os.path.join(base, f"{l}.txt")).items():
                books[l].setdefault(sec, []).extend(lines)
    folded = {l: by_fold(books[l]) for l in langs}
    out = []
    cur = [0]

    def add(lang, kind, surface, text, direct, indirect, source="composed"):
        out.append({"source": source, "lang": lang, "kind": kind, "surface": surface, "text": text,
                    "direct": direct, "indirect": indirect, "fold": cur[0]})

    def at(l, f):
        """The pieces of fold f of language l; later adds belong to fold f."""
        cur[0] = f
        return folded[l][f]

    n = lambda k: max(1, int(k * scale))  # noqa: E731
    for l in langs:
        b = books[l]
        fk = faker_for(l)
        fk.seed_instance(rng.randrange(1 << 30))
        notes = b["benign_doc"]
        # Natural sentences (weighted like the other authored texts).
        for t in b["direct"]:
            at(l, fold_of(t))
            add(l, "direct", "user", t, 1, 1, "authored")
        for t in b["indirect"]:
            notes = at(l, fold_of(t))["benign_doc"]
            add(l, "indirect", "tool_result", t, None, 1, "authored")
            add(l, "planted", "tool_result", crop(plant_structured(rng, l, fk, notes, t), t), None, 1, "authored")
        for t in b["benign_prompt"]:
            at(l, fold_of(t))
            add(l, "benign_prompt", "user", t, 0, None, "authored")
        for t in b["benign_doc"]:
            at(l, fold_of(t))
            add(l, "benign_doc", "tool_result", t, 0, 0, "authored")
        # Composed direct attacks.
        others = [o for o in langs if o != l]
        for _ in range(n(180)):
            b = at(l, rng.randrange(FOLDS))
            k = rng.randrange(8)
            ov, goal = rng.choice(b["g_override"]), rng.choice(b["g_goal"])
            if k == 0:
                t = join(l, ov, goal)
            elif k == 1:
                t = join(l, rng.choice(b["g_persona"]), goal)
            elif k == 2:
                t = join(l, rng.choice(b["g_frame"]) + (" " if l not in SEP else "") + ov, goal)
            elif k == 3:
                t = join(l, rng.choice(b["g_frame"]) + (" " if l not in SEP else "") + goal)
            elif k == 4:
                t = join(l, ov) if rng.random() < 0.5 else join(l, rng.choice(b["g_persona"]))
            elif k == 5:
                # Language switching: the override in another language, the demand in this one.
                t = join(l, join(rng.choice(others), rng.choice(folded[rng.choice(others)][cur[0]]["g_override"])), goal)
            elif k == 6:
                t = join(l, disguise(rng, ov), goal)
            else:
                t = join(l, goal, ov) if rng.random() < 0.5 else join(l, rng.choice(b["g_persona"]), ov, goal)
            add(l, "direct", "user", t, 1, 1)
        # Composed indirect attacks planted in this language's documents.
        for _ in range(n(140)):
            b = at(l, rng.randrange(FOLDS))
            notes = b["benign_doc"]
            k = rng.randrange(4)
            act = rng.choice(b["g_action"])
            if k == 0:
                t = join(l, rng.choice(b["g_address"]) + (" " if l not in SEP else "") + act)
            elif k == 1:
                t = join(l, rng.choice(b["g_override"]), act)
            elif k == 2:
                t = join(l, act)
            else:
                t = rng.choice(b["indirect"])
            if rng.random() < 0.5:
                doc = plant_structured(rng, l, fk, notes, t)
            else:
                doc = " ".join(rng.sample(notes, 2))
                doc = f"{doc} {t}" if rng.random() < 0.5 else f"{t} {doc}"
            add(l, "planted", "tool_result", crop(doc, t), None, 1)
        # Benign prompts and documents.
        for _ in range(n(200)):
            b = at(l, rng.randrange(FOLDS))
            req, task = rng.choice(b["g_req"]), rng.choice(b["g_task"])
            add(l, "benign_prompt", "user", join(l, req + (" " if l not in SEP else "") + task), 0, None)
        for _ in range(n(220)):
            notes = at(l, rng.randrange(FOLDS))["benign_doc"]
            add(l, "benign_doc", "tool_result", structured(rng, l, fk, notes), 0, 0)
        for _ in range(n(30)):
            notes = at(l, rng.randrange(FOLDS))["benign_doc"]
            add(l, "benign_doc", "tool_result", " ".join(rng.sample(notes, min(len(notes), rng.randint(2, 5)))), 0, 0)
        questions = [q for q in books[l]["benign_prompt"] if q.rstrip().endswith(("?", "？", "؟"))]
        for _ in range(n(40)):
            q = rng.choice(questions)
            notes = at(l, fold_of(q))["benign_doc"]
            doc = rng.choice([f"{rng.choice(notes)} {q}", f"{q}\n{rng.choice(notes)}",
                              plant_structured(rng, l, fk, notes, q)])
            add(l, "question_in_doc", "tool_result", crop(doc, q), 0, 0)
    # The same composed text twice would sit in two cross-validation folds at once.
    seen, uniq = set(), []
    for r in out:
        key = (r["surface"], r["text"])
        if key not in seen:
            seen.add(key)
            uniq.append(r)
    return uniq
