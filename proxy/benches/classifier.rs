//! Cost of the learned injection stage per KiB, on the kinds of text it
//! judges in practice.
//!
//! ```text
//! cargo bench -p asg --bench classifier
//! ```
//!
//! For each text kind (English prose, CJK prose, source code, JSON tool
//! output) at 1 KiB and 64 KiB:
//! * `score/<kind>_<size>`: the classifier alone (`Model::score` on text the
//!   detectors already folded), with the indirect head;
//! * `reference/<kind>_<size>`: the same with the straightforward scorer
//!   the optimised one must match bit for bit (`classifier::reference`),
//!   side by side for the ratio;
//! * `detector/<kind>_<size>`: the whole injection detector on a tool
//!   result (phrase rules, signatures, markers, decoded payloads and the
//!   classifier; normalization included, as in a real inspection);
//! * `rules_only/<kind>_<size>`: the same detector with the classifier off,
//!   so `detector - rules_only` is what the classifier adds.
//!
//! Measured in CPU time of the benchmark thread (`CLOCK_THREAD_CPUTIME_ID`),
//! not wall time: the machines this runs on are shared, and time spent
//! descheduled is not cost. The throughput line is µs of CPU per KiB of the
//! original text (the target is ≤ 30 µs per KiB per core for the
//! classifier). Other processes still pollute the caches: compare runs
//! taken side by side, as ratios.

use asg::decision::detectors::injection::classifier::{Head, Work};
use asg::decision::detectors::injection::{InjectionConfig, InjectionDetector};
use asg::decision::detectors::ScanContext;
use asg::decision::normalize::Normalized;
use asg::decision::{Subject, Surface};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

/// CPU time of the calling thread.
struct ThreadCpu;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a
    // constant the kernel always supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Times in µs; throughput as µs of CPU per KiB.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        for v in values {
            *v /= 1e3;
        }
        "µs"
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let kib = match *t {
            Throughput::Bytes(b) | Throughput::BytesDecimal(b) => b as f64 / 1024.0,
            Throughput::Elements(n) => n as f64,
            Throughput::Bits(b) => b as f64 / 8192.0,
        };
        for v in values {
            *v = *v / 1e3 / kib;
        }
        "µs/KiB"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

const EN: &[&str] = &[
    "Thanks for the update on the quarterly numbers.",
    "Before the meeting on Thursday, could you summarise the previous thread and list the open questions?",
    "The customer asked whether release {n} fixes the login issue and whether reset links expire.",
    "Shipping was delayed by {n} days because the warehouse in Rotterdam ran out of pallets.",
    "Our onboarding guide explains how to request access to the staging cluster.",
    "Please keep the answer short and include ticket numbers where possible, e.g. OPS-{n}.",
    "The board approved the budget; hiring for the two open roles starts next month.",
    "If the invoice total differs from the purchase order by more than {n} euros, flag it for review.",
];

const CJK: &[&str] = &[
    "感谢您对季度数据的更新。",
    "请在周四会议之前总结之前的邮件并列出未解决的问题。",
    "客户询问第{n}版是否修复了登录问题，以及重置链接是否会过期。",
    "倉庫の在庫が不足したため、出荷が{n}日遅れました。",
    "新しいメンバーはステージング環境へのアクセスを申請してください。",
    "회의 전에 이전 스레드를 요약하고 남은 질문을 정리해 주세요.",
    "预算已经批准，两个空缺职位的招聘将于下个月开始。",
    "請求書の合計が注文書と{n}円以上異なる場合は確認してください。",
];

const CODE: &[&str] = &[
    "fn main() {\n    let config = Config::load(\"settings.toml\").expect(\"config\");\n",
    "    let client = Client::new(&config.endpoint);\n    for item in client.list_items()? {\n",
    "        println!(\"{} {}\", item.id, item.name);\n    }\n}\n",
    "def handler(event, context):\n    token = os.environ.get(\"TOKEN_{n}\")\n",
    "    return requests.get(url, headers={\"Accept\": \"application/json\"}, timeout={n})\n",
    "// Retry with exponential backoff; the upstream is flaky under load.\n",
    "const limit = Math.min(opts.limit ?? {n}, MAX_PAGE);\nexport async function page(cursor) {\n",
    "SELECT id, name, created_at FROM orders WHERE total > {n} ORDER BY created_at DESC;\n",
];

const JSON: &[&str] = &[
    "{\"id\": \"evt_{n}\", \"type\": \"invoice.paid\", \"amount\": {n}, \"currency\": \"eur\"},\n",
    "{\"path\": \"src/lib/{n}.rs\", \"size\": {n}, \"modified\": \"2026-01-0{d}T10:22:33Z\"},\n",
    "{\"title\": \"Weekly sync notes\", \"author\": \"jdoe\", \"comments\": {n}, \"open\": true},\n",
    "{\"status\": 200, \"latency_ms\": {n}, \"region\": \"eu-west-1\", \"cache\": \"miss\"},\n",
    "{\"name\": \"temperature\", \"value\": 21.{d}, \"unit\": \"celsius\", \"sensor\": \"s-{n}\"},\n",
];

/// Deterministic text of `size` bytes (cut at a character boundary) drawn
/// from `parts` with varying numbers, so no two KiB are the same.
fn text(parts: &[&str], size: usize, sep: &str) -> String {
    let mut out = String::with_capacity(size + 256);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let part = parts[(x % parts.len() as u64) as usize]
            .replace("{n}", &((x >> 8) % 10_000).to_string())
            .replace("{d}", &((x >> 24) % 9 + 1).to_string());
        out.push_str(&part);
        out.push_str(sep);
    }
    asg::decision::normalize::truncate_at_char_boundary(&out, size).to_string()
}

fn bench_classifier(c: &mut Criterion<ThreadCpu>) {
    let full = InjectionDetector::new(&InjectionConfig::default(), None).expect("detector");
    let rules_only = InjectionDetector::new(
        &toml::from_str::<InjectionConfig>("[classifier]\nenabled = false\n").unwrap(),
        None,
    )
    .unwrap();
    let model = full.classifier().expect("classifier on").model();
    let kinds: [(&str, &[&str], &str); 4] = [
        ("en", EN, " "),
        ("cjk", CJK, ""),
        ("code", CODE, ""),
        ("json", JSON, ""),
    ];
    for (label, size) in [("1kib", 1usize << 10), ("64kib", 64 << 10)] {
        let mut group = c.benchmark_group(format!("classifier_{label}"));
        group.measurement_time(Duration::from_secs(if size > 4096 { 4 } else { 2 }));
        group.warm_up_time(Duration::from_secs(1));
        group.sample_size(30);
        for (kind, parts, sep) in kinds {
            let original = text(parts, size, sep);
            let folded = Normalized::of(&original).folded;
            group.throughput(Throughput::Bytes(original.len() as u64));
            group.bench_function(format!("score/{kind}"), |b| {
                b.iter(|| {
                    black_box(model.score(Head::Indirect, black_box(&folded), &mut Work::default()))
                })
            });
            let mut subject = Subject::default();
            subject.push_text(Surface::ToolResult, original.clone());
            for (name, det) in [("detector", &full), ("rules_only", &rules_only)] {
                group.bench_function(format!("{name}/{kind}"), |b| {
                    b.iter(|| {
                        let cx = ScanContext::new(black_box(&subject));
                        let mut out = Vec::new();
                        det.inspect(&cx, true, true, &mut out);
                        black_box(out)
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench_classifier
}
criterion_main!(benches);
