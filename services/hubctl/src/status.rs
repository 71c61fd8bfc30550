//! `hubctl status`.

use std::fmt::Write as _;

use hub_api::v1::{GetStatusRequest, GetStatusResponse};

use crate::Failure;
use crate::connect::{Connection, refused, request};

pub async fn run(connection: &Connection, json: bool, check: bool) -> Result<(), Failure> {
    let (mut admin, caller) = connection.admin().await?;
    let status = admin
        .get_status(request(&caller, GetStatusRequest {})?)
        .await
        .map_err(|s| refused("status", s))?
        .into_inner();
    if json {
        let value = hub::proto_json::to_json("gov.hub.v1.GetStatusResponse", &status)?;
        println!("{value}");
    } else {
        print!("{}", render(&status));
    }
    match (check, troubles(&status)) {
        (true, troubles) if !troubles.is_empty() => Err(Failure::Found(format!(
            "needs a look: {}",
            troubles.join("; ")
        ))),
        _ => Ok(()),
    }
}

/// What in `status` needs an operator's look.
pub fn troubles(status: &GetStatusResponse) -> Vec<String> {
    let mut found = Vec::new();
    found.extend(status.alarms.iter().map(|a| format!("alarm {}", a.key)));
    found.extend(
        status
            .read_models
            .iter()
            .filter(|m| m.state == "halted")
            .map(|m| format!("read model {} halted", m.name)),
    );
    found.extend(
        status
            .health
            .iter()
            .filter(|h| h.status != "SERVING")
            .map(|h| format!("{} {}", h.service, h.status)),
    );
    if !status.durability.as_ref().is_some_and(|d| d.safe) {
        found.push("durability not assured".to_owned());
    }
    found
}

fn time(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn age(d: &Option<prost_types::Duration>) -> String {
    match d {
        None => "-".to_owned(),
        Some(d) => format!("{:.1}s", d.seconds as f64 + d.nanos as f64 / 1e9),
    }
}

/// `status` as a person reads it: one table per part.
pub fn render(status: &GetStatusResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "hub instance {} at {}; log digest at position {}",
        status.instance,
        time(&status.time),
        status.log_digest_position
    );
    if let Some(d) = &status.durability {
        let _ = writeln!(
            out,
            "durability: {} ({} {}): {}",
            if d.safe { "safe" } else { "NOT ASSURED" },
            d.server_name,
            d.version,
            d.finding
        );
    }
    for duty in &status.duties {
        let holder = if duty.holder.is_empty() {
            "none (being handed over)"
        } else {
            duty.holder.as_str()
        };
        let _ = writeln!(out, "duty {}: instance {holder}", duty.name);
    }
    let _ = writeln!(
        out,
        "\n{:<28} {:>10} {:>11} {:>10} {:>10} {:>20} {:>5}",
        "STREAM", "MESSAGES", "BYTES", "FIRST", "LAST", "LAST STORED", "CONS"
    );
    for s in &status.streams {
        let _ = writeln!(
            out,
            "{:<28} {:>10} {:>11} {:>10} {:>10} {:>20} {:>5}",
            s.name,
            s.messages,
            bytes(s.bytes),
            s.first_sequence,
            s.last_sequence,
            time(&s.last_time),
            s.consumers
        );
    }
    let _ = writeln!(
        out,
        "\n{:<26} {:>10} {:>8} {:>8} {:<11} {:>9} {:>11}  REBUILD",
        "READ MODEL", "POSITION", "LAG", "AGE", "STATE", "ROWS", "DISK"
    );
    for m in &status.read_models {
        let rebuild = match &m.rebuild {
            None => String::new(),
            Some(r) if r.caught_up => {
                format!("at {} of {}, caught up (swap it in)", r.position, r.last)
            }
            Some(r) => format!("at {} of {}", r.position, r.last),
        };
        let _ = writeln!(
            out,
            "{:<26} {:>10} {:>8} {:>8} {:<11} {:>9} {:>11}  {}",
            m.name,
            m.position,
            m.lag,
            age(&m.lag_age),
            m.state,
            m.rows
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".to_owned()),
            bytes(m.disk_bytes),
            rebuild
        );
        if !m.halted.is_empty() {
            let _ = writeln!(out, "    halted: {}", m.halted);
        }
    }
    let _ = writeln!(
        out,
        "\n{:<22} {:>10} {:>10} {:>8} {:>8} {:>6} {:>8}",
        "FEED", "POSITION", "ACKED", "LAG", "PENDING", "CONS", "WAITING"
    );
    for f in &status.feeds {
        let _ = writeln!(
            out,
            "{:<22} {:>10} {:>10} {:>8} {:>8} {:>6} {:>8}",
            f.department,
            f.position,
            f.acknowledged_position,
            f.lag,
            f.pending,
            f.consumers,
            f.waiting
        );
    }
    let _ = writeln!(out, "\nHEALTH");
    for h in &status.health {
        let _ = writeln!(out, "  {:<40} {}", h.service, h.status);
    }
    if status.alarms.is_empty() {
        let _ = writeln!(out, "\nno alarms");
    } else {
        let _ = writeln!(out, "\nALARMS");
        for a in &status.alarms {
            let _ = writeln!(out, "  {}: {}", a.key, a.text);
        }
    }
    out
}
