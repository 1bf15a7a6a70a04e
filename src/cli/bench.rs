//! `geokv bench …`: hands the rest of the command line to the `geokv-bench`
//! binary (`crates/geokv-bench`), git-style: the one beside this binary,
//! else the first on `PATH`. The benchmarks are a crate of their own so the
//! node does not build their plotting and histogram dependencies.
//!
//! Must not parse the benchmark options (`geokv-bench` does) nor measure
//! anything; tells `geokv-bench` which `geokv` to start nodes from
//! ([`GEOKV_EXE`]).
use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};

/// The benchmark binary's file name.
pub const TOOL: &str = "geokv-bench";
/// Set for `geokv-bench` to the path of the `geokv` that ran it.
pub const GEOKV_EXE: &str = "GEOKV_EXE";

/// Everything after `bench`, passed on unchanged (`--help` included).
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
pub struct BenchArgs {
    /// `geokv bench --help` lists the subcommands: run, compare, drain,
    /// engine, cost, join.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

/// Why `geokv bench` could not start the benchmark binary.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(
        "`geokv bench` runs the separate {TOOL} binary, found neither beside {} nor on PATH; \
         build it with `cargo build -p geokv-bench` (./scripts/geokv builds it) \
         or install it beside geokv",
        exe.display()
    )]
    Missing { exe: PathBuf },
    #[error("running {}: {source}", path.display())]
    Exec {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Replaces this process with `geokv-bench` (returns only on an error).
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let me = std::env::current_exe()?;
    let Some(tool) = find_tool(&me, std::env::var_os("PATH")) else {
        return Err(ForwardError::Missing { exe: me }.into());
    };
    let source = std::process::Command::new(&tool)
        .arg0("geokv bench")
        .args(&args.args)
        .env(GEOKV_EXE, &me)
        .exec();
    Err(ForwardError::Exec { path: tool, source }.into())
}

/// `geokv-bench` beside `me`, else in the first directory of `path` that
/// has it.
pub fn find_tool(me: &Path, path: Option<OsString>) -> Option<PathBuf> {
    let beside = me.parent().map(|dir| dir.join(TOOL));
    let on_path = path
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(TOOL))
        .collect::<Vec<_>>();
    beside.into_iter().chain(on_path).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(path, b"").expect("write");
    }

    #[test]
    fn the_tool_beside_this_binary_wins_over_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = dir.path().join("target/debug/geokv");
        let on_path = dir.path().join("bin");
        touch(&on_path.join(TOOL));
        let path = Some(on_path.clone().into_os_string());
        assert_eq!(find_tool(&me, path.clone()), Some(on_path.join(TOOL)));
        touch(&dir.path().join("target/debug").join(TOOL));
        assert_eq!(
            find_tool(&me, path),
            Some(dir.path().join("target/debug").join(TOOL))
        );
    }

    #[test]
    fn a_missing_tool_says_how_to_build_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = dir.path().join("geokv");
        let empty = Some(dir.path().join("nothing").into_os_string());
        assert_eq!(find_tool(&me, empty), None);
        let text = ForwardError::Missing { exe: me.clone() }.to_string();
        assert!(text.contains("cargo build -p geokv-bench"), "{text}");
        assert!(text.contains(&me.display().to_string()), "{text}");
    }

    #[test]
    fn every_argument_after_bench_is_passed_on() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from([
            "geokv", "bench", "cost", "--help", "--rounds", "1", "-x",
        ])
        .expect("parses");
        let crate::cli::Command::Bench(args) = cli.command else {
            panic!("not bench: {cli:?}");
        };
        let want: Vec<OsString> = ["cost", "--help", "--rounds", "1", "-x"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(args.args, want);
    }
}
