use super::*;
use rand::SeedableRng;
use regex_syntax::hir::{Hir, HirKind};

fn scanner() -> SecretScanner {
    SecretScanner::from_toml(EMBEDDED_RULES, &SecretsConfig::default()).unwrap()
}

fn kinds(s: &SecretScanner, text: &str) -> Vec<String> {
    s.find(text)
        .iter()
        .map(|m| s.rule(m.rule).id.clone())
        .collect()
}

/// Matches of one rule alone (before overlap resolution with other rules).
fn rule_spans(s: &SecretScanner, idx: usize, text: &str) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    s.scan_window(idx, text, 0, text.len(), &mut |m, ctx| {
        out.push((m.start, m.end, ctx))
    });
    out
}

/// The span-shape contract of `policies/rules/secrets.toml`.
fn check_shape(
    text: &str,
    start: usize,
    end: usize,
    context: usize,
    block: bool,
) -> Result<(), String> {
    let value = &text[start..end];
    if block {
        let ok = (value.starts_with("-----BEGIN") || value.starts_with("---- BEGIN"))
            && value.len() <= MAX_BLOCK;
        return if ok {
            Ok(())
        } else {
            Err(format!("bad block {:?}", &value[..value.len().min(40)]))
        };
    }
    if value.len() > MAX_VALUE {
        return Err(format!("value of {} bytes", value.len()));
    }
    let left = &text[context.min(start)..start];
    if left.len() > 256 {
        return Err(format!("left context of {} bytes", left.len()));
    }
    if left.contains('\n') {
        return Err("left context spans lines".into());
    }
    if !value.chars().any(char::is_whitespace) {
        return Ok(()); // (a) a single token
    }
    // (b) a quoted value closed by the same quote, no newline inside.
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    match (before, after) {
        (Some(q @ ('"' | '\'')), Some(c)) if c == q && !value.contains('\n') => Ok(()),
        _ => Err(format!("whitespace in an unquoted value {value:?}")),
    }
}

#[test]
fn rule_file_has_a_hundred_provider_formats() {
    let s = scanner();
    assert!(s.rules().len() >= 100, "{} rules", s.rules().len());
    for r in s.rules() {
        assert!(!r.examples.is_empty(), "rule {} has no example", r.id);
    }
}

#[test]
fn every_rule_finds_its_examples_and_not_its_negatives() {
    let s = scanner();
    for (idx, r) in s.rules().iter().enumerate() {
        for ex in &r.examples {
            let spans = rule_spans(&s, idx, ex);
            assert!(!spans.is_empty(), "rule {} misses its example {ex:?}", r.id);
            // The scanner as a whole reports a secret there too.
            assert!(
                !s.find_all(ex).is_empty(),
                "scanner misses {ex:?} ({})",
                r.id
            );
        }
        for neg in &r.negatives {
            assert!(
                rule_spans(&s, idx, neg).is_empty(),
                "rule {} fires on negative {neg:?}",
                r.id
            );
        }
    }
}

#[test]
fn examples_satisfy_the_span_shape_contract() {
    let s = scanner();
    for (idx, r) in s.rules().iter().enumerate().filter(|(_, r)| r.redact) {
        for ex in &r.examples {
            for (a, b, ctx) in rule_spans(&s, idx, ex) {
                check_shape(ex, a, b, ctx, r.block.is_some())
                    .unwrap_or_else(|e| panic!("rule {} on {ex:?}: {e}", r.id));
            }
        }
    }
}

/// Replace anchors and word boundaries (which the generator cannot produce)
/// by nothing; the scanner's own regex then decides what really matches.
fn strip_looks(h: &Hir) -> Hir {
    match h.kind() {
        HirKind::Look(_) => Hir::empty(),
        HirKind::Repetition(rep) => {
            let mut r = rep.clone();
            r.sub = Box::new(strip_looks(&rep.sub));
            Hir::repetition(r)
        }
        HirKind::Capture(cap) => {
            let mut c = cap.clone();
            c.sub = Box::new(strip_looks(&cap.sub));
            Hir::capture(c)
        }
        HirKind::Concat(items) => Hir::concat(items.iter().map(strip_looks).collect()),
        HirKind::Alternation(items) => Hir::alternation(items.iter().map(strip_looks).collect()),
        _ => h.clone(),
    }
}

#[test]
fn generated_samples_satisfy_the_span_shape_contract() {
    let s = scanner();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut checked = 0usize;
    for (idx, r) in s.rules().iter().enumerate().filter(|(_, r)| r.redact) {
        let hir = regex_syntax::ParserBuilder::new()
            .build()
            .parse(r.regex().as_str())
            .unwrap_or_else(|e| panic!("{}: {e}", r.id));
        // Unbounded repetitions generate up to 700 items, so an unbounded
        // value would show up as longer than 512 bytes.
        let generator = rand_regex::Regex::with_hir(strip_looks(&hir), 700)
            .unwrap_or_else(|e| panic!("{}: {e}", r.id));
        for _ in 0..40 {
            let sample: String = rand::Rng::sample(&mut rng, &generator);
            for text in [sample.clone(), format!("prefix {sample} suffix\nnext line")] {
                for (a, b, ctx) in rule_spans(&s, idx, &text) {
                    checked += 1;
                    check_shape(&text, a, b, ctx, r.block.is_some())
                        .unwrap_or_else(|e| panic!("rule {} on generated {text:?}: {e}", r.id));
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} generated matches checked");
}

#[test]
fn common_provider_keys() {
    let s = scanner();
    assert_eq!(
        kinds(&s, "key AKIAIOSFODNN7EXAMPLE here"),
        ["aws_access_key_id"]
    );
    assert_eq!(
        kinds(&s, "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"),
        ["openai_api_key"]
    );
    assert_eq!(
        kinds(&s, "export ANTHROPIC_API_KEY=sk-ant-api03-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"),
        ["anthropic_api_key"]
    );
    assert_eq!(
        kinds(&s, "sk-1234567890abcdefghijklmnop"),
        ["openai_api_key"]
    );
}

#[test]
fn span_covers_only_the_value() {
    let s = scanner();
    let text = "password: \"correct horse battery staple\" done";
    let m = s.find(text);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(&text[m[0].start..m[0].end], "correct horse battery staple");
    let pem = "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\nNzaC1r\n-----END OPENSSH PRIVATE KEY-----\ntrailing";
    let m = s.find(pem);
    assert_eq!(m.len(), 1);
    assert!(pem[m[0].start..m[0].end].ends_with("-----END OPENSSH PRIVATE KEY-----"));
    // Two blocks on touching lines are two spans, each ending at its END.
    let two = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY----- zv, -----BEGIN RSA PRIVATE KEY-----\nBBBB\n-----END RSA PRIVATE KEY-----\n";
    let m = s.find(two);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(two[m[0].start..m[0].end].ends_with("AAAA\n-----END RSA PRIVATE KEY-----"));
    assert!(two[m[1].start..m[1].end].ends_with("BBBB\n-----END RSA PRIVATE KEY-----"));
}

#[test]
fn placeholders_are_skipped_but_cannot_hide_a_real_key() {
    let s = scanner();
    assert!(kinds(&s, "api_key=your_api_key").is_empty());
    assert!(kinds(&s, "Example only: api_key=your_api_key").is_empty());
    assert!(kinds(&s, "OPENAI_API_KEY=<your key here>").is_empty());
    assert!(kinds(&s, "token: ${GITHUB_TOKEN}").is_empty());
    // A real key after a placeholder, on the same line or in the same value.
    assert_eq!(
        kinds(&s, "api_key=your_api_key and api_key=Zx8Qp2Lm9Rt4Vw7Yk3Nb").len(),
        1
    );
    assert_eq!(
        kinds(
            &s,
            "OPENAI_API_KEY=your_api_key sk-proj-Zx8Qp2Lm9Rt4Vw7Yk3NbQ4e5r6t7y8u9i0"
        ),
        ["openai_api_key"]
    );
    assert!(!kinds(&s, "password=\"example sk-live-Zx8Qp2Lm9Rt4Vw7Yk3Nb\"").is_empty());
    assert!(!kinds(&s, "api_key=EXAMPLE_Zx8Qp2Lm9Rt4Vw7Yk3Nb").is_empty());
}

#[test]
fn default_logins_of_local_services_are_not_secrets() {
    let s = scanner();
    for text in [
        "psql postgresql://dev:dev@localhost:5432/shop_dev",
        "DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/app_test",
        "amqp://guest:guest@localhost:5672/",
        "mysql://root:root@db:3306/app",
        "http POST :8000/api/login username=dev password=dev",
        "MINIO_ROOT_PASSWORD=minioadmin",
    ] {
        assert!(kinds(&s, text).is_empty(), "{text}: {:?}", kinds(&s, text));
    }
    // A password of its own is still one, next to a default user name.
    assert_eq!(
        kinds(&s, "postgres://postgres:Qv7!pLx9-e2@db.internal:5432/app"),
        ["url_credentials"]
    );
    assert!(!kinds(&s, "redis://default:Zx9Qw3Er7Ty@cache:6379").is_empty());
    assert!(!kinds(&s, "password=rootbeer-Horse-42").is_empty());
}

#[test]
fn code_references_are_not_secrets() {
    let s = scanner();
    for text in [
        "password = config.password",
        "token: string",
        "secret = os.environ[\"SECRET\"]",
        "token = get_token(user)",
        "password = user_password",
        "const apiKey = process.env.API_KEY;",
        "self.token = token",
        // Source files are the most common tool result of a coding agent:
        // the types, paths, macros and keyword arguments of a lexer or an
        // SDK that name a token or a password are code, and masking them
        // would corrupt the file the model reads.
        "    token::parse_punct(input, ',')?;",
        "pub use token::{Lexer, Token, Tokens};",
        "        Token::Ident(name) => name.len(),",
        "    where_token: Default::default(),",
        "    pub brace_token: token::Brace,",
        "    let colon_token: Token![:] = input.parse()?;",
        "    pub semi_token: Option<Token![;]>,",
        "    let self_token = <Token![Self]>::default();",
        "    shared_secret: SharedSecret<KEY_SIZE>,",
        "fn mix(acc: &mut Acc, secret: &SecretLanes) {",
        "    client_secret: Optional[str] = None",
        "    api_key: ApiKeyT | None,",
        "    _enforce_credentials=_enforce_credentials,",
        "        api_key = API_KEY_SENTINEL",
        "    encoded_credentials = auth_header[6:]",
        "def load(self, certfile, keyfile=None, password=None):",
        "        password=password,",
    ] {
        assert!(kinds(&s, text).is_empty(), "{text}: {:?}", kinds(&s, text));
    }
}

/// The same keys given values are still found, in code and configuration.
#[test]
fn values_assigned_to_tokens_and_passwords_are_still_secrets() {
    let s = scanner();
    for text in [
        "password: \"correct horse battery staple\"",
        "DB_PASSWORD=hunter2hunter2",
        "auth_token = a8f5f167f44f4964e6c998dee827110c",
        "let secret = \"Qm9yZWQgb2YgdGhlIHNhbWUgb2xk\";",
        "password => 'S3cr3t!Pass'",
        "token := \"x9Kd82mQ7vLp\"",
        "  password: Tr0ub4dor&3xq",
        "Server=db;Database=app;User Id=sa;Password=Xy7!kk2Lp;",
        "connect(host, password=\"Xy7kk2Lp99\")",
    ] {
        assert!(!kinds(&s, text).is_empty(), "missed: {text}");
    }
}

#[test]
fn encoded_keys_are_found_at_the_token() {
    let s = scanner();
    let text = "c2stMTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3A=";
    let found = s.find_encoded(text);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].0, found[0].1), (0, text.len()));
    let hex = hex::encode("ghp_0123456789abcdefghijABCDEFGHIJ012345");
    assert_eq!(s.find_encoded(&format!("x {hex} y")).len(), 1);
}

#[test]
fn hostile_inputs_are_bounded() {
    let s = scanner();
    let started = std::time::Instant::now();
    // Debug builds are slow; the release-mode figures for megabytes of
    // hostile input are in the `detect` benchmark.
    for text in [
        "sk-".repeat(40_000),
        "key=".repeat(30_000),
        "password: \"".repeat(10_000),
        "-----BEGIN PRIVATE KEY-----\n".repeat(4_000),
        "a".repeat(200_000),
        format!("{}{}", "A".repeat(100_000), "KIA"),
    ] {
        let found = s.find(&text);
        for m in &found {
            assert!(m.end - m.start <= MAX_BLOCK);
        }
    }
    // Generous: a regression that went quadratic would take minutes.
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

#[test]
fn entropy_is_bits_per_char() {
    assert_eq!(shannon_entropy("aaaa"), 0.0);
    assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-9);
}

#[test]
fn references_placeholders_and_elisions_are_not_secrets() {
    let s = scanner();
    for text in [
        r#"api_key = os.environ["OPENAI_API_KEY"]"#,
        "token = process.env.GITHUB_TOKEN",
        "password: ${DB_PASSWORD}",
        r#"export KEY="$(vault kv get -field=key secret/app)""#,
        "API_KEY=$(vault kv get -field=key secret/x)",
        "Authorization: Bearer <token>",
        "STRIPE_SECRET_KEY=sk_live_...",
        "OPENAI_API_KEY=sk-proj-abc…",
        r#"api_key="sk-proj-XXXXXXXXXXXXXXXXXXXX""#,
        "token=ghp_****",
        "aws_access_key_id = YOUR_ACCESS_KEY_ID",
        "aws_secret_access_key=YOUR_SECRET_ACCESS_KEY",
        "SECRET_KEY=changeme",
        "api_key: xxxxxxxxxxxx",
        // Conventional development values.
        "POSTGRES_PASSWORD=devpassword",
        r#"{"username":"testuser","password":"test123"}"#,
        "DB_PASSWORD=local_secret",
        // The same references in the code they come with.
        "import os\napi_key = os.environ[\"OPENAI_API_KEY\"]\nclient = OpenAI(api_key=api_key)",
        "const client = new Stripe(token=config[\"stripe\"])",
        "export KEY=\"$(vault kv get -field=key secret/app)\"\nexport DB_PASSWORD=\"$(vault kv get -field=password secret/db)\"",
        "GITHUB_TOKEN=`gh auth token`",
        "Set STRIPE_SECRET_KEY=sk_live_... in .env, and STRIPE_PUBLISHABLE_KEY=pk_live_...",
        "[default]\naws_access_key_id = YOUR_ACCESS_KEY_ID\naws_secret_access_key = YOUR_SECRET_ACCESS_KEY",
    ] {
        assert!(s.find_all(text).is_empty(), "{text}: {:?}", kinds(&s, text));
    }
    // A real key after a placeholder on the same line is still caught.
    let line = "STRIPE_SECRET_KEY=sk_live_... # real one: sk_live_4eC39HqLyjWDarjtT1zdp7dc";
    assert_eq!(kinds(&s, line), ["stripe_secret_key"]);
    assert_eq!(kinds(&s, "DB_PASSWORD=devpassw0rd!x9Q"), ["generic_secret"]);
    let line = "aws_access_key_id = YOUR_ACCESS_KEY_ID; actually AKIAIOSFODNN7EXAMPLE";
    assert_eq!(kinds(&s, line), ["aws_access_key_id"]);
    // A literal is still a literal next to a reference.
    let line = "export DB_PASSWORD=\"$(vault kv get -field=password secret/db)\" API_TOKEN=Zx8Qp2Lm9Rt4Vw7Yk3Nb";
    assert_eq!(kinds(&s, line), ["generic_secret"]);
    assert_eq!(
        kinds(&s, "client = OpenAI(api_key=\"Zx8Qp2Lm9Rt4Vw7Yk3Nb\")"),
        ["generic_secret"]
    );
}

/// Windows as they were computed before early merging: one per keyword
/// occurrence, then sorted and merged (the reference for `windows`).
fn reference_windows(s: &SecretScanner, text: &str) -> Vec<(u16, usize, usize)> {
    let mut all = Vec::new();
    for m in s.prefilter.find_overlapping_iter(text) {
        let kw = &s.keywords[m.pattern().as_usize()];
        let exact = !kw.exact_rules.is_empty() && text[m.range()] == kw.text;
        for &r in kw
            .folded_rules
            .iter()
            .chain(kw.exact_rules.iter().filter(|_| exact))
        {
            let rule = &s.rules[r as usize];
            if (rule.assignment && !assignment_follows(text, m.end()))
                || (rule.min_tail > 0 && token_tail(text, m.end()) < rule.min_tail)
            {
                continue;
            }
            let (before, after) = match rule.block {
                Some(Block::Pem) => (0, MAX_BLOCK + 256),
                None if rule.case_insensitive() => (WINDOW_BEFORE, WINDOW_AFTER),
                None => (PREFIX_BEFORE, WINDOW_AFTER),
            };
            all.push((
                r,
                floor_boundary(text, m.start().saturating_sub(before)),
                token_end(text, m.end() + after),
            ));
        }
    }
    merge(all)
}

fn merge(mut w: Vec<(u16, usize, usize)>) -> Vec<(u16, usize, usize)> {
    w.sort_unstable();
    let mut out: Vec<(u16, usize, usize)> = Vec::new();
    for (r, s, e) in w {
        match out.last_mut() {
            Some(l) if l.0 == r && s <= l.2 => l.2 = l.2.max(e),
            _ => out.push((r, s, e)),
        }
    }
    out
}

#[test]
fn a_keyword_at_every_offset_costs_one_window_and_one_look_ahead() {
    // The Twitter rule's keyword is a run of 21 `A`: a run of millions
    // matches at every offset. Each occurrence used to add a window and
    // a 512-byte look-ahead (seconds of CPU and hundreds of MB per MiB).
    let s = scanner();
    let text = "A".repeat(1 << 20);
    let windows = s.windows(&text, true);
    assert!(windows.len() <= 2, "{} windows", windows.len());
    let mut ends = TokenEnds::new(&text);
    for at in 0..text.len() {
        assert_eq!(ends.token_end(at), token_end(&text, at));
    }
    assert!(
        ends.examined <= text.len(),
        "{} bytes examined",
        ends.examined
    );
    // Still found: the run starts a valid-looking token.
    let t = format!("{} x", "A".repeat(100));
    assert_eq!(kinds(&s, &t), ["twitter_bearer_token"]);
}

#[test]
fn early_merging_gives_the_same_windows() {
    let s = scanner();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let pieces = [
        "AAAAAAAAAAAAAAAAAAAAAAAA",
        "api_key = ",
        "ghp_",
        "AKIA",
        "-----BEGIN RSA PRIVATE KEY-----\n",
        "-----END RSA PRIVATE KEY-----",
        "xoxb-",
        "sk-",
        " ",
        "\n",
        "é",
        "Zm9vYmFy",
        "token: ",
        "0123456789abcdef",
    ];
    for _ in 0..400 {
        let n = rand::Rng::random_range(&mut rng, 1..80);
        let text: String = (0..n)
            .map(|_| pieces[rand::Rng::random_range(&mut rng, 0..pieces.len())])
            .collect();
        assert_eq!(
            merge(s.windows(&text, true)),
            reference_windows(&s, &text),
            "{text:?}"
        );
    }
}
