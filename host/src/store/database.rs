//! Which database the host uses: a SQLite file (the default) or a PostgreSQL server.
//!
//! A PostgreSQL URL may carry a password. It is kept only to connect: `Debug`,
//! `Display` and [`Database::redacted`] print `***` in its place, and so does everything
//! the host logs or reports (`--print-config`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where the host keeps its records.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (`:memory:`: a throwaway in-memory database).
    Sqlite(PathBuf),
    /// A PostgreSQL server, possibly shared with other hosts.
    Postgres(PostgresUrl),
}

/// A `postgres://` or `postgresql://` URL. Never printed with its password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The URL with its password: for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn redacted(&self) -> String {
        redact(&self.0)
    }

    /// The driver's connection settings.
    pub fn config(&self) -> Result<postgres::Config, String> {
        postgres::Config::from_str(&self.0).map_err(|e| format!("database URL {} does not parse: {e}", self.redacted()))
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({})", self.redacted())
    }
}

impl Database {
    /// `postgres://…`, `postgresql://…`, or `sqlite:PATH` (also `sqlite://PATH`).
    pub fn parse(url: &str) -> Result<Database, String> {
        let t = url.trim();
        if let Some(path) = t.strip_prefix("sqlite://").or_else(|| t.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err("database URL `sqlite:` names no file (sqlite:PATH, or sqlite::memory:)".into());
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if t.starts_with("postgres://") || t.starts_with("postgresql://") {
            let url = PostgresUrl(t.to_string());
            url.config()?;
            return Ok(Database::Postgres(url));
        }
        Err(format!(
            "database URL `{}` is neither postgres://USER[:PASSWORD]@HOST[:PORT]/DB (also postgresql://) \
             nor sqlite:PATH",
            redact(t)
        ))
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    /// A printable form: `sqlite:PATH`, or the URL with `***` for its password.
    pub fn redacted(&self) -> String {
        match self {
            Database::Sqlite(p) => format!("sqlite:{}", p.display()),
            Database::Postgres(u) => u.redacted(),
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `scheme://user:***@host/db?…&password=***`: the password in the user info (up to the
/// last `@` before the query, so an unescaped `/` or `@` in it still ends up hidden) and
/// any `password` query parameter.
pub fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let (before_query, query) = match url[start..].find('?') {
        Some(q) => url.split_at(start + q),
        None => (url, ""),
    };
    let mut out = String::with_capacity(url.len());
    match before_query[start..].rfind('@') {
        Some(at) => {
            let userinfo = &before_query[start..start + at];
            out.push_str(&before_query[..start]);
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&before_query[start + at..]);
        }
        None => out.push_str(before_query),
    }
    if let Some(q) = query.strip_prefix('?') {
        out.push('?');
        let parts: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_printed() {
        for (url, shown) in [
            ("postgres://bridle:s3cret@db.internal:5432/bridle", "postgres://bridle:***@db.internal:5432/bridle"),
            ("postgresql://u:p%40ss@h/d?sslmode=disable", "postgresql://u:***@h/d?sslmode=disable"),
            ("postgres://u:pa/ss@word@h/d", "postgres://u:***@h/d"),
            ("postgres://u@h/d?password=s3cret&application_name=x", "postgres://u@h/d?password=***&application_name=x"),
            ("postgres://h/d", "postgres://h/d"),
        ] {
            assert_eq!(redact(url), shown);
            let db = Database::parse(url).unwrap();
            assert_eq!(db.to_string(), shown);
            assert!(!format!("{db:?}").contains("s3cret"));
            assert_eq!(db.kind(), "postgres");
        }
    }

    #[test]
    fn sqlite_and_bad_urls() {
        assert_eq!(Database::parse("sqlite:/var/lib/h.sqlite").unwrap(), Database::Sqlite("/var/lib/h.sqlite".into()));
        assert_eq!(Database::parse("sqlite://rel.sqlite").unwrap(), Database::Sqlite("rel.sqlite".into()));
        assert_eq!(Database::parse("sqlite::memory:").unwrap(), Database::Sqlite(":memory:".into()));
        assert!(Database::parse("sqlite:").is_err());
        let e = Database::parse("mysql://u:s3cret@h/d").unwrap_err();
        assert!(e.contains("mysql://u:***@h/d") && !e.contains("s3cret"), "{e}");
        let e = Database::parse("postgres://u:s3cret@h:notaport/d").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
