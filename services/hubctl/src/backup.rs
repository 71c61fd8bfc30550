//! `hubctl export` and `hubctl import`: a backup of the event log to a file, and its restore
//! into an empty hub at the same positions with the same chained digest.
//!
//! The file holds the export's items (header, messages, trailer), each length-delimited. It is
//! written beside its name and renamed once whole and checked; an import checks the whole file
//! (its SHA-256 and chained digest against its trailer) before it sends anything, because the
//! log cannot take back what it stored.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use hub::backup::{BadExport, LogChecks};
use hub_api::v1::log_export_item::Item;
use hub_api::v1::{ExportLogRequest, ImportLogRequest, LogExportHeader, LogExportItem};
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message;

use crate::Failure;
use crate::connect::{Connection, refused, request};

fn bar(json: bool, what: &str) -> anyhow::Result<ProgressBar> {
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] position {{pos}}/{{len}} ({{per_sec}}, {{eta}} left)"
        ))
        .context("progress style")?
        .progress_chars("=> "),
    );
    Ok(bar)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn export(connection: &Connection, json: bool, out: &Path) -> Result<(), Failure> {
    let (mut admin, caller) = connection.admin().await?;
    let mut items = admin
        .export_log(request(&caller, ExportLogRequest {})?)
        .await
        .map_err(|s| refused("export", s))?
        .into_inner();
    let partial = out.with_extension("partial");
    let mut file = BufWriter::new(crate::private_file(&partial)?);
    // What an export that fails leaves behind goes with it.
    let partial_guard = Partial(Some(partial.clone()));
    let bar = bar(json, "export")?;
    let (mut header, mut checks, mut trailer, mut bytes) = (None, None, None, 0u64);
    while let Some(response) = items
        .message()
        .await
        .map_err(|s| refused("the export broke off", s))?
    {
        let item = response
            .item
            .ok_or_else(|| anyhow!("the hub sent an empty item"))?;
        match &item.item {
            Some(Item::Header(h)) => {
                bar.set_length(h.last_position);
                checks = Some(LogChecks::new(h).map_err(|e| anyhow!("{e}"))?);
                header = Some(h.clone());
            }
            Some(Item::Message(m)) => {
                let checks = checks
                    .as_mut()
                    .ok_or_else(|| anyhow!("the hub sent a message before the header"))?;
                checks.add(m).map_err(|e| anyhow!("{e}"))?;
                bar.set_position(m.position);
            }
            Some(Item::Trailer(t)) => trailer = Some(t.clone()),
            None => {}
        }
        let encoded = item.encode_length_delimited_to_vec();
        bytes += encoded.len() as u64;
        file.write_all(&encoded)
            .with_context(|| format!("writing {}", partial.display()))?;
    }
    bar.finish_and_clear();
    let (Some(header), Some(checks), Some(trailer)) = (header, checks, trailer) else {
        return Err(Failure::Error(anyhow!(
            "the export ended before its trailer; nothing was written to {}",
            out.display()
        )));
    };
    checks
        .finish(&header, &trailer)
        .map_err(|e| anyhow!("the export does not check out: {e}"))?;
    let file = file
        .into_inner()
        .map_err(|e| anyhow!("writing {}: {}", partial.display(), e.error()))?;
    file.sync_all()
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, out).with_context(|| format!("writing {}", out.display()))?;
    partial_guard.keep();
    let summary = serde_json::json!({
        "file": out,
        "messages": trailer.messages,
        "firstPosition": header.first_position,
        "lastPosition": header.last_position,
        "bytes": bytes,
        "sha256": hex(&trailer.sha256),
        "logDigest": hex(&trailer.log_digest),
    });
    if json {
        println!("{summary}");
    } else {
        println!(
            "exported {} messages (positions {} to {}) to {} ({} bytes)\n  sha256 {}\n  log digest at {}: {}",
            trailer.messages,
            header.first_position,
            header.last_position,
            out.display(),
            bytes,
            hex(&trailer.sha256),
            header.last_position,
            hex(&trailer.log_digest)
        );
    }
    Ok(())
}

/// Removes an unfinished export file when dropped, unless kept.
struct Partial(Option<PathBuf>);

impl Partial {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The items of an export file, read one at a time.
struct Items {
    reader: BufReader<std::fs::File>,
    path: PathBuf,
}

impl Items {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self {
            reader: BufReader::new(file),
            path: path.to_owned(),
        })
    }

    fn next(&mut self) -> anyhow::Result<Option<LogExportItem>> {
        hub::backup::read_item(&mut self.reader)
            .map_err(|e| anyhow!("reading {}: {e}", self.path.display()))
    }
}

/// Checks the whole file: its header, its messages in order, and its trailer's checks.
fn check_file(path: &Path, json: bool) -> anyhow::Result<(LogExportHeader, u64)> {
    let mut items = Items::open(path)?;
    let header = match items.next()?.and_then(|i| i.item) {
        Some(Item::Header(h)) => h,
        _ => return Err(anyhow!("{}: {}", path.display(), BadExport::NoHeader)),
    };
    let mut checks = LogChecks::new(&header).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let bar = bar(json, "check")?;
    bar.set_length(header.last_position);
    let trailer = loop {
        match items.next()?.and_then(|i| i.item) {
            Some(Item::Message(m)) => {
                checks
                    .add(&m)
                    .map_err(|e| anyhow!("{}: {e}", path.display()))?;
                bar.set_position(m.position);
            }
            Some(Item::Trailer(t)) => break t,
            _ => return Err(anyhow!("{}: {}", path.display(), BadExport::NoTrailer)),
        }
    };
    bar.finish_and_clear();
    if items.next()?.is_some() {
        return Err(anyhow!("{}: {}", path.display(), BadExport::AfterTrailer));
    }
    checks
        .finish(&header, &trailer)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((header, checks.count()))
}

pub async fn import(connection: &Connection, json: bool, path: &Path) -> Result<(), Failure> {
    let (header, count) = check_file(path, json)?;
    let (mut admin, caller) = connection.admin().await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<ImportLogRequest>(256);
    let bar = bar(json, "import")?;
    bar.set_length(header.last_position);
    let sender = {
        let path = path.to_owned();
        let bar = bar.clone();
        tokio::spawn(async move {
            let mut items = Items::open(&path)?;
            while let Some(item) = items.next()? {
                if let Some(Item::Message(m)) = &item.item {
                    bar.set_position(m.position);
                }
                if tx
                    .send(ImportLogRequest { item: Some(item) })
                    .await
                    .is_err()
                {
                    break; // the hub answered (a refusal) before the end
                }
            }
            anyhow::Ok(())
        })
    };
    let answered = admin
        .import_log(request(
            &caller,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )?)
        .await;
    bar.finish_and_clear();
    let imported = answered.map_err(|s| refused("import", s))?.into_inner();
    sender
        .await
        .map_err(|e| anyhow!("reading the file: {e}"))??;
    let matches = imported.log_digest == imported.expected_log_digest;
    let summary = serde_json::json!({
        "file": path,
        "messages": imported.messages,
        "checked": count,
        "firstPosition": imported.first_position,
        "lastPosition": imported.last_position,
        "logDigest": hex(&imported.log_digest),
        "expectedLogDigest": hex(&imported.expected_log_digest),
        "matches": matches,
    });
    if json {
        println!("{summary}");
    } else {
        println!(
            "imported {} messages (positions {} to {}) from {}\n  log digest at {}: {} ({})",
            imported.messages,
            imported.first_position,
            imported.last_position,
            path.display(),
            imported.last_position,
            hex(&imported.log_digest),
            if matches {
                "the export's"
            } else {
                "NOT the export's"
            }
        );
    }
    if matches {
        Ok(())
    } else {
        Err(Failure::Found(format!(
            "the hub's digest of the imported log is not the export's ({})",
            hex(&imported.expected_log_digest)
        )))
    }
}
