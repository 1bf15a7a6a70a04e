//! What every `geokv bench` command that spawns its own nodes shares
//! (`compare`, `drain`, `cost`, `join`): the `--durability`, `--work-dir`
//! and `--json` options, the scratch directory they name, and the JSON file
//! a result is written to. Must not measure anything.
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Options of a bench command that spawns its own nodes.
#[derive(clap::Args, Debug, Clone)]
pub struct SpawnArgs {
    /// WAL durability of the nodes (and of `compare`'s engine run).
    #[arg(long, default_value = "periodic")]
    pub durability: String,
    /// Scratch directory (kept); a temporary one, removed afterwards, by default.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl SpawnArgs {
    /// The scratch directory of a run of `what`, created: `--work-dir`, or a
    /// fresh temporary one removed when the returned guard is dropped.
    pub fn scratch(&self, what: &str) -> anyhow::Result<Scratch> {
        let (path, temporary) = match &self.work_dir {
            Some(d) => (d.clone(), false),
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                let name = format!("geokv-bench-{what}-{}-{nanos}", std::process::id());
                (std::env::temp_dir().join(name), true)
            }
        };
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch { path, temporary })
    }

    /// Writes `value` to the `--json` file, if one was given.
    pub fn write_json(&self, value: &impl serde::Serialize) -> anyhow::Result<()> {
        match &self.json {
            Some(path) => write_json(path, value),
            None => Ok(()),
        }
    }
}

/// A bench run's scratch directory; a temporary one is removed on drop.
pub struct Scratch {
    pub path: PathBuf,
    temporary: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Writes `value` as pretty JSON to `path` and says where.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    println!("results: {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::SpawnArgs;

    #[derive(clap::Parser, Debug)]
    struct Cmd {
        #[command(flatten)]
        spawn: SpawnArgs,
    }

    #[test]
    fn the_shared_options_parse_with_their_defaults() {
        let cmd = Cmd::try_parse_from(["bench"]).expect("defaults");
        assert_eq!(cmd.spawn.durability, "periodic");
        assert!(cmd.spawn.work_dir.is_none() && cmd.spawn.json.is_none());
        let given = [
            "bench",
            "--durability",
            "none",
            "--work-dir",
            "/w",
            "--json",
            "r.json",
        ];
        let cmd = Cmd::try_parse_from(given).expect("given");
        assert_eq!(cmd.spawn.durability, "none");
        assert_eq!(cmd.spawn.work_dir.as_deref(), Some("/w".as_ref()));
        assert_eq!(cmd.spawn.json.as_deref(), Some("r.json".as_ref()));
    }

    #[test]
    fn a_temporary_scratch_dir_is_removed_and_a_given_one_kept() {
        let none = SpawnArgs {
            durability: "none".into(),
            work_dir: None,
            json: None,
        };
        let scratch = none.scratch("t").expect("temporary");
        let path = scratch.path.clone();
        assert!(path.is_dir());
        drop(scratch);
        assert!(!path.exists(), "removed on drop");
        let given = SpawnArgs {
            work_dir: Some(std::env::temp_dir().join(format!("geokv-kept-{}", std::process::id()))),
            ..none
        };
        let scratch = given.scratch("t").expect("given");
        let path = scratch.path.clone();
        drop(scratch);
        assert!(path.is_dir(), "a --work-dir is kept");
        std::fs::remove_dir_all(&path).expect("clean up");
    }
}
