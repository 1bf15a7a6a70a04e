//! Walks a clap command tree (issue 13): the one list of the commands a
//! user can run, which the command-line tests of `geokv` (`src/cli`) and
//! of `geokv-bench` check for their conventions (every command that
//! prints a result takes `--json`).
//!
//! Must not: parse arguments, run a command, or know any command's name.

/// Every command of `cmd`'s tree a user can run (a leaf, or a parent whose
/// subcommand is optional), with its full name (`"geokv ring show"`),
/// depth first in declaration order; clap's generated `help` is left out.
pub fn runnable(cmd: &clap::Command) -> Vec<(String, clap::Command)> {
    let mut out = Vec::new();
    walk(cmd, "", &mut out);
    out
}

fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
    let name = format!("{path}{}", cmd.get_name());
    if !cmd.has_subcommands() || !cmd.is_subcommand_required_set() {
        out.push((name.clone(), cmd.clone()));
    }
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        walk(sub, &format!("{name} "), out);
    }
}

#[cfg(test)]
mod tests {
    use clap::{Arg, Command};

    /// Leaves and parents whose subcommand is optional are listed by their
    /// full names; a parent that requires a subcommand and `help` are not.
    #[test]
    fn lists_what_a_user_can_run_by_full_name() {
        let tree = Command::new("tool")
            .subcommand_required(true)
            .subcommand(Command::new("ring").subcommand(Command::new("show")))
            .subcommand(
                Command::new("repair")
                    .subcommand_required(true)
                    .subcommand(Command::new("start").arg(Arg::new("json").long("json"))),
            );
        let names: Vec<String> = super::runnable(&tree).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["tool ring", "tool ring show", "tool repair start"]);
    }
}
