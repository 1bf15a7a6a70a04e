//! `geokv put`, `geokv get`, `geokv delete`: one SDK call each, printed for
//! a shell (the context as base64, ready for `--context`) or as JSON.
//!
//! Owns argument shapes and output only; no retries or endpoint choice here.
//!
//! Must not: retry or choose an endpoint (the SDK's).
use geokv::client::CausalContext;
use serde_json::json;

use crate::cli::connect::{ConnectArgs, LevelArgs};
use crate::cli::render;

/// Arguments of `geokv get`.
#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// The key (its UTF-8 bytes).
    pub key: String,
    /// Explicit number of replicas that must answer; overrides --consistency.
    #[arg(long = "r", value_name = "N")]
    pub r: Option<u32>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub level: LevelArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Arguments of `geokv put`.
#[derive(clap::Args, Debug)]
pub struct PutArgs {
    /// The key (its UTF-8 bytes).
    pub key: String,
    /// The value (its UTF-8 bytes).
    pub value: String,
    /// Context (base64) printed by a previous get: the write replaces the
    /// siblings that get saw. Without it the write is blind and becomes a
    /// sibling of whatever is stored.
    #[arg(long, value_name = "B64")]
    pub context: Option<String>,
    /// Explicit number of acknowledgements required; overrides --consistency.
    #[arg(long = "w", value_name = "N")]
    pub w: Option<u32>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub level: LevelArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Arguments of `geokv delete`.
#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// The key (its UTF-8 bytes).
    pub key: String,
    /// Context (base64) printed by a previous get: the versions it covers are
    /// deleted. Without it nothing already stored is covered; the delete only
    /// adds a tombstone sibling.
    #[arg(long, value_name = "B64")]
    pub context: Option<String>,
    /// Explicit number of acknowledgements required; overrides --consistency.
    #[arg(long = "w", value_name = "N")]
    pub w: Option<u32>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub level: LevelArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Runs `geokv get`.
pub async fn get(args: GetArgs) -> anyhow::Result<()> {
    let client = args.connect.client(Some(&args.level)).await?;
    let mut request = client.get(&args.key);
    if let Some(r) = args.r {
        request = request.r(r);
    }
    let read = request.await?;
    if args.json {
        println!("{}", render::get_json(&args.key, &read));
    } else {
        for line in render::get_lines(&read) {
            println!("{line}");
        }
    }
    Ok(())
}

/// Runs `geokv put`.
pub async fn put(args: PutArgs) -> anyhow::Result<()> {
    let context = parse_context(args.context.as_deref())?;
    let client = args.connect.client(Some(&args.level)).await?;
    let mut request = client.put(&args.key, args.value).context(&context);
    if let Some(w) = args.w {
        request = request.w(w);
    }
    let written = request.await?;
    print_write(
        "put",
        &args.key,
        args.json,
        written.acks,
        &written.coordinator,
        &written.context,
    );
    Ok(())
}

/// Runs `geokv delete`.
pub async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let context = parse_context(args.context.as_deref())?;
    let client = args.connect.client(Some(&args.level)).await?;
    let mut request = client.delete(&args.key, &context);
    if let Some(w) = args.w {
        request = request.w(w);
    }
    let deleted = request.await?;
    print_write(
        "delete",
        &args.key,
        args.json,
        deleted.acks,
        &deleted.coordinator,
        &deleted.context,
    );
    Ok(())
}

fn parse_context(text: Option<&str>) -> anyhow::Result<CausalContext> {
    Ok(match text {
        Some(text) => CausalContext::from_base64(text)?,
        None => CausalContext::empty(),
    })
}

fn print_write(
    what: &str,
    key: &str,
    as_json: bool,
    acks: u32,
    coordinator: &str,
    context: &CausalContext,
) {
    if as_json {
        let out = json!({
            "key": key,
            "acks": acks,
            "context": context.to_base64(),
            "coordinator": coordinator,
        });
        println!("{out}");
    } else {
        for line in render::write_lines(what, acks, coordinator, &context.to_base64()) {
            println!("{line}");
        }
    }
}
