//! The memo of judged texts under concurrent requests: agents judged at
//! once from several threads share the memo's shards, and each gets what
//! a judgement without the memo gives, whoever stored the entry.

use asg::decision::detectors::memo::testkit::conversation;
use asg::decision::{Policy, Subject};

fn turn(n: usize, scope: Option<u64>) -> Subject {
    let mut s = Subject {
        memo_scope: scope,
        ..Subject::default()
    };
    for (surface, text) in &conversation()[..n] {
        s.push_text(*surface, *text);
    }
    s
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn concurrent_turns_read_the_findings_of_a_judgement_without_the_memo() {
    let policy = Policy::load("production", None).unwrap();
    let len = conversation().len();
    let want: Vec<String> = (1..=len)
        .map(|n| json(&policy.detectors.run(&turn(n, None), &[])))
        .collect();
    assert!(
        want.iter().any(|w| w.contains("pi.")),
        "the turns have findings"
    );
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let (policy, want) = (&policy, &want);
            scope.spawn(move || {
                // Two threads per agent scope, walking the turns in opposite
                // orders, so entries are stored and read from both sides.
                for round in 0..3 {
                    let order: Vec<usize> = if t % 2 == 0 {
                        (1..=len).collect()
                    } else {
                        (1..=len).rev().collect()
                    };
                    for n in order {
                        let got = json(&policy.detectors.run(&turn(n, Some(t / 2)), &[]));
                        assert_eq!(got, want[n - 1], "thread {t} round {round} turn {n}");
                    }
                }
            });
        }
    });
    let (hits, misses) = policy.detectors.memo_stats();
    assert!(
        hits > misses,
        "the memo was used: {hits} hits, {misses} misses"
    );
}
