//! One suite, run against every store.

use crate::{Batch, MemStore, ReadModelStore, SledStore, StoreError, Write};

fn put(key: &str, value: &str) -> Write {
    Write::Put {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

fn keys(rows: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<String> {
    rows.into_iter()
        .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
        .collect()
}

fn suite(store: &dyn ReadModelStore) {
    assert_eq!(
        store.checkpoint().expect("checkpoint"),
        0,
        "a new store starts before the first event"
    );
    assert_eq!(store.meta(crate::LOG_IDENTITY).expect("log identity"), None);
    store
        .set_meta(crate::LOG_IDENTITY, "1764000000000000000")
        .expect("record");
    assert_eq!(
        store
            .meta(crate::LOG_IDENTITY)
            .expect("log identity")
            .as_deref(),
        Some("1764000000000000000")
    );
    assert!(
        store.scan(b"", None, usize::MAX).expect("scan").is_empty(),
        "the log's identity is not a row"
    );

    store
        .commit(
            vec![
                put("q/a/2", "x"),
                put("q/a/1", "y"),
                put("q/b/1", "z"),
                put("c/1", "case"),
            ],
            5,
        )
        .expect("commit");
    assert_eq!(store.checkpoint().expect("checkpoint"), 5);
    assert_eq!(store.get(b"c/1").expect("get"), Some(b"case".to_vec()));
    assert_eq!(store.get(b"c/2").expect("get"), None);

    assert_eq!(
        keys(store.scan(b"q/a/", None, 10).expect("scan")),
        ["q/a/1", "q/a/2"]
    );
    assert_eq!(
        keys(store.scan(b"q/a/", Some(b"q/a/1"), 10).expect("scan")),
        ["q/a/2"]
    );
    assert_eq!(
        keys(store.scan(b"q/", None, 2).expect("scan")),
        ["q/a/1", "q/a/2"]
    );

    // A batch reads its own writes, and several writes to one key become one.
    let mut batch = Batch::new(store);
    batch.put("c/1", "v2");
    assert_eq!(batch.get(b"c/1").expect("get"), Some(b"v2".to_vec()));
    batch.put("c/1", "v3");
    batch.delete("q/a/1");
    assert_eq!(batch.get(b"q/a/1").expect("get"), None);
    let writes = batch.into_writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    store.commit(writes, 9).expect("commit");
    assert_eq!(store.get(b"c/1").expect("get"), Some(b"v3".to_vec()));
    assert_eq!(
        keys(store.scan(b"q/a/", None, 10).expect("scan")),
        ["q/a/2"]
    );

    // The checkpoint never moves backwards, and a refused commit changes nothing.
    let err = store
        .commit(vec![put("c/1", "stale")], 8)
        .expect_err("backwards checkpoint");
    assert!(
        matches!(err, StoreError::Backwards { current: 9, new: 8 }),
        "{err}"
    );
    assert_eq!(store.get(b"c/1").expect("get"), Some(b"v3".to_vec()));
    assert_eq!(store.checkpoint().expect("checkpoint"), 9);
}

#[test]
fn mem_store_passes_the_suite() {
    suite(&MemStore::new());
}

#[test]
fn sled_store_passes_the_suite_and_keeps_rows_and_checkpoint_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("case_queue");
    {
        let store = SledStore::open(&path, 8 << 20).expect("open");
        suite(&store);
    }
    let (store, opened) = SledStore::open_or_reset(&path, 8 << 20).expect("reopen");
    assert_eq!(opened, crate::Opened::Existing);
    assert_eq!(store.checkpoint().expect("checkpoint"), 9);
    assert_eq!(store.get(b"c/1").expect("get"), Some(b"v3".to_vec()));
    assert_eq!(
        store
            .meta(crate::LOG_IDENTITY)
            .expect("log identity")
            .as_deref(),
        Some("1764000000000000000")
    );
}

#[test]
fn a_sled_store_that_cannot_open_is_moved_aside_and_started_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("case_queue");
    {
        let store = SledStore::open(&path, 8 << 20).expect("open");
        store.commit(vec![put("c/1", "x")], 3).expect("commit");
    }
    // Corrupt the database's configuration so sled refuses it.
    std::fs::write(path.join("conf"), [0xA5u8; 64]).expect("corrupt conf");
    let (store, opened) = SledStore::open_or_reset(&path, 8 << 20).expect("reset");
    let crate::Opened::Reset { moved_to, .. } = opened else {
        panic!("expected a reset, got {opened:?}")
    };
    assert!(
        moved_to.exists(),
        "the broken database is kept for inspection"
    );
    assert_eq!(
        store.checkpoint().expect("checkpoint"),
        0,
        "the new database is rebuilt from the log"
    );
    assert_eq!(store.get(b"c/1").expect("get"), None);
}

#[test]
fn a_sled_store_held_open_elsewhere_is_waited_for_never_moved_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("case_queue");
    let holder = SledStore::open(&path, 8 << 20).expect("open");
    holder.commit(vec![put("c/1", "kept")], 4).expect("commit");
    // Let the first handle go a little later, while the second is trying to open.
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(holder);
    });
    let (store, opened) = SledStore::open_or_reset(&path, 8 << 20).expect("waits for the lock");
    releaser.join().expect("releaser");
    assert_eq!(
        opened,
        crate::Opened::Existing,
        "a locked database is not a broken one"
    );
    assert_eq!(store.get(b"c/1").expect("get"), Some(b"kept".to_vec()));
    assert_eq!(store.checkpoint().expect("checkpoint"), 4);
}
