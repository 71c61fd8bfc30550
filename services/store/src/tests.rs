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

#[test]
fn a_sled_store_made_compressed_stays_so_and_one_made_plain_stays_plain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let setting = |path: &std::path::Path| {
        String::from_utf8_lossy(&std::fs::read(path.join("conf")).expect("conf"))
            .lines()
            .find(|line| line.starts_with("use_compression: "))
            .map(str::to_owned)
    };
    // How often a row's text is in the database file as written.
    let copies_on_disk = |path: &std::path::Path, row: &str| {
        let bytes = std::fs::read(path.join("db")).expect("db file");
        bytes
            .windows(row.len())
            .filter(|w| *w == row.as_bytes())
            .count()
    };
    // Rows of one shape, as read models write them.
    let row = r#"{"case_id":"c","event_type":"gov.case.grid_incident.reported.v1","holder":"x"}"#;
    let rows = |from: usize| -> Vec<Write> {
        (from..from + 200)
            .map(|i| put(&format!("k{i:04}"), row))
            .collect()
    };
    let new = dir.path().join("new");
    {
        let store = SledStore::open_with(&new, 8 << 20, true).expect("open");
        store.write(rows(0), 1).expect("write");
        store.flush().expect("flush");
    }
    assert_eq!(setting(&new).as_deref(), Some("use_compression: true"));
    let compressed = copies_on_disk(&new, row);
    assert!(compressed < 20, "{compressed} of 200 rows in clear");
    // Opened again by a caller that would make a new one plain, it stays compressed.
    let (store, opened) = SledStore::open_or_reset(&new, 8 << 20).expect("reopen");
    assert_eq!(opened, crate::Opened::Existing, "not moved aside");
    assert_eq!(store.scan(b"k", None, 1000).expect("scan").len(), 200);
    drop(store);
    assert_eq!(setting(&new).as_deref(), Some("use_compression: true"));

    // Made by a hub before compression: sled refuses to open it with another setting, so
    // the store keeps the one it was made with, and its rows.
    let old = dir.path().join("old");
    {
        let db = sled::Config::new()
            .path(&old)
            .use_compression(false)
            .open()
            .expect("old db");
        db.insert(b"m/checkpoint", &7u64.to_be_bytes())
            .expect("checkpoint");
        db.insert(b"r/a", row.as_bytes()).expect("insert");
        db.flush().expect("flush");
    }
    assert_eq!(setting(&old).as_deref(), Some("use_compression: false"));
    let (store, opened) = SledStore::open_or_reset_with(&old, 8 << 20, true).expect("opens");
    assert_eq!(opened, crate::Opened::Existing, "not moved aside");
    assert_eq!(store.checkpoint().expect("checkpoint"), 7);
    assert_eq!(store.get(b"a").expect("get"), Some(row.as_bytes().to_vec()));
    store.write(rows(0), 8).expect("writes on");
    store.flush().expect("flush");
    drop(store);
    assert_eq!(setting(&old).as_deref(), Some("use_compression: false"));
    assert!(
        copies_on_disk(&old, row) >= 200,
        "its pages stay uncompressed"
    );
    let (store, opened) = SledStore::open_or_reset_with(&old, 8 << 20, true).expect("reopen");
    assert_eq!(opened, crate::Opened::Existing, "not moved aside");
    assert_eq!(store.checkpoint().expect("checkpoint"), 8);
    assert_eq!(store.scan(b"k", None, 1000).expect("scan").len(), 200);
}

#[test]
fn a_sled_store_whose_settings_do_not_say_how_its_pages_are_kept_is_moved_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("case_timeline");
    {
        let store = SledStore::open(&path, 8 << 20).expect("open");
        store.write(vec![put("a", "1")], 3).expect("write");
        store.flush().expect("flush");
    }
    // Its settings intact, it opens as it is.
    let (store, opened) = SledStore::open_or_reset_with(&path, 8 << 20, true).expect("opens");
    assert_eq!(opened, crate::Opened::Existing);
    assert_eq!(store.checkpoint().expect("checkpoint"), 3);
    drop(store);
    // Torn (sled writes it without a sync): a guess could be wrong, and sled panics on a page
    // read with the wrong setting, so the folder is moved aside and the model rebuilt.
    std::fs::write(path.join("conf"), b"").expect("tear conf");
    let (store, opened) = SledStore::open_or_reset_with(&path, 8 << 20, true).expect("resets");
    assert!(
        matches!(&opened, crate::Opened::Reset { reason, .. } if reason.contains("conf")),
        "{opened:?}"
    );
    assert_eq!(
        store.checkpoint().expect("checkpoint"),
        0,
        "empty, to be rebuilt"
    );
}
