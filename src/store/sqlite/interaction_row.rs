//! How an interaction is laid out in the columns of the `interactions` table, and read back.
//!
//! Each field has its own column, so reading a customer's history copies text rather than
//! parsing JSON; only `identifiers` and `properties`, which have no fixed shape, are JSON.

use rusqlite::{Connection, Row, params};
use serde_json::Value;

use super::{Key, corrupt, key, sqlite, time};
use crate::model::{
    Channel, Direction, Identifier, Interaction, InteractionId, InteractionKind, InteractionStatus,
};
use crate::store::StoreError;

/// The columns [`read`] expects, in its order, for a table aliased `t`.
pub(super) const COLUMNS: &str = "t.id, t.occurred_at, t.updated_at, t.channel, t.source, \
     t.key, t.kind, t.direction, t.status, t.thread, t.in_reply_to, t.owner, t.subject, \
     t.text, t.outcome, t.closed_at, t.answered_at, t.identifiers, t.properties";

/// Writes `interaction` of the profile `profile` as a new row of `table`.
pub(super) fn insert(
    conn: &Connection,
    table: &str,
    profile: &Key,
    interaction: &Interaction,
) -> rusqlite::Result<()> {
    let nanos = |at: chrono::DateTime<chrono::Utc>| {
        at.timestamp_nanos_opt()
            .ok_or(rusqlite::Error::IntegralValueOutOfRange(0, at.timestamp()))
    };
    let identifiers: Vec<String> = interaction
        .identifiers
        .iter()
        .map(ToString::to_string)
        .collect();
    conn.prepare_cached(&format!(
        "INSERT INTO {table} (profile_id, occurred_at, id, updated_at, channel, source, key,
             kind, direction, status, thread, in_reply_to, owner, subject, text, outcome,
             closed_at, answered_at, identifiers, properties)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20)"
    ))?
    .execute(params![
        profile,
        nanos(interaction.occurred_at)?,
        key(interaction.id.as_uuid()),
        nanos(interaction.updated_at)?,
        interaction.channel.name(),
        interaction.source,
        interaction.key,
        kind_text(&interaction.kind)?,
        direction_name(interaction.direction),
        status_name(interaction.status),
        interaction.thread,
        interaction.in_reply_to.map(|id| key(id.as_uuid())),
        interaction.owner,
        interaction.subject,
        interaction.body,
        interaction.outcome,
        interaction.closed_at.map(nanos).transpose()?,
        interaction.answered_at.map(nanos).transpose()?,
        json(&identifiers)?,
        json(&interaction.properties)?,
    ])?;
    Ok(())
}

fn json(value: &impl serde::Serialize) -> rusqlite::Result<String> {
    serde_json::to_string(value)
        .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))
}

/// The interaction in the [`COLUMNS`] of `row`, starting at column `from`.
pub(super) fn read(row: &Row<'_>, from: usize) -> Result<Interaction, StoreError> {
    let text = |i: usize| row.get::<_, String>(from + i).map_err(sqlite);
    // Names and JSON are parsed where SQLite holds them, without a copy.
    let borrowed = |i: usize| -> Result<&str, StoreError> {
        row.get_ref(from + i)
            .map_err(sqlite)?
            .as_str()
            .map_err(|err| corrupt("interaction", err))
    };
    let optional = |i: usize| row.get::<_, Option<String>>(from + i).map_err(sqlite);
    let at = |i: usize| row.get::<_, i64>(from + i).map(time).map_err(sqlite);
    let optional_at = |i: usize| {
        row.get::<_, Option<i64>>(from + i)
            .map(|at| at.map(time))
            .map_err(sqlite)
    };
    let id: Key = row.get(from).map_err(sqlite)?;
    let in_reply_to: Option<Key> = row.get(from + 10).map_err(sqlite)?;
    let identifiers = serde_json::from_str::<Vec<std::borrow::Cow<'_, str>>>(borrowed(17)?)
        .map_err(|err| corrupt("interaction", err))?
        .iter()
        .map(|text| Identifier::from_canonical(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| corrupt("interaction", err))?;
    let properties = match serde_json::from_str(borrowed(18)?) {
        Ok(Value::Object(map)) => map,
        Ok(other) => return Err(corrupt("interaction", format!("properties are {other}"))),
        Err(err) => return Err(corrupt("interaction", err)),
    };
    Ok(Interaction {
        id: InteractionId::from_uuid(uuid::Uuid::from_bytes(id)),
        occurred_at: at(1)?,
        updated_at: at(2)?,
        channel: borrowed(3)?
            .parse::<Channel>()
            .map_err(|err| corrupt("channel", err))?,
        source: text(4)?,
        key: text(5)?,
        kind: kind(borrowed(6)?)?,
        direction: direction(borrowed(7)?)?,
        status: status(borrowed(8)?)?,
        thread: optional(9)?,
        in_reply_to: in_reply_to.map(|id| InteractionId::from_uuid(uuid::Uuid::from_bytes(id))),
        owner: optional(11)?,
        subject: optional(12)?,
        body: optional(13)?,
        outcome: optional(14)?,
        closed_at: optional_at(15)?,
        answered_at: optional_at(16)?,
        identifiers,
        properties,
    })
}

fn kind_text(kind: &InteractionKind) -> rusqlite::Result<String> {
    match serde_json::to_value(kind) {
        Ok(Value::String(name)) => Ok(name),
        Ok(other) => Ok(other.to_string()),
        Err(err) => Err(rusqlite::Error::ToSqlConversionFailure(Box::new(err))),
    }
}

/// The kind `kind_text` wrote: a built-in kind's name, or JSON for any other.
fn kind(text: &str) -> Result<InteractionKind, StoreError> {
    Ok(match text {
        "message" => InteractionKind::Message,
        "call" => InteractionKind::Call,
        "meeting" => InteractionKind::Meeting,
        "ticket" => InteractionKind::Ticket,
        "feedback" => InteractionKind::Feedback,
        json if json.starts_with('{') => {
            serde_json::from_str(json).map_err(|err| corrupt("interaction kind", err))?
        }
        other => serde_json::from_value(Value::String(other.to_owned()))
            .map_err(|err| corrupt("interaction kind", err))?,
    })
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

fn direction(name: &str) -> Result<Direction, StoreError> {
    match name {
        "inbound" => Ok(Direction::Inbound),
        "outbound" => Ok(Direction::Outbound),
        other => Err(corrupt("direction", other)),
    }
}

fn status_name(status: InteractionStatus) -> &'static str {
    match status {
        InteractionStatus::Open => "open",
        InteractionStatus::Pending => "pending",
        InteractionStatus::Closed => "closed",
    }
}

fn status(name: &str) -> Result<InteractionStatus, StoreError> {
    match name {
        "open" => Ok(InteractionStatus::Open),
        "pending" => Ok(InteractionStatus::Pending),
        "closed" => Ok(InteractionStatus::Closed),
        other => Err(corrupt("status", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IdentifierKind;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn round_trip(interaction: &Interaction) -> Interaction {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE interactions (profile_id BLOB, occurred_at INTEGER, id BLOB,
                 updated_at INTEGER, channel TEXT, source TEXT, key TEXT, kind TEXT,
                 direction TEXT, status TEXT, thread TEXT, in_reply_to BLOB, owner TEXT,
                 subject TEXT, text TEXT, outcome TEXT, closed_at INTEGER,
                 answered_at INTEGER, identifiers TEXT, properties TEXT)",
        )
        .unwrap();
        insert(&conn, "interactions", &[7; 16], interaction).unwrap();
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM interactions t"),
            [],
            |row| Ok(read(row, 0)),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn every_field_survives_the_columns() {
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(123_456_789);
        let asked = Interaction::builder("desk", Channel::Phone, Direction::Inbound)
            .key("call-1")
            .thread("case-1")
            .build()
            .unwrap();
        let full = Interaction::builder(
            "desk",
            Channel::other("kiosk").unwrap(),
            Direction::Outbound,
        )
        .key("call-2")
        .kind(InteractionKind::Other("visit".into()))
        .in_reply_to(&asked)
        .owner("agent.kim")
        .subject("Refund")
        .body("Line one\nline \"two\"")
        .status(InteractionStatus::Closed)
        .outcome("refunded")
        .occurred_at(at)
        .answered_at(at + chrono::Duration::seconds(20))
        .updated_at(at + chrono::Duration::minutes(5))
        .identifier(IdentifierKind::Email, "Ana@Example.com")
        .identifier(IdentifierKind::Phone, "+1 415 555 2671")
        .properties(json!({"priority": "high", "nested": {"n": [1, 2.5]}}))
        .build()
        .unwrap();
        assert_eq!(round_trip(&full), full);
        let bare = Interaction::builder("desk", Channel::Email, Direction::Inbound)
            .key("m")
            .occurred_at(at)
            .build()
            .unwrap();
        assert_eq!(round_trip(&bare), bare);
    }

    #[test]
    fn every_kind_and_channel_survives_the_columns() {
        let kinds = [
            InteractionKind::Message,
            InteractionKind::Call,
            InteractionKind::Meeting,
            InteractionKind::Ticket,
            InteractionKind::Feedback,
            InteractionKind::Other("call".into()),
            InteractionKind::Other("{odd}".into()),
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            for channel in [
                Channel::Web,
                Channel::Support,
                Channel::other("Kiosk").unwrap(),
            ] {
                let interaction = Interaction::builder("desk", channel, Direction::Inbound)
                    .key(&format!("k{i}"))
                    .kind(kind.clone())
                    .status(InteractionStatus::Pending)
                    .build()
                    .unwrap();
                assert_eq!(round_trip(&interaction), interaction);
            }
        }
    }
}
