use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, Script};

use super::{
    AuditEvent, AuditKind, Challenge, ChallengeStore, Family, KeyKind, KeyStore, Maintenance, NewFamily, Revocation,
    RevokeReason, Rotated, Rotation, StoreError, StoreResult, StoredKey, TokenStore, UnixTime, User,
};

/// How long a family's record outlives the session's absolute end (legacy layout: its refresh
/// token), so that the periodic purge, which removes a family once its token has ended, normally
/// removes it rather than Redis; the TTL is the bound when no purge runs.
const KEEP_DEAD_FAMILY_SECS: i64 = 3600;
/// Audit events kept per user (approximately: the stream is trimmed with `MAXLEN ~`).
const EVENTS_PER_USER: usize = super::AUDIT_EVENTS_PER_USER;
/// Failed logins of unknown usernames, kept in one stream of their own.
const ANONYMOUS_EVENTS: usize = 10_000;
/// An idle user's event stream disappears after this; the purge trims by age before that.
const EVENT_STREAM_TTL_SECS: i64 = 90 * 86_400;
/// Keys looked at per `SCAN` step of the purge.
const SCAN_BATCH: usize = 500;

/// The family half of a refresh, shared by [`ROTATE`] and [`ADVANCE`]: KEYS[1] is the family;
/// ARGV[1] the generation presented, ARGV[2] now. Leaves the family's fields in `f` for the rest.
/// Generations are compared as the decimal strings every writer stores (`rotation_args`): Lua's
/// number conversions are a good part of a script's time, and this is the refresh's hot path.
macro_rules! check_family_lua {
    () => {
        r#"local f = redis.call('HMGET', KEYS[1], 'generation', 'revoked', 'token_expires_at', 'expires_at',
  'user_id', 'created_at', 'user_agent', 'client_ip')
local now = tonumber(ARGV[2])
if f[1] ~= ARGV[1] or f[2] or tonumber(f[3]) <= now or tonumber(f[4]) <= now then
  return false
end
"#
    };
}

/// The swap after `check_family_lua!`: ARGV[4] the next generation, ARGV[3] the new token's end
/// (capped by the family's), both as the caller wrote them rather than formatted here. Leaves the
/// stored values in `generation` and `token_expires_at`.
macro_rules! advance_family_lua {
    () => {
        r#"local generation = ARGV[4]
local token_expires_at = ARGV[3]
if tonumber(f[4]) < tonumber(token_expires_at) then token_expires_at = f[4] end
redis.call('HSET', KEYS[1], 'generation', generation, 'rotated_at', ARGV[2], 'last_used_at', ARGV[2],
  'token_expires_at', token_expires_at)
"#
    };
}

/// Appends an event to the stream `KEYS[events]` under a stream id made of its own time (so the
/// purge can trim by age with `XTRIM MINID`), kept increasing when instances' clocks disagree
/// slightly: an event older than the stream's last one takes that one's time (the rare case, so it
/// alone pays for reading the last entry). From ARGV[first] on: time in ms, cap, TTL, then the
/// event's field/value pairs. Shared by the scripts below, which differ in which key holds the
/// stream and what comes before.
macro_rules! append_event_lua {
    ($events:literal, $first:literal) => {
        concat!(
            "local events, a = KEYS[",
            $events,
            "], ",
            $first,
            "\n",
            r#"local added = redis.pcall('XADD', events, 'MAXLEN', '~', ARGV[a + 1], ARGV[a] .. '-*',
  unpack(ARGV, a + 3))
if type(added) == 'table' and added.err then
  local top = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
  if not top[1] then return redis.error_reply(added.err) end
  redis.call('XADD', events, 'MAXLEN', '~', ARGV[a + 1], string.match(top[1][1], '^(%d+)') .. '-*',
    unpack(ARGV, a + 3))
end
redis.call('EXPIRE', events, ARGV[a + 2])
"#
        )
    };
}

/// [`TokenStore::rotate_family`] of a family kept beside its user, in one step: KEYS = the family,
/// the user, the user's event stream (one slot). Checks the family (`check_family_lua!`), then that
/// the user is the family's, active, and its fence (`sessions_valid_after`) not after the family's
/// login; appends the `refresh` event (ARGV[5] on: first, as the one write that could refuse);
/// advances (`advance_family_lua!`). The key's TTL stays as the login set it (the session's
/// absolute end): one command less on the hot path. Any failed check returns nil having changed
/// nothing. The reply is the values [`rotated_from_reply`] reads, in its order, rather than whole
/// hashes: Redis converts and the client parses each value, and this is the refresh's hot path.
const ROTATE: &str = concat!(
    check_family_lua!(),
    r#"local u = redis.call('HMGET', KEYS[2], 'id', 'active', 'sessions_valid_after', 'username', 'password_hash',
  'created_at')
if u[1] ~= f[5] or u[2] ~= '1' or tonumber(f[6]) < tonumber(u[3] or '0') then
  return false
end
"#,
    append_event_lua!("3", "5"),
    advance_family_lua!(),
    "return {generation, f[6], f[4], token_expires_at, ARGV[2], f[7], f[8], u[4], u[5], u[6]}\n"
);

/// The swap alone, for families in the legacy layout (their own slot): [`RedisStore::rotate_legacy`].
/// Their TTL follows their token (ARGV[5]: how long the record outlives it), as that version set it.
/// Returns the whole updated hash.
const ADVANCE: &str = concat!(
    check_family_lua!(),
    advance_family_lua!(),
    "redis.call('EXPIREAT', KEYS[1], string.format('%.0f', tonumber(token_expires_at) + tonumber(ARGV[5])))\n",
    "return redis.call('HGETALL', KEYS[1])\n"
);

/// [`TokenStore::create_family`]: KEYS = the family, its user, the user's family index (one slot).
/// Writes the family's fields (ARGV[6] on) with its TTL (EXPIREAT ARGV[4]) and indexes it by its
/// absolute end (ARGV[3]), dropping index entries past their end and keeping the index alive as
/// long as its last family. A family whose login (ARGV[2]) is before the user's fence is written
/// revoked (reason ARGV[5]): a "logout everywhere" that raced the login wins.
const CREATE_FAMILY: &str = r#"
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
local fence = tonumber(redis.call('HGET', KEYS[2], 'sessions_valid_after') or '0')
if tonumber(ARGV[2]) < fence then redis.call('HSET', KEYS[1], 'revoked', ARGV[5]) end
redis.call('EXPIREAT', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if last[2] then redis.call('EXPIREAT', KEYS[3], last[2]) end
return 1
"#;

/// First reason wins; a missing family is not revoked.
const REVOKE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'revoked', ARGV[1])
return 1
"#;

/// [`TokenStore::record_event`]: KEYS[1] is the stream.
const APPEND_EVENT: &str = concat!(append_event_lua!("1", "1"), "return 1\n");

/// Raises the user's fence (`sessions_valid_after`) to ARGV[1] unless it is already later.
const RAISE_FENCE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local fence = tonumber(redis.call('HGET', KEYS[1], 'sessions_valid_after') or '0')
if tonumber(ARGV[1]) > fence then redis.call('HSET', KEYS[1], 'sessions_valid_after', ARGV[1]) end
return 1
"#;

const SET_ACTIVE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'active', ARGV[1])
return 1
"#;

/// Deletes a key only while it still holds the given value (a username claimed by this user).
const RELEASE_NAME: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// Removes a family whose refresh token has ended (it never ends after the family itself).
const PURGE_FAMILY: &str = r#"
local t = redis.call('HGET', KEYS[1], 'token_expires_at')
if t and tonumber(t) <= tonumber(ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// A [`TokenStore`] on Redis (7.0 or later), shared by any number of `reauth-server` instances.
///
/// Layout (`P` is the key prefix, `reauth:` by default). Every key's hash tag is the entity it
/// belongs to, so each atomic step touches one slot and the layout works on Redis Cluster. A
/// session (family) lives beside its user, under the user's hash tag: its id is
/// `<user id>.<random>` ([`super::family_id_for`]), so the id alone names the key.
///
/// | key | type | TTL |
/// |---|---|---|
/// | `P{u:<user id>}:session:<random>` | hash: the [`Family`] `<user id>.<random>` | the session's absolute end + 1 h, set at login |
/// | `P{<family id>}:family` | hash: a [`Family`] with a legacy id (no dot), started before sessions moved beside their users | token end + 1 h, re-set at each rotation |
/// | `P{u:<user id>}:user` | hash: the [`User`], and its fence `sessions_valid_after` | none: accounts end only when deleted |
/// | `P{n:<username>}:user-id` | string: the user id (unique names via `SET NX`) | none, as the user |
/// | `P{u:<user id>}:families` | sorted set: family ids by absolute end | the last family's end |
/// | `P{u:<user id>}:events` | stream, capped at ~1000 | 90 days after the last event |
/// | `P{audit}:anonymous` | stream of failed logins of unknown names, capped at ~10 000 | 90 days |
/// | `P{keys:<root kid>}:set` | hash: key id → `kind active_at created_at sealed` ([`KeyStore`]) | none |
/// | `P{c:<nonce>}:challenge` | string: a wallet challenge as JSON (`SET NX`, taken with `GETDEL`) | its expiry |
/// | `P{revocations}` | sorted set: revocations by time, each trimmed once its access tokens are dead | none |
///
/// A refresh is one Lua script (one round trip) on the family, its user and the user's event
/// stream, all in the user's slot: the compare-and-swap, the user check (exists, active, fence) and
/// the `refresh` audit event together or not at all. A login is one script on the family, the user
/// (its fence) and the user's index. The periodic purge removes a session once its refresh token
/// has ended; the TTL is the bound when no purge runs.
///
/// A family in the legacy layout is in a slot of its own: its refresh takes four steps (read, user
/// check, swap, event), not atomic with its event. Such families were started before the upgrade:
/// unused, they end within one refresh-token lifetime, in use at their absolute end at the latest.
///
/// Revocation and user activation are each one script on one key. Operations spanning a user's
/// families (revoke all, list, delete a user) walk the user's index and act per family, each step
/// atomic on its own.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    scripts: &'static Scripts,
}

struct Scripts {
    rotate: Script,
    advance: Script,
    create_family: Script,
    revoke: Script,
    append_event: Script,
    set_active: Script,
    raise_fence: Script,
    release_name: Script,
    purge_family: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        rotate: Script::new(ROTATE),
        advance: Script::new(ADVANCE),
        create_family: Script::new(CREATE_FAMILY),
        revoke: Script::new(REVOKE),
        append_event: Script::new(APPEND_EVENT),
        set_active: Script::new(SET_ACTIVE),
        raise_fence: Script::new(RAISE_FENCE),
        release_name: Script::new(RELEASE_NAME),
        purge_family: Script::new(PURGE_FAMILY),
    })
}

impl RedisStore {
    /// Connects to a `redis://` (or `rediss://`, `redis+unix://`) URL with the default key prefix.
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        Self::open(url, "reauth:").await
    }

    /// Connects with keys under `prefix` (several deployments, or tests, sharing one Redis). The
    /// prefix must not contain `{`, which would change the keys' hash slots.
    pub async fn open(url: &str, prefix: &str) -> StoreResult<Self> {
        let client = redis::Client::open(url).map_err(StoreError::unavailable)?;
        // Short, bounded waits: a request must turn into a 503 within the store deadline, and the
        // manager keeps reconnecting in the background on the next calls after a failed attempt.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_with_config(client, config).await.map_err(StoreError::unavailable)?;
        Ok(Self { connection, prefix: prefix.to_owned(), scripts: scripts() })
    }

    /// The one place that decides where a family lives: beside its user when its id names the
    /// user (`<user id>.<random>`), else in the legacy layout under its own hash tag.
    fn family_key(&self, family_id: &str) -> String {
        match split_family_id(family_id) {
            Some((user_id, random)) => format!("{}{{u:{user_id}}}:session:{random}", self.prefix),
            None => format!("{}{{{family_id}}}:family", self.prefix),
        }
    }

    /// The keys of a co-located family's refresh, in [`ROTATE`]'s order: family, user, events.
    fn rotation_keys(&self, family_id: &str, user_id: &str) -> [String; 3] {
        [self.family_key(family_id), self.user_key(user_id), self.user_events_key(user_id)]
    }

    fn user_key(&self, user_id: &str) -> String {
        format!("{}{{u:{user_id}}}:user", self.prefix)
    }

    fn user_families_key(&self, user_id: &str) -> String {
        format!("{}{{u:{user_id}}}:families", self.prefix)
    }

    fn user_events_key(&self, user_id: &str) -> String {
        format!("{}{{u:{user_id}}}:events", self.prefix)
    }

    fn name_key(&self, username: &str) -> String {
        format!("{}{{n:{username}}}:user-id", self.prefix)
    }

    fn revocations_key(&self) -> String {
        format!("{}{{revocations}}", self.prefix)
    }

    fn anonymous_events_key(&self) -> String {
        format!("{}{{audit}}:anonymous", self.prefix)
    }

    fn conn(&self) -> ConnectionManager {
        // A handle on the same multiplexed connection: cloning is cheap and lets calls pipeline.
        self.connection.clone()
    }

    async fn family_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        self.conn().zrange(self.user_families_key(user_id), 0, -1).await.map_err(StoreError::unavailable)
    }

    /// One `SCAN` step over the keys matching `pattern`: the next cursor (0 at the end) and keys.
    async fn scan_step(&self, pattern: &str, cursor: u64) -> StoreResult<(u64, Vec<String>)> {
        redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_BATCH)
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)
    }

    /// Removes those of the given families whose refresh token has ended: one pipelined read for
    /// the batch, then one atomic check-and-delete per dead family (it may have rotated meanwhile).
    async fn purge_families(&self, keys: &[String], now: UnixTime) -> StoreResult<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut read = redis::pipe();
        for key in keys {
            read.hget(key, "token_expires_at");
        }
        let ends: Vec<Option<i64>> = read.query_async(&mut self.conn()).await.map_err(StoreError::unavailable)?;
        let mut removed = 0;
        for (key, end) in keys.iter().zip(ends) {
            if end.is_some_and(|end| end <= now) {
                let deleted: u64 = self
                    .scripts
                    .purge_family
                    .key(key)
                    .arg(now)
                    .invoke_async(&mut self.conn())
                    .await
                    .map_err(StoreError::unavailable)?;
                removed += deleted;
            }
        }
        Ok(removed)
    }

    /// Runs an [`evalsha`] command of `script`, loading the script first if this Redis does not
    /// have it yet (a new or restarted server).
    async fn run_script<T: redis::FromRedisValue>(&self, script: &Script, command: &redis::Cmd) -> StoreResult<T> {
        self.loading_scripts_once(&[script], |mut conn| async move { command.query_async(&mut conn).await }).await
    }

    /// [`Self::run_script`] for a pipeline of [`evalsha`] commands of `scripts` (and others).
    async fn run_scripts<T: redis::FromRedisValue>(
        &self,
        scripts: &[&Script],
        pipeline: &redis::Pipeline,
    ) -> StoreResult<T> {
        self.loading_scripts_once(scripts, |mut conn| async move { pipeline.query_async(&mut conn).await }).await
    }

    /// Sends with `send`; when Redis does not know one of `scripts`, loads them all and sends once
    /// more. What is sent must be safe to repeat: a pipeline may have run up to the unknown script.
    async fn loading_scripts_once<T, Sent>(
        &self,
        scripts: &[&Script],
        send: impl Fn(ConnectionManager) -> Sent,
    ) -> StoreResult<T>
    where
        Sent: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match send(self.conn()).await {
            Err(error) if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                for script in scripts {
                    script.load_async(&mut self.conn()).await.map_err(StoreError::unavailable)?;
                }
                send(self.conn()).await
            }
            result => result,
        }
        .map_err(StoreError::unavailable)
    }

    /// [`TokenStore::rotate_family`] of a family in the legacy layout, whose key is in another slot
    /// than its user's: read, user check, swap, event, each atomic on its own but not together (the
    /// event could be lost to a fault between the swap and the append). Only families started
    /// before sessions moved beside their users take this path; unused, they end within one
    /// refresh-token lifetime of the upgrade, in use at their absolute end at the latest. Their
    /// fence was checked when they were created (indexed).
    async fn rotate_legacy(&self, rotation: &Rotation) -> StoreResult<Option<Rotated>> {
        let Some(family) = self.family(&rotation.family_id).await? else { return Ok(None) };
        let user = match self.user_by_id(&family.user_id).await? {
            Some(user) if user.active => user,
            _ => return Ok(None),
        };
        let mut advance = evalsha(&self.scripts.advance, &[self.family_key(&rotation.family_id)]);
        rotation_args(&mut advance, rotation);
        advance.arg(KEEP_DEAD_FAMILY_SECS);
        let updated: Option<HashMap<String, String>> = self.run_script(&self.scripts.advance, &advance).await?;
        let Some(family) = updated.map(|map| family_from_hash(&rotation.family_id, map)).transpose()? else {
            return Ok(None);
        };
        self.record_event(&rotation.event(&family.user_id)).await?;
        Ok(Some(Rotated { family, user }))
    }

    /// Removes events older than `before_ms` (stream ids are event times) from the given streams.
    async fn trim_events(&self, keys: &[String], before_ms: i64) -> StoreResult<u64> {
        if keys.is_empty() {
            return Ok(0); // Redis refuses an empty pipeline
        }
        let mut trim = redis::pipe();
        for key in keys {
            trim.cmd("XTRIM").arg(key).arg("MINID").arg(before_ms);
        }
        let trimmed: Vec<u64> = trim.query_async(&mut self.conn()).await.map_err(StoreError::unavailable)?;
        Ok(trimmed.iter().sum())
    }
}

/// A stored hash that does not read back as the record it should be: the store is not ours or was
/// edited by hand. Reported as unavailable rather than guessed around.
#[derive(Debug, thiserror::Error)]
#[error("malformed {what} record in Redis: field {field:?}")]
struct Malformed {
    what: &'static str,
    field: &'static str,
}

struct Fields {
    what: &'static str,
    map: HashMap<String, String>,
}

impl Fields {
    fn text(&mut self, field: &'static str) -> StoreResult<String> {
        self.map.remove(field).ok_or(StoreError::unavailable(Malformed { what: self.what, field }))
    }

    fn optional(&mut self, field: &'static str) -> Option<String> {
        self.map.remove(field)
    }

    fn number(&mut self, field: &'static str) -> StoreResult<i64> {
        self.text(field)?.parse().map_err(|_| StoreError::unavailable(Malformed { what: self.what, field }))
    }
}

fn family_from_hash(id: &str, map: HashMap<String, String>) -> StoreResult<Family> {
    let mut fields = Fields { what: "family", map };
    Ok(Family {
        id: id.to_owned(),
        user_id: fields.text("user_id")?,
        generation: fields.number("generation")? as u64,
        created_at: fields.number("created_at")?,
        expires_at: fields.number("expires_at")?,
        token_expires_at: fields.number("token_expires_at")?,
        rotated_at: fields.number("rotated_at")?,
        last_used_at: fields.number("last_used_at")?,
        user_agent: fields.optional("user_agent"),
        client_ip: fields.optional("client_ip"),
        revoked: fields.optional("revoked").as_deref().map(RevokeReason::from_stored),
    })
}

fn user_from_hash(map: HashMap<String, String>) -> StoreResult<Option<User>> {
    if map.is_empty() {
        return Ok(None);
    }
    let mut fields = Fields { what: "user", map };
    Ok(Some(User {
        id: fields.text("id")?,
        username: fields.text("username")?,
        password_hash: fields.text("password_hash")?,
        active: fields.text("active")? == "1",
        created_at: fields.number("created_at")?,
    }))
}

fn event_from_entry(user_id: &str, map: HashMap<String, String>) -> StoreResult<AuditEvent> {
    let mut fields = Fields { what: "audit event", map };
    let kind = fields.text("kind")?;
    Ok(AuditEvent {
        kind: AuditKind::parse(&kind)
            .ok_or(StoreError::unavailable(Malformed { what: "audit event", field: "kind" }))?,
        user_id: Some(user_id.to_owned()),
        session_id: fields.optional("session_id"),
        at: fields.number("at")?,
        client_ip: fields.optional("client_ip"),
        user_agent: fields.optional("user_agent"),
        detail: fields.optional("detail"),
    })
}

/// A successful [`ROTATE`]'s reply: the family's generation, created_at, expires_at,
/// token_expires_at, rotated_at (also its last use), user_agent, client_ip, then its user's
/// username, password_hash and created_at (the user checked active, with the id in the family id).
fn rotated_from_reply(family_id: &str, user_id: &str, reply: Vec<Option<String>>) -> StoreResult<Rotated> {
    let malformed = |field| StoreError::unavailable(Malformed { what: "rotation reply", field });
    let Ok(
        [generation, created_at, expires_at, token_expires_at, rotated_at, user_agent, client_ip, username, password_hash, user_created_at],
    ) = <[Option<String>; 10]>::try_from(reply)
    else {
        return Err(malformed("length"));
    };
    let text = |value: Option<String>, field| value.ok_or(malformed(field));
    let number = |value: Option<String>, field| text(value, field)?.parse::<i64>().map_err(|_| malformed(field));
    let rotated_at = number(rotated_at, "rotated_at")?;
    let family = Family {
        id: family_id.to_owned(),
        user_id: user_id.to_owned(),
        generation: number(generation, "generation")? as u64,
        created_at: number(created_at, "created_at")?,
        expires_at: number(expires_at, "expires_at")?,
        token_expires_at: number(token_expires_at, "token_expires_at")?,
        rotated_at,
        last_used_at: rotated_at,
        user_agent,
        client_ip,
        revoked: None,
    };
    let user = User {
        id: user_id.to_owned(),
        username: text(username, "username")?,
        password_hash: text(password_hash, "password_hash")?,
        active: true,
        created_at: number(user_created_at, "user created_at")?,
    };
    Ok(Rotated { family, user })
}

/// The user id and random part of a family id made by [`super::family_id_for`]; `None` for a legacy
/// id (16 random bytes, no dot). The random part never holds a dot, so the last one separates them.
fn split_family_id(family_id: &str) -> Option<(&str, &str)> {
    family_id.rsplit_once('.')
}

/// A new family whose id does not start with its user's id: it could not live beside its user.
#[derive(Debug, thiserror::Error)]
#[error("family id {family_id:?} does not start with its user's id (store::family_id_for makes family ids)")]
struct FamilyIdNotOfItsUser {
    family_id: String,
}

/// A revocation as a member of the `{revocations}` sorted set: its fields, unit-separated.
fn revocation_member(kind: &str, subject: &str, issued_before: UnixTime, at: UnixTime, expires_at: UnixTime) -> String {
    format!("{kind}\u{1f}{subject}\u{1f}{issued_before}\u{1f}{at}\u{1f}{expires_at}")
}

/// `EVALSHA` of `script` on `keys`; the caller adds the arguments. Written straight into one
/// command, where `Script::key`/`arg` would collect each in an allocation of its own and copy them
/// again: this is the refresh's hot path ([`RedisStore::run_script`] runs it).
fn evalsha<K: AsRef<str>>(script: &Script, keys: &[K]) -> redis::Cmd {
    let mut command = redis::cmd("EVALSHA");
    command.arg(script.get_hash()).arg(keys.len());
    for key in keys {
        command.arg(key.as_ref());
    }
    command
}

/// ARGV[1..=4] of [`ROTATE`] and [`ADVANCE`]: the generation presented, now, the new token's end
/// and the next generation, each in the decimal form the scripts store and compare.
fn rotation_args(command: &mut redis::Cmd, rotation: &Rotation) {
    let next_generation = rotation.expected_generation + 1;
    command.arg(rotation.expected_generation).arg(rotation.now).arg(rotation.token_expires_at).arg(next_generation);
}

/// The ARGV of the event-appending scripts: time in ms, cap, TTL, then the event's fields.
fn event_args(command: &mut redis::Cmd, event: &AuditEvent, cap: usize) {
    command.arg(event.at.saturating_mul(1000)).arg(cap).arg(EVENT_STREAM_TTL_SECS);
    command.arg("kind").arg(event.kind.as_str()).arg("at").arg(event.at);
    let optional = [
        ("session_id", &event.session_id),
        ("client_ip", &event.client_ip),
        ("user_agent", &event.user_agent),
        ("detail", &event.detail),
    ];
    for (field, value) in optional {
        if let Some(value) = value {
            command.arg(field).arg(value);
        }
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let mut conn = self.conn();
        let name_key = self.name_key(&user.username);
        // The name is claimed first: of two registrations of one name, exactly one gets past here.
        let claimed: bool = redis::cmd("SET")
            .arg(&name_key)
            .arg(&user.id)
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await
            .map_err(StoreError::unavailable)?
            .is_some();
        if !claimed {
            return Err(StoreError::Conflict);
        }
        let written: redis::RedisResult<()> = conn
            .hset_multiple(
                self.user_key(&user.id),
                &[
                    ("id", user.id.as_str()),
                    ("username", user.username.as_str()),
                    ("password_hash", user.password_hash.as_str()),
                    ("active", if user.active { "1" } else { "0" }),
                    ("created_at", user.created_at.to_string().as_str()),
                ],
            )
            .await;
        if let Err(error) = written {
            // Give the name back so a retry can succeed; if this fails too, the name stays taken
            // by a user that does not exist, which only blocks that name.
            let _: Result<i64, _> =
                self.scripts.release_name.key(&name_key).arg(&user.id).invoke_async(&mut conn).await;
            return Err(StoreError::unavailable(error));
        }
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let user_id: Option<String> =
            self.conn().get(self.name_key(username)).await.map_err(StoreError::unavailable)?;
        match user_id {
            Some(user_id) => self.user_by_id(&user_id).await,
            None => Ok(None),
        }
    }

    async fn user_by_id(&self, user_id: &str) -> StoreResult<Option<User>> {
        let map: HashMap<String, String> =
            self.conn().hgetall(self.user_key(user_id)).await.map_err(StoreError::unavailable)?;
        user_from_hash(map)
    }

    async fn set_user_active(&self, user_id: &str, active: bool) -> StoreResult<bool> {
        let changed: i64 = self
            .scripts
            .set_active
            .key(self.user_key(user_id))
            .arg(if active { "1" } else { "0" })
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)?;
        Ok(changed == 1)
    }

    async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
        let mut conn = self.conn();
        let user_key = self.user_key(user_id);
        let username: Option<String> = conn.hget(&user_key, "username").await.map_err(StoreError::unavailable)?;
        let Some(username) = username else { return Ok(false) };
        let family_ids = self.family_ids_of(user_id).await?;
        // The user goes first: from then on every refresh of their families finds no active user.
        let deleted: i64 = conn
            .del(&[user_key, self.user_families_key(user_id), self.user_events_key(user_id)])
            .await
            .map_err(StoreError::unavailable)?;
        let _: i64 = self
            .scripts
            .release_name
            .key(self.name_key(&username))
            .arg(user_id)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::unavailable)?;
        let mut families = redis::pipe();
        for family_id in &family_ids {
            families.del(self.family_key(family_id)).ignore();
        }
        families.query_async::<()>(&mut conn).await.map_err(StoreError::unavailable)?;
        Ok(deleted > 0)
    }

    /// Needs an id made by [`super::family_id_for`] (the user's id first), which keeps the family
    /// beside its user: the hash, its TTL, the index entry and the fence check are one script.
    async fn create_family(&self, family: &NewFamily) -> StoreResult<()> {
        if split_family_id(&family.id).is_none_or(|(user_id, _)| user_id != family.user_id) {
            return Err(StoreError::unavailable(FamilyIdNotOfItsUser { family_id: family.id.clone() }));
        }
        let token_expires_at = family.token_expires_at.min(family.expires_at);
        let keys =
            [self.family_key(&family.id), self.user_key(&family.user_id), self.user_families_key(&family.user_id)];
        let mut create = evalsha(&self.scripts.create_family, &keys);
        create
            .arg(&family.id)
            .arg(family.created_at)
            .arg(family.expires_at)
            .arg(family.expires_at + KEEP_DEAD_FAMILY_SECS)
            .arg(RevokeReason::Revoked.as_str());
        let fields = [
            ("user_id", Some(family.user_id.clone())),
            ("generation", Some("0".to_owned())),
            ("created_at", Some(family.created_at.to_string())),
            ("expires_at", Some(family.expires_at.to_string())),
            ("token_expires_at", Some(token_expires_at.to_string())),
            ("rotated_at", Some(family.created_at.to_string())),
            ("last_used_at", Some(family.created_at.to_string())),
            ("user_agent", family.user_agent.clone()),
            ("client_ip", family.client_ip.clone()),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                create.arg(field).arg(value);
            }
        }
        let _: i64 = self.run_script(&self.scripts.create_family, &create).await?;
        Ok(())
    }

    async fn family(&self, family_id: &str) -> StoreResult<Option<Family>> {
        let map: HashMap<String, String> =
            self.conn().hgetall(self.family_key(family_id)).await.map_err(StoreError::unavailable)?;
        if map.is_empty() {
            return Ok(None);
        }
        family_from_hash(family_id, map).map(Some)
    }

    async fn rotate_family(&self, rotation: &Rotation) -> StoreResult<Option<Rotated>> {
        let Some((user_id, _)) = split_family_id(&rotation.family_id) else {
            return self.rotate_legacy(rotation).await;
        };
        let mut rotate = evalsha(&self.scripts.rotate, &self.rotation_keys(&rotation.family_id, user_id));
        rotation_args(&mut rotate, rotation);
        event_args(&mut rotate, &rotation.event(user_id), EVENTS_PER_USER);
        let reply: Option<Vec<Option<String>>> = self.run_script(&self.scripts.rotate, &rotate).await?;
        reply.map(|reply| rotated_from_reply(&rotation.family_id, user_id, reply)).transpose()
    }

    async fn revoke_family(&self, family_id: &str, reason: RevokeReason) -> StoreResult<bool> {
        let revoked: i64 = self
            .scripts
            .revoke
            .key(self.family_key(family_id))
            .arg(reason.as_str())
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)?;
        Ok(revoked == 1)
    }

    /// Two round trips whatever the number of sessions: the fence, then the list of sessions in one
    /// pipeline (a login that raced it is in the list, or finds the fence and is written revoked),
    /// then every revocation in another. Both are safe to repeat, as a reload of the scripts may.
    async fn end_user_sessions(&self, user_id: &str, valid_after: UnixTime, reason: RevokeReason) -> StoreResult<u64> {
        let mut raise_fence = evalsha(&self.scripts.raise_fence, &[self.user_key(user_id)]);
        raise_fence.arg(valid_after);
        let mut fence_then_list = redis::pipe();
        fence_then_list.add_command(raise_fence).ignore().zrange(self.user_families_key(user_id), 0, -1);
        let (family_ids,): (Vec<String>,) = self.run_scripts(&[&self.scripts.raise_fence], &fence_then_list).await?;
        if family_ids.is_empty() {
            return Ok(0); // Redis refuses an empty pipeline
        }
        let mut revoke_each = redis::pipe();
        for family_id in &family_ids {
            let mut revoke = evalsha(&self.scripts.revoke, &[self.family_key(family_id)]);
            revoke.arg(reason.as_str());
            revoke_each.add_command(revoke);
        }
        let revoked: Vec<i64> = self.run_scripts(&[&self.scripts.revoke], &revoke_each).await?;
        Ok(revoked.into_iter().filter(|&revoked| revoked == 1).count() as u64)
    }

    async fn live_families(&self, user_id: &str, now: UnixTime) -> StoreResult<Vec<Family>> {
        let family_ids = self.family_ids_of(user_id).await?;
        let mut read = redis::pipe();
        for family_id in &family_ids {
            read.hgetall(self.family_key(family_id));
        }
        let maps: Vec<HashMap<String, String>> =
            read.query_async(&mut self.conn()).await.map_err(StoreError::unavailable)?;
        let mut families = Vec::new();
        for (family_id, map) in family_ids.iter().zip(maps) {
            if map.is_empty() {
                continue; // purged, or its TTL ran out
            }
            let family = family_from_hash(family_id, map)?;
            if family.user_id == user_id && family.is_live(now) {
                families.push(family);
            }
        }
        families.sort_by(|a, b| b.last_used_at.cmp(&a.last_used_at).then_with(|| a.id.cmp(&b.id)));
        Ok(families)
    }

    async fn record_event(&self, event: &AuditEvent) -> StoreResult<()> {
        let (key, cap) = match &event.user_id {
            Some(user_id) => (self.user_events_key(user_id), EVENTS_PER_USER),
            None => (self.anonymous_events_key(), ANONYMOUS_EVENTS),
        };
        let mut append = evalsha(&self.scripts.append_event, &[&key]);
        event_args(&mut append, event, cap);
        let _: i64 = self.run_script(&self.scripts.append_event, &append).await?;
        Ok(())
    }

    async fn record_revocation(&self, revocation: &Revocation) -> StoreResult<()> {
        let (kind, subject, issued_before) = revocation.kind_and_subject();
        let member = revocation_member(kind, subject, issued_before, revocation.at, revocation.expires_at);
        // Entries recorded more than one access-token lifetime before this one are dead: trim them.
        let lifetime = revocation.expires_at - revocation.at;
        redis::pipe()
            .atomic()
            .zadd(self.revocations_key(), member, revocation.at)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(self.revocations_key())
            .arg("-inf")
            .arg(format!("({}", revocation.at - lifetime))
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)
    }

    async fn revocations_since(&self, since: UnixTime) -> StoreResult<Vec<Revocation>> {
        let members: Vec<String> =
            self.conn().zrangebyscore(self.revocations_key(), since, "+inf").await.map_err(StoreError::unavailable)?;
        Ok(members
            .iter()
            .filter_map(|member| {
                let mut parts = member.split('\u{1f}');
                let (kind, subject) = (parts.next()?, parts.next()?.to_owned());
                let mut number = || parts.next()?.parse::<i64>().ok();
                let (issued_before, at, expires_at) = (number()?, number()?, number()?);
                Revocation::from_parts(kind, subject, issued_before, at, expires_at)
            })
            .collect())
    }

    async fn recent_events(&self, user_id: &str, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XREVRANGE")
            .arg(self.user_events_key(user_id))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)?;
        entries.into_iter().map(|(_, fields)| event_from_entry(user_id, fields)).collect()
    }

    fn key_store(&self) -> Option<&dyn KeyStore> {
        Some(self)
    }
}

#[async_trait]
impl Maintenance for RedisStore {
    /// Redis expires families and event streams by itself (TTLs); this removes dead state earlier.
    /// It walks this store's keys with `SCAN`, so on Redis Cluster it only sees the node connected
    /// to, and the TTLs do the rest.
    async fn purge_expired(&self, now: UnixTime, events_before: UnixTime) -> StoreResult<u64> {
        let before_ms = events_before.saturating_mul(1000);
        let mut removed = self.trim_events(&[self.anonymous_events_key()], before_ms).await?;
        let dead: Vec<String> = self
            .revocations_since(i64::MIN)
            .await?
            .into_iter()
            .filter(|revocation| revocation.expires_at <= now)
            .map(|revocation| {
                let (kind, subject, issued_before) = revocation.kind_and_subject();
                revocation_member(kind, subject, issued_before, revocation.at, revocation.expires_at)
            })
            .collect();
        if !dead.is_empty() {
            let gone: u64 = self.conn().zrem(self.revocations_key(), &dead).await.map_err(StoreError::unavailable)?;
            removed += gone;
        }
        let patterns = [
            (format!("{}{{u:*}}:session:*", self.prefix), true),
            (format!("{}{{*}}:family", self.prefix), true), // the legacy layout
            (format!("{}{{u:*}}:events", self.prefix), false),
        ];
        for (pattern, is_family) in patterns {
            let mut cursor = 0;
            loop {
                let (next, keys) = self.scan_step(&pattern, cursor).await?;
                if is_family {
                    removed += self.purge_families(&keys, now).await?;
                } else {
                    removed += self.trim_events(&keys, before_ms).await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(removed)
    }
}

#[async_trait]
impl KeyStore for RedisStore {
    async fn add_key(&self, key: &StoredKey) -> StoreResult<()> {
        use base64::Engine as _;
        let sealed = base64::engine::general_purpose::STANDARD.encode(&key.sealed);
        let value = format!("{} {} {} {sealed}", key.kind.as_str(), key.active_at, key.created_at);
        let _: bool = self
            .conn()
            .hset_nx(format!("{}{{keys:{}}}:set", self.prefix, key.root), &key.id, value)
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    async fn keys_sealed_by(&self, root: &str) -> StoreResult<Vec<StoredKey>> {
        use base64::Engine as _;
        let fields: HashMap<String, String> = self
            .conn()
            .hgetall(format!("{}{{keys:{root}}}:set", self.prefix))
            .await
            .map_err(StoreError::unavailable)?;
        fields
            .into_iter()
            .map(|(id, value)| {
                let mut parts = value.split(' ');
                let kind = parts.next().and_then(KeyKind::parse);
                let active_at = parts.next().and_then(|text| text.parse().ok());
                let created_at = parts.next().and_then(|text| text.parse().ok());
                let sealed = parts.next().and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok());
                match (kind, active_at, created_at, sealed) {
                    (Some(kind), Some(active_at), Some(created_at), Some(sealed)) => {
                        Ok(StoredKey { id, root: root.to_owned(), kind, created_at, active_at, sealed })
                    }
                    _ => Err(StoreError::unavailable(Malformed { what: "key", field: "value" })),
                }
            })
            .collect()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredChallenge {
    account: String,
    message: String,
    expires_at: UnixTime,
}

impl RedisStore {
    fn challenge_key(&self, nonce: &str) -> String {
        format!("{}{{c:{nonce}}}:challenge", self.prefix)
    }
}

/// Each challenge is one key expiring with the challenge itself, so Redis forgets expired ones on
/// its own, and `GETDEL` hands a challenge to exactly one of concurrent takers.
#[async_trait]
impl ChallengeStore for RedisStore {
    async fn put_challenge(&self, challenge: &Challenge, _now: UnixTime) -> StoreResult<()> {
        let stored = StoredChallenge {
            account: challenge.account.clone(),
            message: challenge.message.clone(),
            expires_at: challenge.expires_at,
        };
        let value = serde_json::to_string(&stored).map_err(StoreError::unavailable)?;
        let written: Option<String> = redis::cmd("SET")
            .arg(self.challenge_key(&challenge.nonce))
            .arg(value)
            .arg("NX")
            .arg("EXAT")
            .arg(challenge.expires_at.max(1))
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)?;
        written.map(drop).ok_or(StoreError::Conflict)
    }

    async fn take_challenge(&self, nonce: &str, now: UnixTime) -> StoreResult<Option<Challenge>> {
        let value: Option<String> = redis::cmd("GETDEL")
            .arg(self.challenge_key(nonce))
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)?;
        let Some(value) = value else { return Ok(None) };
        let stored: StoredChallenge = serde_json::from_str(&value).map_err(StoreError::unavailable)?;
        let challenge = Challenge {
            nonce: nonce.to_owned(),
            account: stored.account,
            message: stored.message,
            expires_at: stored.expires_at,
        };
        Ok(Some(challenge).filter(|challenge| challenge.expires_at > now))
    }
}

/// A store on `REAUTH_TEST_REDIS_URL` under a prefix of its own, so tests run in parallel on one
/// server; `None` (the case skips, loudly) when the variable is unset.
#[cfg(test)]
async fn test_store() -> Option<RedisStore> {
    let url = crate::store::conformance::server_url("REAUTH_TEST_REDIS_URL")?;
    let prefix = format!("test-{}:", crate::tokens::random_id().replace(['-', '_'], ""));
    Some(RedisStore::open(&url, &prefix).await.expect("connect to REAUTH_TEST_REDIS_URL"))
}

#[cfg(test)]
crate::conformance_tests!(redis_store_tests, optional test_store());

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::conformance::{login_event, rotation, user};
    use crate::store::family_id_for;
    use crate::time::unix_now;
    use crate::tokens::random_id;

    fn new_family(user_id: &str, id: String, now: UnixTime) -> NewFamily {
        NewFamily {
            id,
            user_id: user_id.to_owned(),
            created_at: now,
            expires_at: now + 3600,
            token_expires_at: now + 600,
            user_agent: None,
            client_ip: None,
        }
    }

    /// The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag, modulo 16384.
    fn cluster_slot(key: &str) -> u16 {
        let tagged = key
            .find('{')
            .and_then(|open| key[open + 1..].find('}').map(|close| &key[open + 1..open + 1 + close]))
            .filter(|tag| !tag.is_empty())
            .unwrap_or(key);
        let mut crc: u16 = 0;
        for byte in tagged.bytes() {
            crc ^= u16::from(byte) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            }
        }
        crc % 16_384
    }

    #[test]
    fn cluster_slot_is_the_one_redis_computes() {
        // `CLUSTER KEYSLOT` answers of a cluster-enabled server, and the examples of the Cluster spec.
        assert_eq!(cluster_slot("123456789"), 0x31c3, "the CRC16 check value");
        assert_eq!(cluster_slot("foo"), 12_182);
        assert_eq!(cluster_slot("somekey"), 11_058);
        assert_eq!(cluster_slot("{user1000}.following"), cluster_slot("{user1000}.followers"));
        assert_ne!(cluster_slot("{}a"), cluster_slot("{}b"), "an empty tag hashes the whole key");
    }

    /// A refresh's script and a login's script each touch keys of one slot, as Redis Cluster
    /// requires of a script; and they are the keys the rotation really wrote.
    #[tokio::test]
    async fn a_rotation_and_a_login_each_stay_in_one_cluster_slot() {
        let Some(store) = test_store().await else { return };
        let owner = user("slotted");
        store.create_user(&owner).await.unwrap();
        let now = unix_now();
        let family = new_family(&owner.id, family_id_for(&owner.id), now);
        store.create_family(&family).await.unwrap();
        assert!(store.rotate_family(&rotation(&family.id, 0, now, now + 600)).await.unwrap().is_some());

        let keys = store.rotation_keys(&family.id, &owner.id);
        let login_keys = [keys[0].clone(), keys[1].clone(), store.user_families_key(&owner.id)];
        let slot = cluster_slot(&keys[0]);
        for key in keys.iter().chain(&login_keys) {
            assert_eq!(cluster_slot(key), slot, "{key} is in another slot than {}", keys[0]);
            let exists: bool = store.conn().exists(key).await.unwrap();
            assert!(exists, "{key} was not written");
        }
        assert!(keys[0].contains(&format!("{{u:{}}}:session:", owner.id)), "{}", keys[0]);
    }

    /// A Redis that lost its script cache (restarted) gets the script again: shown with a script
    /// it has never seen, rather than `SCRIPT FLUSH`, which would disturb the tests running beside.
    #[tokio::test]
    async fn a_script_unknown_to_redis_is_loaded_and_run() {
        let Some(store) = test_store().await else { return };
        let script = Script::new(&format!("-- {}\nreturn KEYS[1] .. ARGV[1]", random_id()));
        let mut command = evalsha(&script, &["key"]);
        command.arg("+arg");
        for attempt in ["unknown", "cached"] {
            let reply: String = store.run_script(&script, &command).await.unwrap();
            assert_eq!(reply, "key+arg", "{attempt}");
        }
    }

    /// The same for a pipeline (what ends a user's sessions sends): every script is loaded and the
    /// whole pipeline sent again.
    #[tokio::test]
    async fn a_pipeline_of_scripts_unknown_to_redis_is_loaded_and_run() {
        let Some(store) = test_store().await else { return };
        let [first, second] = [0, 1].map(|n| Script::new(&format!("-- {} {n}\nreturn ARGV[1] .. '{n}'", random_id())));
        let mut pipeline = redis::pipe();
        for script in [&first, &second, &first] {
            let mut command = evalsha(script, &[] as &[&str]);
            command.arg("script");
            pipeline.add_command(command);
        }
        for attempt in ["unknown", "cached"] {
            let replies: Vec<String> = store.run_scripts(&[&first, &second], &pipeline).await.unwrap();
            assert_eq!(replies, ["script0", "script1", "script0"], "{attempt}");
        }
    }

    /// An instance whose clock is behind appends after the stream's last event, under that event's
    /// time: nothing is refused, and the stream stays in order.
    #[tokio::test]
    async fn an_event_older_than_the_last_one_is_appended_after_it() {
        let Some(store) = test_store().await else { return };
        let owner = user("skewed");
        let now = unix_now();
        for (at, detail) in [(now, "first"), (now - 10, "behind"), (now + 1, "later")] {
            store.record_event(&login_event(&owner.id, at, Some(detail))).await.unwrap();
        }
        let details: Vec<_> = store.recent_events(&owner.id, 10).await.unwrap().into_iter().map(|e| e.detail).collect();
        assert_eq!(details, [Some("later".into()), Some("behind".into()), Some("first".into())]);
        let ids: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
            .arg(store.user_events_key(&owner.id))
            .arg("-")
            .arg("+")
            .query_async(&mut store.conn())
            .await
            .unwrap();
        let times: Vec<&str> = ids.iter().map(|(id, _)| id.split('-').next().unwrap()).collect();
        let ms = |at: UnixTime| (at * 1000).to_string();
        assert_eq!(times, [ms(now), ms(now), ms(now + 1)], "the late event under the time of the one before");
    }

    /// A family started before sessions moved beside their users, written as that version wrote it.
    async fn legacy_family(store: &RedisStore, owner: &User, created_at: UnixTime, token_ttl: i64) -> String {
        let id = random_id();
        let token_expires_at = created_at + token_ttl;
        let key = format!("{}{{{id}}}:family", store.prefix);
        let fields = [
            ("user_id", owner.id.clone()),
            ("generation", "0".to_owned()),
            ("created_at", created_at.to_string()),
            ("expires_at", (created_at + 86_400).to_string()),
            ("token_expires_at", token_expires_at.to_string()),
            ("rotated_at", created_at.to_string()),
            ("last_used_at", created_at.to_string()),
            ("user_agent", "legacy".to_owned()),
        ];
        redis::pipe()
            .atomic()
            .hset_multiple(&key, &fields)
            .ignore()
            .expire_at(&key, token_expires_at + KEEP_DEAD_FAMILY_SECS)
            .ignore()
            .zadd(store.user_families_key(&owner.id), &id, created_at + 86_400)
            .ignore()
            .query_async::<()>(&mut store.conn())
            .await
            .unwrap();
        id
    }

    #[tokio::test]
    async fn a_family_in_the_legacy_layout_still_rotates_is_listed_revoked_and_purged() {
        let Some(store) = test_store().await else { return };
        let owner = user("legacy");
        store.create_user(&owner).await.unwrap();
        let now = unix_now();
        let (rotating, expired, other) = (
            legacy_family(&store, &owner, now - 10, 3600).await,
            legacy_family(&store, &owner, now - 100, 50).await,
            legacy_family(&store, &owner, now - 10, 3600).await,
        );
        let current = new_family(&owner.id, family_id_for(&owner.id), now);
        store.create_family(&current).await.unwrap();

        let refresh = rotation(&rotating, 0, now, now + 600);
        let rotated = store.rotate_family(&refresh).await.unwrap().unwrap();
        assert_eq!((rotated.family.generation, rotated.family.token_expires_at), (1, now + 600));
        assert_eq!(rotated.user, owner);
        assert_eq!(store.recent_events(&owner.id, 10).await.unwrap(), [refresh.event(&owner.id)]);
        assert!(store.rotate_family(&refresh).await.unwrap().is_none(), "stale generation");

        let mut live: Vec<String> =
            store.live_families(&owner.id, now).await.unwrap().into_iter().map(|f| f.id).collect();
        live.sort();
        let mut expected = vec![rotating.clone(), other.clone(), current.id.clone()];
        expected.sort();
        assert_eq!(live, expected, "both layouts listed, the expired one left out");

        assert!(store.revoke_family(&rotating, RevokeReason::Logout).await.unwrap());
        assert_eq!(store.family(&rotating).await.unwrap().unwrap().revoked, Some(RevokeReason::Logout));
        assert!(store.rotate_family(&rotation(&rotating, 1, now, now + 600)).await.unwrap().is_none(), "revoked");
        assert_eq!(
            store.end_user_sessions(&owner.id, now + 1, RevokeReason::Revoked).await.unwrap(),
            3,
            "other, expired, current"
        );
        assert_eq!(store.family(&other).await.unwrap().unwrap().revoked, Some(RevokeReason::Revoked));

        assert_eq!(store.purge_expired(now, 0).await.unwrap(), 1, "the expired legacy family");
        assert!(store.family(&expired).await.unwrap().is_none());
        assert!(store.family(&rotating).await.unwrap().is_some(), "revoked, its token not yet ended");
        assert_eq!(store.purge_expired(now + 3600, 0).await.unwrap(), 3, "every family of both layouts, ended");
        for id in [&rotating, &other, &current.id] {
            assert!(store.family(id).await.unwrap().is_none(), "{id}");
        }
    }

    #[tokio::test]
    async fn deleting_a_user_removes_families_of_both_layouts() {
        let Some(store) = test_store().await else { return };
        let owner = user("leaving");
        store.create_user(&owner).await.unwrap();
        let now = unix_now();
        let legacy = legacy_family(&store, &owner, now, 3600).await;
        let current = new_family(&owner.id, family_id_for(&owner.id), now);
        store.create_family(&current).await.unwrap();
        assert!(store.delete_user(&owner.id).await.unwrap());
        for id in [&legacy, &current.id] {
            assert!(store.family(id).await.unwrap().is_none(), "{id}");
        }
    }

    #[tokio::test]
    async fn a_family_id_that_does_not_name_its_user_is_refused() {
        let Some(store) = test_store().await else { return };
        let (owner, stranger) = (user("owner"), user("stranger"));
        store.create_user(&owner).await.unwrap();
        let now = unix_now();
        for id in [random_id(), family_id_for(&stranger.id)] {
            let family = new_family(&owner.id, id.clone(), now);
            assert!(matches!(store.create_family(&family).await, Err(StoreError::Unavailable(_))), "{id}");
            assert!(store.family(&id).await.unwrap().is_none(), "{id}");
        }
    }
}
