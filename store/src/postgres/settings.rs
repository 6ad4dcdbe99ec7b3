//! Where the engine's database is, and how a connection to it is made: the URL (never with a
//! password in it), the password from a file or `PGPASSWORD`, TLS, and the session settings.

use std::path::PathBuf;
use std::str::FromStr;

use super::tls;

/// The session setting of every connection the engine makes (see `PgSettings::connect_with`).
const CUSTOM_PLANS: &str = "-c plan_cache_mode=force_custom_plan";

/// Where the engine's database is and how to reach it.
#[derive(Clone, Debug)]
pub struct PgSettings {
    /// `postgresql://user@host:port/db` — without a password.
    pub url: String,
    /// A file holding the password (its first line), if the server asks for one; otherwise
    /// `PGPASSWORD`, if set.
    pub password_file: Option<PathBuf>,
    /// Connections in the pool (readers and the writer), 1 or more.
    pub pool_size: usize,
    /// The CA bundle (PEM) the database's certificate must chain to; with it every connection
    /// is TLS 1.3, checked against it and the URL's host; without it, none is.
    pub ca: Option<PathBuf>,
}

impl PgSettings {
    /// Settings for `url`, with no password file and the default pool.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            password_file: None,
            pool_size: 8,
            ca: None,
        }
    }

    /// Whether these settings make a connection: no password in the URL, a password file that
    /// reads, a CA bundle that loads.
    pub fn check(&self) -> Result<(), String> {
        self.connect_with().map(drop)
    }

    /// The connection configuration and its TLS connector (see `tls`).
    pub(crate) fn connect_with(&self) -> Result<(tokio_postgres::Config, tls::Tls), String> {
        let mut config = self.connection()?;
        // The views table grows from empty: a generic plan cached while it was small went on
        // scanning it whole for `key = ANY($1)` (the ledger alone measured 2,200 records/s
        // instead of 11,000). Every statement is planned for the tables as they are.
        let options = [config.get_options(), Some(CUSTOM_PLANS)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        config.options(&options);
        let tls = tls::configure(&mut config, self.ca.as_deref())?;
        Ok((config, tls))
    }

    /// The connection configuration: the URL, refused if it carries a password, with the
    /// password from the file or `PGPASSWORD`.
    pub fn connection(&self) -> Result<tokio_postgres::Config, String> {
        let mut config =
            tokio_postgres::Config::from_str(&self.url).map_err(|e| format!("storage url: {e}"))?;
        if config.get_password().is_some() {
            return Err(
                "storage url: carries a password; put it in password_file or PGPASSWORD instead"
                    .into(),
            );
        }
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("storage password_file {}: {e}", path.display()))?;
            config.password(text.lines().next().unwrap_or("").as_bytes());
        } else if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password.as_bytes());
        }
        if config.get_application_name().is_none() {
            config.application_name("infoshare-server");
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::PgSettings;

    #[test]
    fn a_password_in_the_url_is_refused_and_one_from_the_file_is_used() {
        let refused = PgSettings::new("postgresql://infoshare:secret@127.0.0.1:5432/db")
            .connection()
            .unwrap_err();
        assert!(refused.contains("password_file"), "{refused}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-the-file\nignored\n").unwrap();
        let mut settings = PgSettings::new("postgresql://infoshare@127.0.0.1:5432/db");
        settings.password_file = Some(file);
        let config = settings.connection().unwrap();
        assert_eq!(config.get_password(), Some(&b"from-the-file"[..]));
        assert_eq!(config.get_application_name(), Some("infoshare-server"));

        settings.password_file = Some(dir.path().join("missing"));
        assert!(settings.connection().unwrap_err().contains("missing"));
    }
}
