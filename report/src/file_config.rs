//! `helios-report --config FILE`: the report server's settings from a TOML
//! file, as the collector's `--config` (keys are the flags with
//! underscores: `listen`, `store`, `token`, `secure_cookie`,
//! `allow_anonymous`, `allowed_hosts`, `mongodb_database`,
//! `mongodb_collection`).
//!
//! Precedence, as the collector's: flag > environment > file > default.
//! Clap fills every flag's default before we see the [`Cli`], so "was this
//! given?" is asked of clap's `ArgMatches` (`value_source`): a value that
//! came from the command line or the environment stays, one that is only a
//! default (or absent) takes the file's.
//!
//! The file is its own file, not a section of the collector's: the
//! collector refuses unknown keys in its file (a typo must not pass
//! silently), and so does this one.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use serde::Deserialize;

use crate::config::Cli;

/// Largest config file read: it holds a handful of short settings, so
/// anything bigger is the wrong file (a store, a log) and is refused
/// before it is read into memory.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1 << 20;

/// The report server's settings as read from a TOML file; every key is
/// optional and an unknown key is an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// As `--listen`.
    pub listen: Option<SocketAddr>,
    /// As `--store`.
    pub store: Option<String>,
    /// As `--token` (keep the file readable only by the service's user).
    pub token: Option<String>,
    /// As `--secure-cookie`.
    pub secure_cookie: Option<bool>,
    /// As `--allow-anonymous`.
    pub allow_anonymous: Option<bool>,
    /// As `--allowed-host`, a list (`allowed_host` is accepted too, the
    /// flag's spelling).
    #[serde(alias = "allowed_host")]
    pub allowed_hosts: Option<Vec<String>>,
    /// As `--mongodb-database`.
    pub mongodb_database: Option<String>,
    /// As `--mongodb-collection`.
    pub mongodb_collection: Option<String>,
}

/// Why the command line or its config file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileConfigError {
    /// The arguments themselves (also `--help` and `--version`, which clap
    /// reports as errors: call [`clap::Error::exit`] on it).
    #[error(transparent)]
    Args(#[from] clap::Error),
    /// The file could not be read.
    #[error("reading config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_FILE_BYTES`].
    #[error("config {path} is {bytes} bytes, more than the {MAX_CONFIG_FILE_BYTES} a config file may have")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// Not TOML, or a key or value that is not a setting.
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message (names the key and the line).
        message: String,
    },
}

/// Parses the command line (`args` includes the program name) and applies
/// the `--config` file, if one is given, under the flags and environment.
pub fn parse_args<I, T>(args: I) -> Result<Cli, FileConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let Some(path) = cli.config.clone() {
        let file = read_file(&path)?;
        apply(&mut cli, &matches, file);
    }
    Ok(cli)
}

/// Reads and parses one config file.
pub fn read_file(path: &Path) -> Result<FileConfig, FileConfigError> {
    let read_error = |source| FileConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::metadata(path).map_err(read_error)?.len();
    if bytes > MAX_CONFIG_FILE_BYTES {
        return Err(FileConfigError::TooLarge {
            path: path.to_owned(),
            bytes,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    toml::from_str(&text).map_err(|e| FileConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Whether the setting `id` was left to its default (neither a flag nor
/// the environment gave it), so the file may set it.
fn defaulted(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        None | Some(ValueSource::DefaultValue)
    )
}

/// Puts each of the file's settings into `cli` where the flag was left to
/// its default. The ids are the `Cli` field names (clap derive's ids).
fn apply(cli: &mut Cli, matches: &ArgMatches, file: FileConfig) {
    fn take<V>(matches: &ArgMatches, id: &str, slot: &mut V, value: Option<V>) {
        if let Some(value) = value {
            if defaulted(matches, id) {
                *slot = value;
            }
        }
    }
    take(matches, "listen", &mut cli.listen, file.listen);
    take(matches, "store", &mut cli.store, file.store);
    take(matches, "token", &mut cli.token, file.token.map(Some));
    take(
        matches,
        "secure_cookie",
        &mut cli.secure_cookie,
        file.secure_cookie,
    );
    take(
        matches,
        "allow_anonymous",
        &mut cli.allow_anonymous,
        file.allow_anonymous,
    );
    take(
        matches,
        "allowed_hosts",
        &mut cli.allowed_hosts,
        file.allowed_hosts,
    );
    take(
        matches,
        "mongodb_database",
        &mut cli.mongodb_database,
        file.mongodb_database,
    );
    take(
        matches,
        "mongodb_collection",
        &mut cli.mongodb_collection,
        file.mongodb_collection,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ReportConfig, DEFAULT_LISTEN};

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("report.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn parse(args: &[&str]) -> Result<Cli, FileConfigError> {
        parse_args(std::iter::once("helios-report").chain(args.iter().copied()))
    }

    #[test]
    fn every_key_of_the_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            r#"
listen = "0.0.0.0:9000"
store = "sqlite:///var/lib/helios/events.db"
token = "sixteen-chars-ok-really"
secure_cookie = true
allow_anonymous = false
allowed_hosts = ["Helios.Example"]
mongodb_database = "db"
mongodb_collection = "coll"
"#,
        );
        let cli = parse(&["--config", path.to_str().unwrap()]).unwrap();
        assert_eq!(cli.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(cli.store, "sqlite:///var/lib/helios/events.db");
        assert_eq!(cli.token.as_deref(), Some("sixteen-chars-ok-really"));
        assert!(cli.secure_cookie);
        assert!(!cli.allow_anonymous);
        assert_eq!(cli.mongodb_database, "db");
        assert_eq!(cli.mongodb_collection, "coll");
        // The file's values go through the same checks as flags.
        let cfg = ReportConfig::resolve(cli).unwrap();
        assert_eq!(cfg.allowed_hosts, ["helios.example"]);
    }

    #[test]
    fn a_flag_beats_the_file_and_the_file_beats_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "listen = \"127.0.0.1:9001\"\nstore = \"sqlite://f.db\"\n",
        );
        let cli = parse(&[
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9002",
        ])
        .unwrap();
        assert_eq!(cli.listen, "127.0.0.1:9002".parse().unwrap());
        assert_eq!(cli.store, "sqlite://f.db");
    }

    #[test]
    fn without_a_file_the_defaults_stay() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.listen, DEFAULT_LISTEN.parse().unwrap());
        assert!(cli.config.is_none());
    }

    #[test]
    fn the_flags_spelling_allowed_host_is_accepted_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "allowed_host = [\"a.example\", \"b.example\"]\n");
        let cli = parse(&["--config", path.to_str().unwrap()]).unwrap();
        assert_eq!(cli.allowed_hosts, ["a.example", "b.example"]);
    }

    #[test]
    fn an_unknown_key_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "listne = \"127.0.0.1:1\"\n");
        let err = parse(&["--config", path.to_str().unwrap()]).unwrap_err();
        assert!(matches!(err, FileConfigError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("listne"), "{err}");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = parse(&["--config", "/nonexistent/helios/report.toml"]).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/helios/report.toml"),
            "{err}"
        );
    }

    #[test]
    fn a_file_too_large_to_be_a_config_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_CONFIG_FILE_BYTES + 1).unwrap();
        let err = parse(&["--config", path.to_str().unwrap()]).unwrap_err();
        assert!(matches!(err, FileConfigError::TooLarge { .. }), "{err}");
    }
}
