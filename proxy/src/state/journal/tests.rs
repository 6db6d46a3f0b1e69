use super::segment;
use super::*;

fn trees(dir: &Path) -> Trees {
    // A reopen right after a drop may still find sled's lock held by its
    // background threads for a moment: retry (bounded) rather than fail.
    let mut tries = 0;
    let db = loop {
        match sled::Config::new().path(dir.join("db")).open() {
            Ok(db) => break db,
            Err(e) if tries < 100 && e.to_string().contains("lock") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("open sled: {e}"),
        }
    };
    Trees {
        audit: db.open_tree("audit").unwrap(),
        audit_session: db.open_tree("audit_session").unwrap(),
        meta: db.open_tree("meta").unwrap(),
        db,
    }
}

fn temp() -> PathBuf {
    std::env::temp_dir().join(format!("asg-journal-{}", uuid::Uuid::new_v4()))
}

fn json(seq: u64) -> Vec<u8> {
    format!(r#"{{"seq":{seq}}}"#).into_bytes()
}

fn append(j: &Journal, session: &str) -> u64 {
    j.append(session, |seq, out| out.extend_from_slice(&json(seq)))
}

fn seqs(t: &Trees) -> Vec<u64> {
    t.audit
        .iter()
        .keys()
        .map(|k| crate::state::audit::seq_of(&k.unwrap()))
        .collect()
}

#[test]
fn concurrent_appenders_wait_until_durable_and_records_reach_sled() {
    let dir = temp();
    let t = trees(&dir);
    let j = Arc::new(Journal::open(&dir.join("j"), t.clone()).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let j = j.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let seq = append(&j, &format!("s{i}"));
                    j.durable_blocking(seq + 1).unwrap();
                    assert!(j.is_durable(seq + 1));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    j.settle();
    assert_eq!(seqs(&t), (0..400).collect::<Vec<_>>());
    assert_eq!(t.audit_session.len(), 400, "every record is indexed");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_waits_resolve_and_settle_makes_records_readable() {
    let dir = temp();
    let t = trees(&dir);
    let j = Arc::new(Journal::open(&dir.join("j"), t.clone()).unwrap());
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let j = j.clone();
            tokio::spawn(async move {
                let seq = append(&j, "");
                j.durable(seq + 1).await.unwrap();
                seq
            })
        })
        .collect();
    for task in tasks {
        let seq = task.await.unwrap();
        assert!(j.is_durable(seq + 1));
    }
    // Nobody waits for this one: settle alone makes it listable.
    append(&j, "");
    j.settle();
    assert_eq!(t.audit.len(), 33);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_crash_leaves_journaled_records_that_the_next_open_replays() {
    let dir = temp();
    let jdir = dir.join("j");
    {
        let t = trees(&dir);
        let j = Journal::open(&jdir, t.clone()).unwrap();
        append(&j, "a");
        j.durable_blocking(1).unwrap();
        j.settle();
        drop(j);
        t.db.flush().unwrap();
    }
    // What a SIGKILL leaves behind: records in a segment that sled never
    // saw (written by hand here), then zeros; and a torn record after them.
    let mut frames = Vec::new();
    segment::frame(&mut frames, 1, "a", &json(1));
    segment::frame(&mut frames, 2, "b", &json(2));
    let whole = frames.len();
    segment::frame(&mut frames, 3, "b", &json(3));
    let mut seg = std::fs::read(&segment::list(&jdir).unwrap()[0]).unwrap();
    seg[..whole + 5].copy_from_slice(&frames[..whole + 5]);
    std::fs::write(segment::list(&jdir).unwrap()[0].clone(), seg).unwrap();

    let t = trees(&dir);
    let j = Journal::open(&jdir, t.clone()).unwrap();
    assert_eq!(seqs(&t), [0, 1, 2], "replayed up to the torn record");
    assert_eq!(
        segment::list(&jdir).unwrap().len(),
        1,
        "old segment removed"
    );
    assert_eq!(append(&j, "c"), 3, "numbering goes on after the replay");
    drop(j);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn numbering_survives_reopen_after_the_records_are_gone() {
    let dir = temp();
    let jdir = dir.join("j");
    {
        let t = trees(&dir);
        let j = Journal::open(&jdir, t.clone()).unwrap();
        for _ in 0..3 {
            append(&j, "");
        }
        drop(j);
        t.audit.clear().unwrap();
        t.db.flush().unwrap();
    }
    let t = trees(&dir);
    let j = Journal::open(&jdir, t).unwrap();
    assert_eq!(
        append(&j, ""),
        3,
        "retention emptied the tree; seqs are not reused"
    );
    drop(j);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_record_asked_for_is_committed_without_anyone_blocking_on_it() {
    let dir = temp();
    let j = Journal::open(&dir.join("j"), trees(&dir)).unwrap();
    append(&j, "s");
    let end = j.end();
    // What the data path does before pingora's timer: ask, do not wait.
    j.want(end);
    assert!(lock(&j.shared.state).wanted >= end);
    let mut tries = 0;
    while !j.is_durable(end) {
        tries += 1;
        assert!(
            tries < 5_000,
            "the writer never committed the asked-for record"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    j.stop();
    std::fs::remove_dir_all(dir).ok();
}
