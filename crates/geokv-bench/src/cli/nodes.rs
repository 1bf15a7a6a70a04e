//! Which `geokv` binary the benchmarks start their nodes from: the one that
//! ran `geokv bench` (`GEOKV_EXE`), else `geokv` beside this binary, else on
//! `PATH`; for `cost` and `compare`, by default the release build of it
//! (`target/release/geokv` beside `target/debug/geokv`) when one exists
//! (`--node-build`), since that is what a cluster runs. Names the build it
//! chose, so every printed figure says what it measured.
//!
//! Must not start nodes or measure anything.
use std::path::{Path, PathBuf};

/// Set by `geokv bench` to the path of the `geokv` binary that ran it.
const GEOKV_EXE: &str = "GEOKV_EXE";

/// Which build of `geokv` the nodes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NodeBuild {
    /// The release build when it exists, else the dev build.
    Auto,
    /// The release build (`scripts/release` or `cargo build --release`).
    Release,
    /// The dev build (`cargo build`), the profile the tests use.
    Dev,
}

/// The `--node-build` option of `cost` and `compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeBuildArgs {
    /// Which build of geokv the nodes run: auto (the release build,
    /// target/release/geokv, when it exists; else the dev build), release
    /// or dev. The output names the binary and its build.
    #[arg(long, value_enum, default_value = "auto")]
    pub node_build: NodeBuild,
}

impl NodeBuildArgs {
    /// The binary the nodes run, and a warning when it is older than the
    /// `geokv` that ran the benchmark (a release build left from older code).
    pub fn node_exe(&self) -> anyhow::Result<PathBuf> {
        let geokv = this_geokv()?;
        let exe = choose(self.node_build, &geokv, |p| p.is_file())?;
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        if let (Some(chosen), Some(this)) = (modified(&exe), modified(&geokv)) {
            if chosen < this {
                eprintln!(
                    "warning: {} is older than {}; rebuild it (scripts/release) or pass --node-build dev",
                    exe.display(),
                    geokv.display()
                );
            }
        }
        Ok(exe)
    }
}

/// The `geokv` that ran `geokv bench`, else `geokv` beside this binary or
/// on `PATH`.
pub fn this_geokv() -> anyhow::Result<PathBuf> {
    if let Some(exe) = std::env::var_os(GEOKV_EXE) {
        return Ok(PathBuf::from(exe));
    }
    let me = std::env::current_exe()?;
    let beside = me.parent().map(|dir| dir.join("geokv"));
    let path = std::env::var_os("PATH");
    let on_path = path.iter().flat_map(std::env::split_paths);
    beside
        .into_iter()
        .chain(on_path.map(|dir| dir.join("geokv")))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no geokv binary beside {} nor on PATH to start nodes from; build it with `cargo build`",
                me.display()
            )
        })
}

/// The release build of `geokv`: `…/release/geokv` for `…/debug/geokv`.
fn release_of(geokv: &Path) -> Option<PathBuf> {
    let dir = geokv.parent()?;
    match dir.file_name()?.to_str()? {
        "release" => Some(geokv.to_path_buf()),
        "debug" => Some(dir.parent()?.join("release").join(geokv.file_name()?)),
        _ => None,
    }
}

/// The binary of `build`, given the `geokv` that ran the benchmark.
pub fn choose(
    build: NodeBuild,
    geokv: &Path,
    exists: impl Fn(&Path) -> bool,
) -> anyhow::Result<PathBuf> {
    let release = release_of(geokv).filter(|p| exists(p));
    match (build, release) {
        (NodeBuild::Dev, _) | (NodeBuild::Auto, None) => Ok(geokv.to_path_buf()),
        (NodeBuild::Release | NodeBuild::Auto, Some(release)) => Ok(release),
        (NodeBuild::Release, None) => anyhow::bail!(
            "--node-build release: no release build beside {} (build it with scripts/release or `cargo build --release --bin geokv`)",
            geokv.display()
        ),
    }
}

/// `path (release build)`, `path (dev build)`, or the path alone.
pub fn describe(path: &Path) -> String {
    let dir = path
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|d| d.to_str());
    match dir {
        Some("release") => format!("{} (release build)", path.display()),
        Some("debug") => format!("{} (dev build)", path.display()),
        _ => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: &str = "/t/debug/geokv";
    const REL: &str = "/t/release/geokv";

    fn with_release(p: &Path) -> bool {
        p == Path::new(REL) || p == Path::new(DEV)
    }

    #[test]
    fn auto_runs_the_release_build_when_it_exists_else_the_dev_build() {
        let dev = Path::new(DEV);
        let auto = choose(NodeBuild::Auto, dev, with_release).expect("auto");
        assert_eq!(auto, Path::new(REL));
        let only_dev = choose(NodeBuild::Auto, dev, |p| p == dev).expect("auto");
        assert_eq!(only_dev, dev);
    }

    #[test]
    fn dev_and_release_are_what_they_say_or_an_error() {
        let dev = Path::new(DEV);
        assert_eq!(choose(NodeBuild::Dev, dev, with_release).expect("dev"), dev);
        let rel = choose(NodeBuild::Release, dev, with_release).expect("release");
        assert_eq!(rel, Path::new(REL));
        let missing = choose(NodeBuild::Release, dev, |p| p == dev).expect_err("none");
        assert!(missing.to_string().contains("scripts/release"), "{missing}");
        let installed = Path::new("/usr/bin/geokv");
        let auto = choose(NodeBuild::Auto, installed, |_| true).expect("auto");
        assert_eq!(
            auto, installed,
            "no release/debug layout: the binary itself"
        );
    }

    #[test]
    fn the_build_is_named_from_the_target_directory() {
        assert_eq!(describe(Path::new(REL)), "/t/release/geokv (release build)");
        assert_eq!(describe(Path::new(DEV)), "/t/debug/geokv (dev build)");
        assert_eq!(describe(Path::new("/usr/bin/geokv")), "/usr/bin/geokv");
    }
}
