//! `geokv auth create-role | drop-role | grant | revoke | list` against a
//! running node's admin port (`/auth/*`, which needs the admin token); the
//! node's own auth flags are `node_auth`'s.
//!
//! Owns flag parsing and printing (text, or with `--json` one JSON object:
//! [`result_json`]); the state and its checks are `geokv::security::auth`'s.
//! Must not: hash secrets or check permissions itself.
use anyhow::{bail, Context};
use geokv::security::auth::peer_clocks::NOT_MEASURED;
use geokv::security::auth::secret;
use geokv::security::auth::spread::{MADE_HERE, SUPERSEDED};
use serde_json::{json, Value};

use super::admin_http::{env_token, request, StatusError};

/// `geokv auth ...`.
#[derive(clap::Subcommand, Debug)]
pub enum AuthCommand {
    /// Create a role; prints its token once (or takes the secret from an
    /// environment variable).
    CreateRole {
        name: String,
        /// Read the secret from this environment variable instead of
        /// generating one.
        #[arg(long, value_name = "VAR")]
        secret_from_env: Option<String>,
        /// No secret: the role authenticates only with a client certificate
        /// naming it (`geokv certs issue --client NAME`).
        #[arg(long, conflicts_with = "secret_from_env")]
        cert_only: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Drop a role (its tokens stop working at once).
    DropRole {
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Give ROLE a permission (read, write or admin) on KEYSPACE (or `*`).
    Grant {
        role: String,
        keyspace: String,
        perm: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Take a permission back (within seconds on every node).
    Revoke {
        role: String,
        keyspace: String,
        perm: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List roles and their permissions (never secrets).
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Which node to ask, with what credential.
#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// A node's admin address (host:port).
    #[arg(long, env = "GEOKV_ADMIN_ENDPOINT", default_value = "127.0.0.11:7072")]
    pub endpoint: String,
    /// The admin token ROLE:SECRET (better: the GEOKV_TOKEN environment
    /// variable, which stays out of `ps`).
    #[arg(
        long,
        value_name = "ROLE:SECRET",
        env = "GEOKV_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print one JSON object instead of text (`list`: the node's roles as
    /// one line of JSON).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: super::admin_http::AdminTlsArgs,
}

impl AdminArgs {
    async fn call(&self, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
        let token = (self.token.clone())
            .filter(|t| !t.trim().is_empty())
            .or_else(env_token);
        self.tls.choose();
        let token = token.as_deref();
        until_measured(|| request(&self.endpoint, method, path, token, body)).await
    }

    /// `POST /auth/grant` or `/auth/revoke` (`action`) of `perm` on
    /// `keyspace` to `role`.
    async fn permission(
        &self,
        action: &str,
        role: &str,
        keyspace: &str,
        perm: &str,
    ) -> anyhow::Result<()> {
        let (role, keyspace, perm) = (enc(role), enc(keyspace), enc(perm));
        let path = format!("/auth/{action}?role={role}&keyspace={keyspace}&perm={perm}");
        self.call("POST", &path, "").await.map(drop)
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What a successful `geokv auth` command prints with `--json` (`list`
/// prints the node's answer instead): the command's arguments, what was
/// done, and a created role's token when this command generated it (shown
/// once, as in the text output).
fn result_json(cmd: &AuthCommand, token: Option<&str>) -> Value {
    match cmd {
        AuthCommand::CreateRole {
            name, cert_only, ..
        } => json!({"role": name, "created": true, "cert_only": cert_only, "token": token}),
        AuthCommand::DropRole { name, .. } => json!({"role": name, "dropped": true}),
        AuthCommand::Grant {
            role,
            keyspace,
            perm,
            ..
        } => json!({"role": role, "keyspace": keyspace, "perm": perm, "granted": true}),
        AuthCommand::Revoke {
            role,
            keyspace,
            perm,
            ..
        } => json!({"role": role, "keyspace": keyspace, "perm": perm, "revoked": true}),
        AuthCommand::List { .. } => Value::Null,
    }
}

impl AuthCommand {
    fn admin(&self) -> &AdminArgs {
        match self {
            AuthCommand::CreateRole { admin, .. }
            | AuthCommand::DropRole { admin, .. }
            | AuthCommand::Grant { admin, .. }
            | AuthCommand::Revoke { admin, .. }
            | AuthCommand::List { admin } => admin,
        }
    }
}

/// Runs `geokv auth ...`.
pub async fn run(cmd: AuthCommand) -> anyhow::Result<()> {
    let as_json = cmd.admin().json;
    let token = run_text(&cmd, as_json).await?;
    if as_json && !matches!(cmd, AuthCommand::List { .. }) {
        println!("{}", result_json(&cmd, token.as_deref()));
    }
    Ok(())
}

/// Prints a generated token whose role creation failed with `e`, unless
/// the node refused it (4xx): the role was made (503, short of a quorum)
/// or may have been (a timeout, a 500), so the token must not be lost
/// (review-authq33 L2); with `--json` (`quiet`) as JSON too.
fn keep_token(e: &anyhow::Error, name: &str, secret: &str, quiet: bool) {
    if is_superseded(e) {
        eprintln!("no token printed: the role was made, but a later drop or re-create of it undoes it, so this token stops working as that change spreads; create the role again if it is still wanted");
        return;
    }
    let Some(made) = kept(e) else { return };
    eprintln!("the role {made} made on that node; its token (shown once, store it now):\n  export GEOKV_TOKEN='{name}:{secret}'");
    if quiet {
        let token = format!("{name}:{secret}");
        println!(
            "{}",
            json!({"role": name, "created": "maybe", "token": token})
        );
    }
}

/// Whether a role whose creation failed with `e` was made on the node
/// ("was": a 503 short of a quorum, made here), may have been (a timeout,
/// a connect error, a 500), or not (`None`: a 4xx, the node refused it; a
/// 503 `clock not yet measured`, nothing stamped); from the answer's
/// status (review-fix33 L3), not its text. A 409 `superseded` is the one
/// 4xx that was made, but `None` too: a later drop or re-create of the
/// role undoes it, so its token would stop working as that spreads
/// ([`is_superseded`]; review-clock35 M2).
fn kept(e: &anyhow::Error) -> Option<&'static str> {
    match e.downcast_ref::<StatusError>() {
        Some(s) if (400..500).contains(&s.code) => None,
        Some(_) if not_measured(e) => None,
        Some(s) if s.code == 503 && s.body.contains(MADE_HERE) => Some("was"),
        Some(_) => Some("may have been"),
        // `request` refuses a 401 without a token before the status.
        None if e.to_string().contains(" answered 401: ") => None,
        None => Some("may have been"),
    }
}

/// How many times a change answered 503 `clock not yet measured` is made
/// again, a second apart, before its answer is shown.
const NOT_MEASURED_TRIES: usize = 10;

/// Makes the call `attempt` makes, and again a second later while it is
/// answered 503 `clock not yet measured` ([`not_measured`]), up to
/// [`NOT_MEASURED_TRIES`] times: a node just (re)started has not heard a
/// quorum yet, and nothing was stamped. The last answer is returned, that
/// 503 included once 10 s have passed.
async fn until_measured<F, Fut>(mut attempt: F) -> anyhow::Result<String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    for _ in 0..NOT_MEASURED_TRIES {
        let made = attempt().await;
        if !made.as_ref().is_err_and(not_measured) {
            return made;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    attempt().await
}

/// Whether `e` is a 503 `clock not yet measured` (review-clock35 M1):
/// nothing was stamped, and the node passes once it has heard a quorum of
/// the members, within seconds when they are reachable.
fn not_measured(e: &anyhow::Error) -> bool {
    let s = e.downcast_ref::<StatusError>();
    s.is_some_and(|s| s.code == 503 && s.body.starts_with(NOT_MEASURED))
}

/// Whether `e` is a 409 `superseded`: made, then undone by a later change.
fn is_superseded(e: &anyhow::Error) -> bool {
    let s = e.downcast_ref::<StatusError>();
    s.is_some_and(|s| s.code == 409 && s.body.starts_with(&format!("{SUPERSEDED}: ")))
}

/// Runs the command, printing text unless `quiet`; the generated token of a
/// created role, if any.
async fn run_text(cmd: &AuthCommand, quiet: bool) -> anyhow::Result<Option<String>> {
    let say = |text: String| {
        if !quiet {
            println!("{text}");
        }
    };
    match cmd {
        AuthCommand::CreateRole {
            name,
            secret_from_env,
            cert_only,
            admin,
        } => {
            let (secret, generated) = match (secret_from_env, *cert_only) {
                (_, true) => (String::new(), false),
                (Some(var), _) => {
                    let s = std::env::var(var).with_context(|| format!("${var} is not set"))?;
                    if s.trim().is_empty() || s.contains(':') {
                        bail!("${var} must hold a non-empty secret without ':'");
                    }
                    (s.trim().to_string(), false)
                }
                (None, false) => (secret::generate_secret(), true),
            };
            let path = format!("/auth/roles?name={}", enc(name));
            if let Err(e) = admin.call("POST", &path, &secret).await {
                if generated {
                    keep_token(&e, name, &secret, quiet);
                }
                return Err(e);
            }
            say(format!("role {name} created; grant it permissions with: geokv auth grant {name} KEYSPACE read|write|admin"));
            if generated {
                say(format!(
                    "its token (shown once, store it now):\n  export GEOKV_TOKEN='{name}:{secret}'"
                ));
                return Ok(Some(format!("{name}:{secret}")));
            }
        }
        AuthCommand::DropRole { name, admin } => {
            admin
                .call("DELETE", &format!("/auth/roles?name={}", enc(name)), "")
                .await?;
            say(format!("role {name} dropped"));
        }
        AuthCommand::Grant {
            role,
            keyspace,
            perm,
            admin,
        } => {
            admin.permission("grant", role, keyspace, perm).await?;
            say(format!("granted {perm} on {keyspace} to {role}"));
        }
        AuthCommand::Revoke {
            role,
            keyspace,
            perm,
            admin,
        } => {
            admin.permission("revoke", role, keyspace, perm).await?;
            say(format!("revoked {perm} on {keyspace} from {role}"));
        }
        AuthCommand::List { admin } => {
            let body = admin.call("GET", "/auth/roles", "").await?;
            print!("{}", list_output(&body, quiet)?);
        }
    }
    Ok(None)
}

/// What `geokv auth list` prints of `GET /auth/roles`: the JSON on one
/// line (`--json`), else [`roles_table`].
fn list_output(body: &str, as_json: bool) -> anyhow::Result<String> {
    let v: Value = serde_json::from_str(body).context("decoding the roles")?;
    Ok(match as_json {
        true => format!("{v}\n"),
        false => roles_table(&v),
    })
}

/// `GET /auth/roles` (`{"version", "roles": {NAME: {"grants": {KEYSPACE:
/// [PERM…]}, "token": bool}}}`) as a table: one line per role and
/// keyspace, a role without grants on one line with `-`.
fn roles_table(v: &Value) -> String {
    let mut t = super::render::table(["ROLE", "TOKEN", "KEYSPACE", "PERMISSIONS"]);
    let roles = v["roles"].as_object().cloned().unwrap_or_default();
    for (name, role) in &roles {
        let token = if role["token"].as_bool() == Some(true) {
            "yes"
        } else {
            "no (certificate)"
        };
        let grants = role["grants"].as_object().cloned().unwrap_or_default();
        if grants.is_empty() {
            t.add_row([name.as_str(), token, "-", "-"]);
        }
        for (keyspace, perms) in &grants {
            let perms: Vec<&str> = (perms.as_array().into_iter().flatten())
                .filter_map(Value::as_str)
                .collect();
            t.add_row([
                name.as_str(),
                token,
                keyspace.as_str(),
                perms.join(",").as_str(),
            ]);
        }
    }
    let last = match v["version"].as_u64() {
        Some(ms) if ms > 0 => geokv::clock::rfc3339(ms),
        _ => "-".to_string(),
    };
    format!("{t}\nlast change at {last}\n")
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
