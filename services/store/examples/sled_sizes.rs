//! Where a read model's disk goes: its keys grouped by their first two `/`-separated parts
//! (`r/d` the rows, `r/p` the party index, `r/o` the feed outbox, `m/checkpoint`...), each
//! group's count and bytes, against what sled holds on disk. Run on a stopped hub's data:
//!
//! ```text
//! cargo run --release -p hub-store --example sled_sizes -- <data dir>/read-models/case_timeline
//! ```

use std::collections::BTreeMap;

fn group(key: &[u8]) -> String {
    let end = key
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .nth(1)
        .map_or(key.len(), |(i, _)| i);
    String::from_utf8_lossy(&key[..end]).into_owned()
}

fn main() -> Result<(), sled::Error> {
    for path in std::env::args().skip(1) {
        // Opened as it was made: sled refuses another compression setting. Without its
        // settings the folder holds no database (sled would make one there).
        let Some(compressed) = hub_store::created_compressed(std::path::Path::new(&path)) else {
            eprintln!("{path}: no sled database here (or its settings do not say)");
            continue;
        };
        let db = sled::Config::new()
            .path(&path)
            .use_compression(compressed)
            .open()?;
        // (keys, key bytes, value bytes) per group.
        let mut groups: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        for item in db.iter() {
            let (key, value) = item?;
            let entry = groups.entry(group(&key)).or_default();
            entry.0 += 1;
            entry.1 += key.len() as u64;
            entry.2 += value.len() as u64;
        }
        let logical: u64 = groups.values().map(|(_, k, v)| k + v).sum();
        println!(
            "{path}: {:.1} MiB on disk, {:.1} MiB of keys and values{}",
            db.size_on_disk()? as f64 / 1048576.0,
            logical as f64 / 1048576.0,
            if compressed {
                " (compressed pages)"
            } else {
                ""
            }
        );
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by_key(|(_, (_, k, v))| std::cmp::Reverse(k + v));
        for (name, (count, keys, values)) in groups {
            println!(
                "  {name:16} {count:>10} keys, {keys:>12} key bytes, {values:>12} value bytes"
            );
        }
    }
    Ok(())
}
