//! Settings, and the `serve` command line that fills them from flags or environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::builder::BoolishValueParser;
use clap::Args;

/// A time span such as `15m`, `24h`, `7d`, `3s` or plain seconds (`900`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime(pub i64);

impl Lifetime {
    /// Whole seconds.
    pub fn secs(self) -> i64 {
        self.0
    }
}

impl FromStr for Lifetime {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: i64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a time span; use a number with s, m, h or d, e.g. 15m"))?;
        let unit_secs = match unit.trim() {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            other => return Err(format!("unknown time unit {other:?} in {text:?}; use s, m, h or d")),
        };
        number
            .checked_mul(unit_secs)
            .filter(|secs| *secs <= 10 * 365 * 86_400)
            .map(Self)
            .ok_or_else(|| format!("{text:?} is longer than ten years"))
    }
}

/// Cookie attributes shared by every cookie reauth sets.
#[derive(Clone, Debug)]
pub struct CookieSettings {
    /// `Secure` attribute and `__Secure-` name prefix. Only plain-http development turns it off.
    pub secure: bool,
    /// `Domain` attribute, for instances serving several subdomains; host-only when `None`.
    pub domain: Option<String>,
    /// Also send the access token in an HttpOnly cookie, for server-rendered pages behind
    /// [`crate::edge::SilentRefreshLayer`]. The refresh cookie's path then widens from `/auth` to
    /// `/`, since those pages must see it to refresh (docs/EDGE.md).
    pub access_cookie: bool,
}

/// Throttling of password logins and registrations: attempts allowed per window before 429.
#[derive(Clone, Debug)]
pub struct LoginLimits {
    /// Whether attempts are throttled at all (`REAUTH_THROTTLING`; off only for load tests or
    /// behind a proxy that throttles).
    pub enabled: bool,
    /// Failed logins per username from one client address.
    pub per_username: u32,
    /// Failed logins per client address, whatever the username.
    pub per_address: u32,
    /// Window length in seconds.
    pub window_secs: i64,
    /// Registration attempts per client address per window (successful or not).
    pub registrations_per_address: u32,
}

/// Everything [`crate::AuthService`] and the router need besides the store and the keys.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `iss` of access tokens.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    /// Access-token lifetime in seconds.
    pub access_ttl_secs: i64,
    /// Lifetime of each refresh token in seconds.
    pub refresh_ttl_secs: i64,
    /// How long a family may live from its login, however often it rotates.
    pub session_max_age_secs: i64,
    /// Within this time of a rotation a hand-back of the unused successor is audited as
    /// `reuse_interval`; `0` turns hand-backs off.
    pub reuse_interval_secs: i64,
    /// Cookie attributes.
    pub cookies: CookieSettings,
    /// The origins (`scheme://host[:port]`, normalised) at which browsers reach this server; the
    /// first is the canonical one. Empty: the listening address's origin (development only).
    pub public_origins: Vec<String>,
    /// Origins, besides the server's own, allowed to call with credentials (CORS and CSRF check).
    pub allowed_origins: Vec<String>,
    /// Whether `POST /auth/register` is open.
    pub allow_registration: bool,
    /// Whether the token endpoint accepts `grant_type=password` (RFC 9700 §2.4 says it must not be
    /// used; off by default).
    pub password_grant: bool,
    /// Take the client address from the last `X-Forwarded-For` entry (only behind a proxy you run).
    pub trust_forwarded_for: bool,
    /// Login throttling.
    pub login_limits: LoginLimits,
    /// How long audit events are kept, in seconds.
    pub audit_retention_secs: i64,
    /// Live sessions a user may have; a login past it revokes the least recently used.
    pub max_sessions_per_user: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: "reauth".into(),
            audience: "reauth".into(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 24 * 3600,
            session_max_age_secs: 30 * 86_400,
            reuse_interval_secs: 10,
            cookies: CookieSettings { secure: true, domain: None, access_cookie: false },
            public_origins: Vec::new(),
            allowed_origins: Vec::new(),
            allow_registration: true,
            password_grant: false,
            trust_forwarded_for: false,
            login_limits: LoginLimits {
                enabled: true,
                per_username: 5,
                per_address: 50,
                window_secs: 15 * 60,
                registrations_per_address: 20,
            },
            audit_retention_secs: 90 * 86_400,
            max_sessions_per_user: 50,
        }
    }
}

/// `reauth-server serve`: every flag has an environment variable of the same meaning.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "REAUTH_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Token store: `sqlite://PATH` (embedded default), `redis://HOST:PORT` or
    /// `postgres://USER@HOST/DB` (shared by several instances), `memory://` (tests; lost on exit).
    #[arg(long, env = "REAUTH_STORE", default_value = "sqlite://reauth.db", hide_env_values = true)]
    pub store: String,
    /// PKCS#8 PEM Ed25519 private key (`reauth-server keygen FILE` makes one). Unset: generated once
    /// next to the SQLite file and reused; with `memory://`, an ephemeral key; required with Redis
    /// and PostgreSQL, whose instances must all sign with the same key.
    #[arg(long, env = "REAUTH_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// Access-token lifetime.
    #[arg(long, env = "JWT_ACCESS_EXPIRES_IN", default_value = "15m")]
    pub access_expires_in: Lifetime,
    /// Lifetime of each refresh token (renewed at every rotation).
    #[arg(long, env = "JWT_REFRESH_EXPIRES_IN", default_value = "24h")]
    pub refresh_expires_in: Lifetime,
    /// A session's absolute limit from its login.
    #[arg(long, env = "REAUTH_SESSION_MAX_AGE", default_value = "30d")]
    pub session_max_age: Lifetime,
    /// The previous refresh token yields the current successor while that successor is unused
    /// (concurrent tabs, retries after a lost answer); the audit detail says `reuse_interval` within
    /// this time of the rotation, `unused_successor` after. `0s` turns the hand-back off.
    #[arg(long, env = "REAUTH_REUSE_INTERVAL", default_value = "10s")]
    pub reuse_interval: Lifetime,
    /// `iss` claim of access tokens.
    #[arg(long, env = "REAUTH_ISSUER", default_value = "reauth")]
    pub issuer: String,
    /// `aud` claim of access tokens.
    #[arg(long, env = "REAUTH_AUDIENCE", default_value = "reauth")]
    pub audience: String,
    /// `Secure` cookies with the `__Secure-` prefix; `false` only for plain-http development.
    #[arg(long, env = "REAUTH_COOKIE_SECURE", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub cookie_secure: bool,
    /// `Domain` attribute of the cookies (host-only when unset).
    #[arg(long, env = "REAUTH_COOKIE_DOMAIN")]
    pub cookie_domain: Option<String>,
    /// Also set the access token as an HttpOnly cookie (`reauth_access`) and serve the
    /// server-rendered `/account` page behind the silent-refresh layer. Widens the refresh
    /// cookie's path to `/` (docs/EDGE.md).
    #[arg(long, env = "REAUTH_ACCESS_COOKIE", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub access_cookie: bool,
    /// Comma-separated origins (`scheme://host[:port]`) at which browsers reach this server, e.g.
    /// `https://auth.example.com`; the first is the canonical one. State-changing requests from a
    /// browser must come from one of these or from REAUTH_ALLOWED_ORIGINS. Unset: the listening
    /// address's own origin, right only for local development.
    #[arg(long, env = "REAUTH_PUBLIC_ORIGIN", value_delimiter = ',')]
    pub public_origin: Vec<String>,
    /// Comma-separated origins allowed to call with credentials, e.g. `https://app.example.com`.
    #[arg(long, env = "REAUTH_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Whether `POST /auth/register` is open.
    #[arg(long, env = "REAUTH_ALLOW_REGISTRATION", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub allow_registration: bool,
    /// Accept `grant_type=password` at `POST /auth/token` (off: 400 unsupported_grant_type). The
    /// OAuth security BCP (RFC 9700 §2.4) says it must not be used; only for trusted first-party
    /// clients that cannot use the cookie flow.
    #[arg(long, env = "REAUTH_PASSWORD_GRANT", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub password_grant: bool,
    /// Trust the last `X-Forwarded-For` entry as the client address (behind your own proxy only).
    #[arg(long, env = "REAUTH_TRUST_FORWARDED_FOR", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,
    /// Throttle logins and registrations (`false` only for load tests, or behind a proxy that
    /// throttles them).
    #[arg(long, env = "REAUTH_THROTTLING", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub throttling: bool,
    /// Failed logins allowed per username from one client address within the window before 429.
    #[arg(long, env = "REAUTH_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,
    /// Failed logins allowed per client address within the window before 429.
    #[arg(long, env = "REAUTH_LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 50)]
    pub login_max_failures_per_address: u32,
    /// The login throttling window.
    #[arg(long, env = "REAUTH_LOGIN_WINDOW", default_value = "15m")]
    pub login_window: Lifetime,
    /// Registrations allowed per client address within the login window before 429.
    #[arg(long, env = "REAUTH_REGISTRATIONS_PER_ADDRESS", default_value_t = 20)]
    pub registrations_per_address: u32,
    /// How long audit events are kept.
    #[arg(long, env = "REAUTH_AUDIT_RETENTION", default_value = "90d")]
    pub audit_retention: Lifetime,
    /// Live sessions a user may have at once; a login past it revokes (and audits) the least
    /// recently used one.
    #[arg(long, env = "REAUTH_MAX_SESSIONS_PER_USER", default_value_t = 50)]
    pub max_sessions_per_user: usize,
    /// Directory served at `/` (the demo page); nothing is served there when unset.
    #[arg(long, env = "REAUTH_WWW_DIR")]
    pub www_dir: Option<PathBuf>,
}

impl ServeArgs {
    /// Checks the values together and builds [`Settings`]; the error names the offending setting.
    pub fn settings(&self) -> Result<Settings, String> {
        let positive = |name: &str, value: Lifetime| {
            if value.secs() > 0 {
                Ok(value.secs())
            } else {
                Err(format!("{name} must be longer than 0s"))
            }
        };
        let origins = |name: &str, list: &[String]| {
            list.iter()
                .map(|origin| origin.trim())
                .filter(|origin| !origin.is_empty())
                .map(|origin| {
                    normalize_origin(origin)
                        .ok_or_else(|| format!("{name}: {origin:?} is not an origin like https://app.example.com"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let public_origins = origins("REAUTH_PUBLIC_ORIGIN", &self.public_origin)?;
        let allowed_origins = origins("REAUTH_ALLOWED_ORIGINS", &self.allowed_origins)?;
        if self.login_max_failures == 0
            || self.login_max_failures_per_address == 0
            || self.registrations_per_address == 0
        {
            return Err("REAUTH_LOGIN_MAX_FAILURES, REAUTH_LOGIN_MAX_FAILURES_PER_ADDRESS and \
                        REAUTH_REGISTRATIONS_PER_ADDRESS must be at least 1 (REAUTH_THROTTLING=false turns throttling off)"
                .into());
        }
        Ok(Settings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            access_ttl_secs: positive("JWT_ACCESS_EXPIRES_IN", self.access_expires_in)?,
            refresh_ttl_secs: positive("JWT_REFRESH_EXPIRES_IN", self.refresh_expires_in)?,
            session_max_age_secs: positive("REAUTH_SESSION_MAX_AGE", self.session_max_age)?,
            reuse_interval_secs: self.reuse_interval.secs(),
            cookies: CookieSettings {
                secure: self.cookie_secure,
                domain: self.cookie_domain.clone(),
                access_cookie: self.access_cookie,
            },
            public_origins,
            allowed_origins,
            allow_registration: self.allow_registration,
            password_grant: self.password_grant,
            trust_forwarded_for: self.trust_forwarded_for,
            login_limits: LoginLimits {
                enabled: self.throttling,
                per_username: self.login_max_failures,
                per_address: self.login_max_failures_per_address,
                window_secs: positive("REAUTH_LOGIN_WINDOW", self.login_window)?,
                registrations_per_address: self.registrations_per_address,
            },
            audit_retention_secs: positive("REAUTH_AUDIT_RETENTION", self.audit_retention)?,
            max_sessions_per_user: match self.max_sessions_per_user {
                0 => return Err("REAUTH_MAX_SESSIONS_PER_USER must be at least 1".into()),
                max => max,
            },
        })
    }
}

/// The serialised origin of `text` as browsers send it in `Origin`: lower-case `http` or `https`
/// scheme and host, the port only when it is not the scheme's default, no path. `None` when `text`
/// is not such an origin (a path, a query, user info, another scheme).
pub fn normalize_origin(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('/');
    let (scheme, authority) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    // An IPv6 literal keeps its brackets; the port is whatever follows the last `]:` or `:`.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') && (!host.starts_with('[') || host.ends_with(']')) => {
            (host, Some(port))
        }
        _ => (authority.as_str(), None),
    };
    if host.is_empty() || port.is_some_and(|port| port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some(match port.filter(|port| *port != default_port) {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse_with_units() {
        let parsed: Vec<i64> =
            ["3s", "15m", "24h", "7d", "900", " 2h "].iter().map(|t| t.parse::<Lifetime>().unwrap().secs()).collect();
        assert_eq!(parsed, [3, 900, 86_400, 604_800, 900, 7200]);
    }

    #[test]
    fn origins_are_normalised_as_browsers_send_them() {
        let normal = |text: &str| normalize_origin(text);
        assert_eq!(normal("HTTPS://Auth.Example.com/").as_deref(), Some("https://auth.example.com"));
        assert_eq!(normal("https://auth.example.com:443").as_deref(), Some("https://auth.example.com"));
        assert_eq!(normal("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(normal("http://[::1]:3000").as_deref(), Some("http://[::1]:3000"));
        assert_eq!(normal("http://[::1]").as_deref(), Some("http://[::1]"));
        for bad in
            ["auth.example.com", "ftp://x", "https://x/path", "https://u@x", "https://x:", "https://x:8a", "null"]
        {
            assert_eq!(normal(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_lifetimes_say_why() {
        for text in ["", "m", "15 minutes", "-5m", "1.5h", "99999999999d"] {
            let error = text.parse::<Lifetime>().unwrap_err();
            assert!(error.contains(text.trim()) || error.contains("unit"), "{text}: {error}");
        }
    }
}
