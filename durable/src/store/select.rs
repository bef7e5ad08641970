//! Choosing a store by URL: Postgres for a pool of workers on many machines, SQLite for
//! everything on one machine.

use std::sync::Arc;

use super::Store;
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use crate::{Error, Result};

/// The store used when no URL is configured: a SQLite file in the working directory.
pub const DEFAULT_URL: &str = "sqlite://durable.db";

/// The store URL from the environment: `DURABLE_DATABASE_URL`, else `DATABASE_URL`, else
/// [`DEFAULT_URL`].
pub fn url_from_env() -> String {
    ["DURABLE_DATABASE_URL", "DATABASE_URL"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// Connects to the store a URL names, and migrates it.
///
/// - `postgres://user:password@host/db` or `postgresql://…`: a [`PgStore`];
/// - `sqlite://relative/path.db`, `sqlite:///absolute/path.db` or `sqlite::memory:`: a
///   [`SqliteStore`].
///
/// Anything else is [`Error::Invalid`].
///
/// ```rust,no_run
/// # async fn demo() -> durable::Result<()> {
/// let store = durable::store::connect(&durable::store::url_from_env()).await?;
/// let client = durable::Client::from_arc(store);
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme);
    match scheme {
        Some("postgres" | "postgresql") => {
            tracing::info!(store = "postgres", url = %redact(url), "connecting to the store");
            Ok(Arc::new(PgStore::connect(url).await?))
        }
        Some("sqlite") => {
            tracing::info!(store = "sqlite", url, "opening the store");
            Ok(Arc::new(SqliteStore::connect(url).await?))
        }
        _ => Err(Error::Invalid(format!(
            "unsupported store URL `{}`: use postgres://… or postgresql://… for Postgres, \
             sqlite://path.db (or sqlite::memory: in tests) for SQLite",
            redact(url)
        ))),
    }
}

/// The URL with any password replaced by `***`, fit for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = redact_userinfo(base);
    if let Some(query) = query {
        out.push('?');
        out.push_str(&redact_query(query));
    }
    out
}

/// `scheme://user:password@host…` → `scheme://user:***@host…`.
fn redact_userinfo(base: &str) -> String {
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_owned();
    };
    // The last `@` ends the user info: a password may hold an unescaped `@`, a host cannot.
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return base.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => base.to_owned(),
    }
}

/// `a=1&password=x` → `a=1&password=***`.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://durable:s3cret@127.0.0.1:5432/durable"),
            "postgres://durable:***@127.0.0.1:5432/durable"
        );
        assert_eq!(
            redact("postgres://a:p@ss@host/db"),
            "postgres://a:***@host/db"
        );
        assert_eq!(
            redact("postgresql://host/db?user=a&password=hunter2&sslmode=disable"),
            "postgresql://host/db?user=a&password=***&sslmode=disable"
        );
        assert_eq!(redact("postgres://user@host/db"), "postgres://user@host/db");
        assert_eq!(redact("sqlite://durable.db"), "sqlite://durable.db");
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused_naming_the_accepted_ones() {
        for url in ["mysql://root:pw@host/db", "durable.db", ""] {
            let err = connect(url).await.unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::Invalid(_)), "{url}: {err:?}");
            assert!(
                text.contains("postgres://") && text.contains("sqlite://"),
                "{text}"
            );
            assert!(!text.contains("pw@"), "the password leaked: {text}");
        }
    }

    #[tokio::test]
    async fn sqlite_urls_open_a_sqlite_store() {
        let store = connect("sqlite::memory:").await.unwrap();
        assert!(format!("{store:?}").contains("SqliteStore"), "{store:?}");
    }

    #[test]
    fn the_default_url_is_a_local_sqlite_file() {
        assert_eq!(DEFAULT_URL, "sqlite://durable.db");
    }
}
