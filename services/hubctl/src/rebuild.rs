//! `hubctl rebuild`, `swap` and `verify`.

use anyhow::Context;
use hub_api::v1::{
    RebuildProgress, RebuildReadModelRequest, SwapReadModelRequest, VerifyReadModelRequest,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::Failure;
use crate::connect::{Connection, refused, request};

pub async fn rebuild(
    connection: &Connection,
    json: bool,
    read_model: &str,
    swap_after: bool,
) -> Result<(), Failure> {
    let (mut admin, caller) = connection.admin().await?;
    let asked = RebuildReadModelRequest {
        read_model: read_model.to_owned(),
    };
    let mut progress = admin
        .rebuild_read_model(request(&caller, asked)?)
        .await
        .map_err(|s| refused("rebuild", s))?
        .into_inner();
    // With --json, one progress object per line instead of a bar.
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} rebuild {prefix} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)",
        )
        .context("progress style")?
        .progress_chars("=> "),
    );
    bar.set_prefix(read_model.to_owned());
    let mut reached: Option<RebuildProgress> = None;
    while let Some(message) = progress
        .message()
        .await
        .map_err(|s| refused("the rebuild's progress broke off", s))?
    {
        let Some(p) = message.progress else { continue };
        if json {
            println!(
                "{}",
                hub::proto_json::to_json("gov.hub.v1.RebuildProgress", &p)?
            );
        }
        bar.set_length(p.last);
        bar.set_position(p.position);
        if !p.halted.is_empty() {
            bar.abandon();
            return Err(Failure::Error(anyhow::anyhow!(
                "the rebuild of {read_model} halted: {}",
                p.halted
            )));
        }
        let done = p.caught_up;
        reached = Some(p);
        if done {
            break;
        }
    }
    bar.finish_and_clear();
    let Some(p) = reached.filter(|p| p.caught_up) else {
        return Err(Failure::Error(anyhow::anyhow!(
            "the hub stopped reporting the rebuild of {read_model} before it caught up; \
             `hubctl status` shows where it stands"
        )));
    };
    if !json {
        println!(
            "rebuilt {read_model} beside the live one: caught up at position {}",
            p.position
        );
    }
    if swap_after {
        swap(connection, json, read_model).await
    } else {
        if !json {
            println!("it follows the log until you swap it in: hubctl swap {read_model}");
        }
        Ok(())
    }
}

pub async fn swap(connection: &Connection, json: bool, read_model: &str) -> Result<(), Failure> {
    let (mut admin, caller) = connection.admin().await?;
    let asked = SwapReadModelRequest {
        read_model: read_model.to_owned(),
    };
    let swapped = admin
        .swap_read_model(request(&caller, asked)?)
        .await
        .map_err(|s| refused("swap", s))?
        .into_inner();
    if json {
        println!(
            "{}",
            hub::proto_json::to_json("gov.hub.v1.SwapReadModelResponse", &swapped)?
        );
    } else {
        println!(
            "swapped in the rebuilt {}: live at position {}",
            swapped.read_model, swapped.position
        );
    }
    Ok(())
}

pub async fn verify(connection: &Connection, json: bool, read_model: &str) -> Result<(), Failure> {
    let (mut admin, caller) = connection.admin().await?;
    let asked = VerifyReadModelRequest {
        read_model: read_model.to_owned(),
    };
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner().with_message(format!("building {read_model} afresh to compare"))
    };
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let verified = admin
        .verify_read_model(request(&caller, asked)?)
        .await
        .map_err(|s| refused("verify", s));
    bar.finish_and_clear();
    let verified = verified?.into_inner();
    if json {
        println!(
            "{}",
            hub::proto_json::to_json("gov.hub.v1.VerifyReadModelResponse", &verified)?
        );
    } else {
        println!(
            "{read_model} at position {}: live {} ({} rows), fresh build {} ({} rows): {}",
            verified.position,
            verified.live_digest,
            verified.live_rows,
            verified.fresh_digest,
            verified.fresh_rows,
            if verified.matches {
                "the same"
            } else {
                "DIFFERENT"
            }
        );
    }
    if verified.matches {
        Ok(())
    } else {
        Err(Failure::Found(format!(
            "{read_model} differs from a fresh build at position {}",
            verified.position
        )))
    }
}
