//! Command line and the checked configuration of the report server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Where the report server listens unless told otherwise: loopback only
/// (DESIGN §6, §10).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7071";
/// The embedded store the collector writes by default.
pub const DEFAULT_STORE: &str = "sqlite://./helios-data/events.db";
/// Shortest `--token` accepted: anything shorter is guessable.
pub const MIN_TOKEN_CHARS: usize = 16;
/// How long an export waits on a client that takes no data before it
/// gives up (its slot is one of `MAX_CONCURRENT_EXPORTS`).
pub const EXPORT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time budget of one store statement (SQLite's per-statement budget,
/// MongoDB's `maxTimeMS`); past it the request gets a 503.
pub const QUERY_TIMEOUT: Duration = helios_store::sqlite::SQLITE_QUERY_TIMEOUT;
/// Longest `--allowed-host` name (a DNS name's limit).
pub const MAX_HOST_NAME_BYTES: usize = 253;

/// `helios-report`: ad-hoc queries and a web UI over the stored events.
#[derive(Debug, Parser)]
#[command(name = "helios-report", version, about, long_about = None)]
pub struct Cli {
    /// TOML file with any of the settings below (keys as the flags, with
    /// underscores: `store = "sqlite:///var/lib/helios/events.db"`); a flag
    /// or variable beats the file.
    // Applied by `file_config::parse_args`, not by `ReportConfig::resolve`.
    #[arg(long, env = "HELIOS_REPORT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on. A non-loopback address needs `--token` or
    /// `--allow-anonymous`.
    #[arg(long, env = "HELIOS_REPORT_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The store to read: sqlite://PATH or mongodb://… (the collector's
    /// store URIs).
    #[arg(long, env = "HELIOS_REPORT_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
    /// Require `Authorization: Bearer TOKEN` on every API request (prefer
    /// the environment variable: arguments show in `ps`).
    #[arg(long, env = "HELIOS_REPORT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Mark the login cookie `Secure` (browsers then send it over HTTPS
    /// only): for serving behind a TLS-terminating proxy or load balancer.
    #[arg(long, env = "HELIOS_REPORT_SECURE_COOKIE")]
    pub secure_cookie: bool,
    /// Serve a non-loopback address without a token (deliberately open).
    #[arg(long, env = "HELIOS_REPORT_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,
    /// A host name browsers may use to reach this server, besides IP
    /// addresses and `localhost` (repeatable; the variable takes a
    /// comma-separated list). Any other `Host` gets 403, so a hostile page
    /// cannot rebind its own name to this address and read the API.
    #[arg(
        long = "allowed-host",
        value_name = "NAME",
        env = "HELIOS_REPORT_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// MongoDB database (mongodb:// stores), as the collector's flag.
    #[arg(long, env = "HELIOS_MONGODB_DATABASE", default_value = helios_store::mongo::DEFAULT_DATABASE)]
    pub mongodb_database: String,
    /// MongoDB collection (mongodb:// stores), as the collector's flag.
    #[arg(long, env = "HELIOS_MONGODB_COLLECTION", default_value = helios_store::mongo::DEFAULT_COLLECTION)]
    pub mongodb_collection: String,
}

/// The report server's settings, checked.
#[derive(Clone)]
pub struct ReportConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Store URI (may hold credentials: never log it).
    pub store: String,
    /// Bearer token every API request must carry, if any.
    pub token: Option<String>,
    /// Whether the login cookie carries `Secure`.
    pub secure_cookie: bool,
    /// MongoDB database and collection (mongodb:// stores only).
    pub mongodb_namespace: (String, String),
    /// Host names (lowercase, no port) a request's `Host` may name besides
    /// IP literals and `localhost`.
    pub allowed_hosts: Vec<String>,
    /// How long an export waits for a client that reads nothing before it
    /// gives up and frees its slot: [`EXPORT_IDLE_TIMEOUT`] (not a flag;
    /// tests shorten it).
    pub export_idle_timeout: Duration,
    /// Time budget of each store statement: [`QUERY_TIMEOUT`] (not a flag;
    /// tests shorten it).
    pub query_timeout: Duration,
}

impl std::fmt::Debug for ReportConfig {
    // By hand: the token and the store URI (which may carry a password)
    // must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A non-loopback bind with neither a token nor `--allow-anonymous`.
    #[error(
        "refusing to listen on {listen} without authentication: it is not a loopback \
         address, so anyone who can reach it could read every event. Give --token \
         (or HELIOS_REPORT_TOKEN), or pass --allow-anonymous to serve it openly on purpose"
    )]
    OpenNonLoopbackBind {
        /// The address asked for.
        listen: SocketAddr,
    },
    /// `--token ""`: would make every request "authenticated".
    #[error("--token must not be empty")]
    EmptyToken,
    /// The token has characters that cannot travel in a header or cookie.
    #[error(
        "--token may hold only printable ASCII without spaces, quotes, commas, \\ or ';' \
         (it travels in a header and a cookie)"
    )]
    TokenCharacters,
    /// The token is too short to resist guessing.
    #[error(
        "--token must be at least {MIN_TOKEN_CHARS} characters long (it is the only thing \
         between the network and every event); generate one, e.g. `openssl rand -hex 24`"
    )]
    TokenTooShort,
    /// An `--allowed-host` that is not a plain host name.
    #[error(
        "--allowed-host {name:?} is not a host name: give a DNS name only (letters, digits, \
         '-', '_' and '.'), without a scheme or a port"
    )]
    AllowedHost {
        /// The name given.
        name: String,
    },
}

impl ReportConfig {
    /// Checks the command line: secure-by-default binds (DESIGN §10).
    pub fn resolve(cli: Cli) -> Result<Self, ConfigError> {
        if cli.token.as_deref() == Some("") {
            return Err(ConfigError::EmptyToken);
        }
        if cli
            .token
            .as_deref()
            .is_some_and(|t| !t.bytes().all(is_token_byte))
        {
            return Err(ConfigError::TokenCharacters);
        }
        // ASCII only (checked above), so bytes are characters.
        if cli
            .token
            .as_deref()
            .is_some_and(|t| t.len() < MIN_TOKEN_CHARS)
        {
            return Err(ConfigError::TokenTooShort);
        }
        if !is_loopback(cli.listen.ip()) && cli.token.is_none() && !cli.allow_anonymous {
            return Err(ConfigError::OpenNonLoopbackBind { listen: cli.listen });
        }
        let allowed_hosts = cli
            .allowed_hosts
            .iter()
            .map(|name| allowed_host(name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            listen: cli.listen,
            store: cli.store,
            token: cli.token,
            secure_cookie: cli.secure_cookie,
            mongodb_namespace: (cli.mongodb_database, cli.mongodb_collection),
            allowed_hosts,
            export_idle_timeout: EXPORT_IDLE_TIMEOUT,
            query_timeout: QUERY_TIMEOUT,
        })
    }
}

/// Loopback, counting IPv4-mapped IPv6 (`::ffff:127.0.0.1`), which
/// `IpAddr::is_loopback` does not.
fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
    }
}

/// An `--allowed-host` value checked and normalized (trimmed, lowercase).
fn allowed_host(name: &str) -> Result<String, ConfigError> {
    let trimmed = name.trim();
    let plain = !trimmed.is_empty()
        && trimmed.len() <= MAX_HOST_NAME_BYTES
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !plain {
        return Err(ConfigError::AllowedHost {
            name: name.to_owned(),
        });
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// RFC 6265 cookie-octet (which also fits an `Authorization` header).
fn is_token_byte(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("helios-report").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn loopback_needs_no_token() {
        assert!(ReportConfig::resolve(cli(&["--listen", "127.0.0.1:1"])).is_ok());
        assert!(ReportConfig::resolve(cli(&["--listen", "[::1]:1"])).is_ok());
        assert!(ReportConfig::resolve(cli(&["--listen", "[::ffff:127.0.0.1]:1"])).is_ok());
    }

    #[test]
    fn an_ipv4_mapped_address_that_is_not_loopback_needs_a_token() {
        let err = ReportConfig::resolve(cli(&["--listen", "[::ffff:10.1.2.3]:7071"])).unwrap_err();
        assert!(matches!(err, ConfigError::OpenNonLoopbackBind { .. }));
    }

    #[test]
    fn non_loopback_without_token_or_anonymous_is_refused() {
        let err = ReportConfig::resolve(cli(&["--listen", "0.0.0.0:7071"])).unwrap_err();
        assert!(matches!(err, ConfigError::OpenNonLoopbackBind { .. }));
        assert!(err.to_string().contains("--token"), "{err}");
    }

    #[test]
    fn non_loopback_with_token_or_anonymous_is_accepted() {
        assert!(ReportConfig::resolve(cli(&[
            "--listen",
            "0.0.0.0:1",
            "--token",
            "sixteen-chars-ok"
        ]))
        .is_ok());
        assert!(
            ReportConfig::resolve(cli(&["--listen", "0.0.0.0:1", "--allow-anonymous"])).is_ok()
        );
    }

    #[test]
    fn an_empty_token_is_refused() {
        let err = ReportConfig::resolve(cli(&["--token", ""])).unwrap_err();
        assert_eq!(err, ConfigError::EmptyToken);
    }

    #[test]
    fn a_token_that_cannot_be_a_cookie_is_refused() {
        for bad in ["a b", "a;b", "a\"b", "a,b", "é"] {
            let err = ReportConfig::resolve(cli(&["--token", bad])).unwrap_err();
            assert_eq!(err, ConfigError::TokenCharacters, "{bad}");
        }
    }

    #[test]
    fn a_token_shorter_than_the_minimum_is_refused() {
        let err = ReportConfig::resolve(cli(&["--token", "fifteen-chars-x"])).unwrap_err();
        assert_eq!(err, ConfigError::TokenTooShort);
        assert!(err.to_string().contains("16"), "{err}");
        assert!(ReportConfig::resolve(cli(&["--token", "sixteen-chars-ok"])).is_ok());
    }

    #[test]
    fn secure_cookie_is_off_unless_asked_for() {
        assert!(!ReportConfig::resolve(cli(&[])).unwrap().secure_cookie);
        assert!(
            ReportConfig::resolve(cli(&["--secure-cookie"]))
                .unwrap()
                .secure_cookie
        );
    }

    #[test]
    fn allowed_hosts_are_repeatable_comma_separable_and_lowercased() {
        let cfg = ReportConfig::resolve(cli(&[
            "--allowed-host",
            "Helios.Example",
            "--allowed-host",
            "a.example,b.example",
        ]))
        .unwrap();
        assert_eq!(
            cfg.allowed_hosts,
            ["helios.example", "a.example", "b.example"]
        );
    }

    #[test]
    fn an_allowed_host_with_a_port_or_scheme_is_refused() {
        for bad in ["h.example:80", "http://h.example", "", "a b", "[::1]"] {
            let err = ReportConfig::resolve(cli(&["--allowed-host", bad])).unwrap_err();
            assert!(matches!(err, ConfigError::AllowedHost { .. }), "{bad}");
        }
    }

    #[test]
    fn debug_output_hides_the_token_and_store() {
        let cfg = ReportConfig::resolve(cli(&[
            "--token",
            "hunter2-hunter2-hunter2",
            "--store",
            "mongodb://u:pw@h",
        ]))
        .unwrap();
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("pw@"),
            "{shown}"
        );
    }
}
