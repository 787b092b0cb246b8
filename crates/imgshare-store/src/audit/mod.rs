//! Audit reads over the log: the catalogue as it was at a past position or time, an image's
//! history with who did what, who could see and boot an image at a moment, the log as JSON
//! lines, and [`verify`], which checks the hash chain and that the stored read models are what
//! a replay of the log produces.
//!
//! Every function here only reads; [`verify`] replays into a private scratch database.

use crate::error::SqlResult as _;
use std::fmt;

use chrono::{DateTime, Utc};
use imgshare_core::{
    access, Actor, Aggregate, Image, ImageStatus, MemberStatus, Profile, Region, StreamId, Task,
    Visibility,
};
use imgshare_sql::{params, RowExt as _, Sql};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use uuid::Uuid;

use crate::db::StoreError;
use crate::error::EngineError;
use crate::fold::{decode, fold_streams, Loaded};
use crate::log::{self, RecordedEvent};

/// A point in the log: a position, or a time (meaning the last event recorded at or before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Up to and including this position.
    Position(i64),
    /// Up to the last event whose `recorded_at` is at or before this time.
    Time(DateTime<Utc>),
}

/// An `--at`/`--to` argument that is neither a position nor an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is neither a log position (a whole number) nor an RFC 3339 time")]
pub struct AsOfParseError(pub String);

impl AsOf {
    /// Reads `123` as a position and `2026-11-23T10:00:00Z` as a time.
    pub fn parse(text: &str) -> Result<Self, AsOfParseError> {
        if let Ok(position) = text.parse::<i64>() {
            return Ok(AsOf::Position(position));
        }
        DateTime::parse_from_rfc3339(text)
            .map(|time| AsOf::Time(time.with_timezone(&Utc)))
            .map_err(|_| AsOfParseError(text.to_owned()))
    }
}

impl fmt::Display for AsOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsOf::Position(position) => write!(f, "position {position}"),
            AsOf::Time(time) => write!(f, "{}", log::format_recorded_at(*time)),
        }
    }
}

/// The last position recorded at or before `time`; 0 if the log starts later.
///
/// `recorded_at` never decreases along the position, so this is one index lookup.
pub fn position_at<C: Sql + ?Sized>(conn: &C, time: DateTime<Utc>) -> Result<i64, StoreError> {
    let position: Option<i64> = conn
        .query_first(
            "SELECT MAX(position) FROM events WHERE recorded_at <= ?1",
            params![&log::format_recorded_at(time)],
            |row| row.get(0),
        )
        .sql()?
        .sql()?
        .flatten();
    Ok(position.unwrap_or(0))
}

/// The last position recorded strictly before `time`; 0 if there is none.
fn position_before<C: Sql + ?Sized>(conn: &C, time: DateTime<Utc>) -> Result<i64, StoreError> {
    let position: Option<i64> = conn
        .query_first(
            "SELECT MAX(position) FROM events WHERE recorded_at < ?1",
            params![&log::format_recorded_at(time)],
            |row| row.get(0),
        )
        .sql()?
        .sql()?
        .flatten();
    Ok(position.unwrap_or(0))
}

/// The position `as_of` stands for.
pub fn resolve<C: Sql + ?Sized>(conn: &C, as_of: AsOf) -> Result<i64, StoreError> {
    match as_of {
        AsOf::Position(position) => Ok(position.max(0)),
        AsOf::Time(time) => position_at(conn, time),
    }
}

/// A stream folded up to a position: its state as it was when the log's head was there.
pub fn state_as_of<C: Sql + ?Sized>(conn: &C,
    stream: StreamId,
    as_of: AsOf,
) -> Result<Loaded, EngineError> {
    let position = resolve(conn, as_of)?;
    let stream_id = stream.to_string();
    let mut state = Aggregate::empty(stream);
    let mut version = 0;
    for stored in log::read_stream_until(conn, &stream_id, position)? {
        state = fold(state, &stored)?;
        version = stored.version;
    }
    Ok(Loaded { state, version })
}

fn fold(state: Aggregate, stored: &RecordedEvent) -> Result<Aggregate, EngineError> {
    let event = decode(stored)?;
    state
        .apply(&event, stored.recorded_at)
        .map_err(|error| EngineError::CorruptStream {
            stream: stored.stream_id.clone(),
            version: stored.version,
            reason: error.message,
        })
}

/// Calls `each` with every stream's state as of `position` (streams with no event by then are
/// skipped), one stream at a time in stream id order, and with the position of that stream's
/// last event by then. Holds one aggregate in memory, however long the log.
pub fn for_each_state_as_of<C: Sql + ?Sized>(conn: &C,
    position: i64,
    each: impl FnMut(Aggregate, i64) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    fold_streams(conn, Some(position), each, &mut |_| {}).map(|_| ())
}

/// The whole catalogue at one point of the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalogue {
    /// The position it reflects.
    pub position: i64,
    /// Every image registered by then, deleted ones included, by id.
    pub images: Vec<Image>,
    /// Every task created by then, by id.
    pub tasks: Vec<Task>,
}

/// The catalogue as of a point, collected in memory; see [`for_each_state_as_of`] to stream it.
pub fn catalogue_as_of<C: Sql + ?Sized>(conn: &C, as_of: AsOf) -> Result<Catalogue, EngineError> {
    let position = resolve(conn, as_of)?;
    let mut catalogue = Catalogue {
        position,
        ..Catalogue::default()
    };
    for_each_state_as_of(conn, position, |state, _| {
        match state {
            Aggregate::Image(Some(image)) => catalogue.images.push(image),
            Aggregate::Task(Some(task)) => catalogue.tasks.push(task),
            Aggregate::Image(None) | Aggregate::Task(None) => {}
        }
        Ok(())
    })?;
    Ok(catalogue)
}

/// Who caused an event and where, from its `metadata`. Missing fields stay `None`: metadata is
/// context, and a log written by other tools may lack some of it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The acting caller.
    #[serde(default)]
    pub actor: Option<MetadataActor>,
    /// The region the request was made in.
    #[serde(default)]
    pub region: Option<String>,
    /// The request that caused the event.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The caller's own id of that request (`X-Openstack-Request-Id: req-<uuid>` as sent);
    /// absent from events of requests that sent none, and from every event written before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_request_id: Option<String>,
    /// The request chain the event belongs to.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// The command that produced the event.
    #[serde(default)]
    pub causation_id: Option<String>,
}

/// The actor named in an event's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MetadataActor {
    /// The account.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The user.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The roles the identity service gave.
    #[serde(default)]
    pub roles: Vec<String>,
    /// `tenant` or `operator`.
    #[serde(default)]
    pub kind: Option<String>,
}

impl EventMetadata {
    /// Reads the known fields; a malformed metadata object reads as empty rather than hiding
    /// the event from an audit.
    pub fn from_value(metadata: &Value) -> Self {
        serde_json::from_value(metadata.clone()).unwrap_or_default()
    }
}

/// One event of an image's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Global position.
    pub position: i64,
    /// Version within the stream.
    pub version: u64,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The stored type.
    pub event_type: String,
    /// The stored schema version (the event is shown upcast to the current one).
    pub schema_version: u32,
    /// The event's fields in the current schema.
    pub data: Value,
    /// Who, where, which request.
    #[serde(flatten)]
    pub metadata: EventMetadata,
}

/// Every event of the image's stream, oldest first, upcast to the current schema, with its
/// actor, region, request id and time. Empty for an unknown image.
pub fn history<C: Sql + ?Sized>(conn: &C, image_id: Uuid) -> Result<Vec<HistoryEntry>, EngineError> {
    log::read_stream(conn, &StreamId::Image(image_id).to_string())?
        .into_iter()
        .map(|stored| {
            let event = decode(&stored)?;
            Ok(HistoryEntry {
                position: stored.position,
                version: stored.version,
                recorded_at: stored.recorded_at,
                event_type: stored.event_type,
                schema_version: stored.schema_version,
                data: event.to_data(),
                metadata: EventMetadata::from_value(&stored.metadata),
            })
        })
        .collect()
}

/// Why an account could use an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum AccessReason {
    /// It owned the image.
    Owner,
    /// The image was public (or a provider base image).
    Public,
    /// The image was a community image.
    Community,
    /// It was a member, with this status.
    Member {
        /// The member's status then.
        member_status: MemberStatus,
    },
}

impl From<access::Relation> for AccessReason {
    fn from(relation: access::Relation) -> Self {
        match relation {
            access::Relation::Owner => AccessReason::Owner,
            access::Relation::Public => AccessReason::Public,
            access::Relation::Community => AccessReason::Community,
            access::Relation::Member(member_status) => AccessReason::Member { member_status },
        }
    }
}

/// One account's access to an image at a moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountAccess {
    /// The account.
    pub tenant_id: String,
    /// Why it could use the image; `None` if it could not (e.g. a member of an image whose
    /// visibility does not grant members access).
    pub why: Option<AccessReason>,
    /// Could it see the image (GET by id) in the image's region?
    pub can_see: bool,
    /// Could it boot a server from it in the image's region?
    pub can_boot: bool,
}

/// Who could see and boot an image at one point of the log, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessReport {
    /// The image.
    pub image_id: Uuid,
    /// The log position the answer is for.
    pub position: i64,
    /// False if the image was not registered by then.
    pub exists: bool,
    /// Its status then.
    pub status: Option<ImageStatus>,
    /// Its region (access is only ever in this region).
    pub region: Option<Region>,
    /// Its visibility then.
    pub visibility: Option<Visibility>,
    /// Its owner (`None` for provider base images).
    pub owner: Option<String>,
    /// Access that every account had (a public, community or base image); `None` if access
    /// depended on the account.
    pub every_account: Option<AccountAccess>,
    /// The owner and every member then, each with its access.
    pub accounts: Vec<AccountAccess>,
}

/// A tenant id no owner or member can have (the API refuses control characters in ids), so its
/// access is what any other account gets.
const ANY_OTHER_ACCOUNT: &str = "\u{0}any-other-account";

/// Which accounts could see and boot `image_id` at `as_of`, and why, by the rules of
/// [`imgshare_core::access`] applied to the image as it was then.
pub fn access_at<C: Sql + ?Sized>(conn: &C,
    profile: &Profile,
    image_id: Uuid,
    as_of: AsOf,
) -> Result<AccessReport, EngineError> {
    let position = resolve(conn, as_of)?;
    let loaded = state_as_of(conn, StreamId::Image(image_id), AsOf::Position(position))?;
    let Some(image) = loaded.state.as_image() else {
        return Ok(AccessReport {
            image_id,
            position,
            exists: false,
            status: None,
            region: None,
            visibility: None,
            owner: None,
            every_account: None,
            accounts: Vec::new(),
        });
    };
    let account = |tenant_id: &str| {
        let actor = Actor::tenant(tenant_id, "", &[]);
        AccountAccess {
            tenant_id: tenant_id.to_owned(),
            why: access::relation(profile, image, tenant_id).map(AccessReason::from),
            can_see: access::can_see(profile, image, &actor, &image.region),
            can_boot: access::can_boot(profile, image, tenant_id, &image.region),
        }
    };
    let everyone = account(ANY_OTHER_ACCOUNT);
    let every_account = everyone.why.is_some().then(|| AccountAccess {
        tenant_id: "*".to_owned(),
        ..everyone
    });
    let mut accounts: Vec<AccountAccess> =
        image.owner.as_deref().map(account).into_iter().collect();
    accounts.extend(image.members.keys().map(|member_id| account(member_id)));
    Ok(AccessReport {
        image_id,
        position,
        exists: true,
        status: Some(image.status),
        region: Some(image.region.clone()),
        visibility: Some(image.visibility),
        owner: image.owner.clone(),
        every_account,
        accounts,
    })
}

/// One line of `imgshare log`: an event with every stored column, so that the line can be
/// inserted back as it was (its hash still matching) and the chain verified again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// Global position.
    pub position: i64,
    /// The event id.
    pub event_id: Uuid,
    /// `image-<uuid>` or `task-<uuid>`.
    pub stream_id: String,
    /// Version within the stream.
    pub version: u64,
    /// Stored type.
    pub event_type: String,
    /// Stored schema version.
    pub schema_version: u32,
    /// The stored fields, as stored (not upcast).
    pub data: Value,
    /// The stored metadata.
    pub metadata: Value,
    /// The `recorded_at` column's exact text.
    pub recorded_at: String,
    /// The previous event's hash.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

impl From<RecordedEvent> for LogLine {
    fn from(stored: RecordedEvent) -> Self {
        LogLine {
            position: stored.position,
            event_id: stored.event_id,
            stream_id: stored.stream_id,
            version: stored.version,
            event_type: stored.event_type,
            schema_version: stored.schema_version,
            data: stored.data,
            metadata: stored.metadata,
            recorded_at: log::format_recorded_at(stored.recorded_at),
            prev_hash: stored.prev_hash,
            hash: stored.hash,
        }
    }
}

/// Which events [`for_each_logged`] passes on. Every filter given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only this stream (`image-<uuid>` or `task-<uuid>`).
    pub stream: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only events this account caused (the actor's tenant) or is named in (`owner`,
    /// `member_id`).
    pub account: Option<String>,
    /// Only events recorded at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events recorded at or before this time.
    pub until: Option<DateTime<Utc>>,
}

impl LogFilter {
    fn matches(&self, stored: &RecordedEvent) -> bool {
        let stream_ok = self.stream.as_ref().is_none_or(|s| *s == stored.stream_id);
        let type_ok = self
            .event_type
            .as_ref()
            .is_none_or(|t| *t == stored.event_type);
        stream_ok && type_ok && self.account.as_ref().is_none_or(|a| names(stored, a))
    }
}

fn names(stored: &RecordedEvent, account: &str) -> bool {
    let is = |value: Option<&Value>| value.and_then(Value::as_str) == Some(account);
    is(stored.metadata.pointer("/actor/tenant_id"))
        || is(stored.data.get("owner"))
        || is(stored.data.get("member_id"))
}

/// Calls `each` with every event that `filter` accepts, in position order, reading one row at
/// a time.
pub fn for_each_logged<C: Sql + ?Sized>(conn: &C,
    filter: &LogFilter,
    mut each: impl FnMut(RecordedEvent) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let from_exclusive = match filter.since {
        Some(since) => position_before(conn, since)?,
        None => 0,
    };
    let to_inclusive = match filter.until {
        Some(until) => Some(position_at(conn, until)?),
        None => None,
    };
    log::for_each_event(conn, from_exclusive, to_inclusive, |stored| {
        if filter.matches(&stored) {
            each(stored)?;
        }
        Ok(())
    })
}

// After the items `verify` shares with the time-travel reads.
mod verify;

pub use verify::{verify, Difference, VerifyReport};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;
    use chrono::TimeZone;

    #[test]
    fn as_of_reads_positions_and_rfc3339_times_only() {
        assert_eq!(AsOf::parse("42"), Ok(AsOf::Position(42)));
        assert_eq!(
            AsOf::parse("2026-11-23T10:00:00+01:00"),
            Ok(AsOf::Time(
                Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
            ))
        );
        for bad in ["", "yesterday", "2026-11-23", "4.5"] {
            assert!(AsOf::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_time_before_the_log_or_a_negative_position_is_position_zero() {
        let conn = db::open_in_memory().unwrap();
        let early = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(resolve(&conn, AsOf::Time(early)).unwrap(), 0);
        assert_eq!(resolve(&conn, AsOf::Position(-5)).unwrap(), 0);
    }
}
