//! The writer's reading of an `XREADGROUP` reply, straight from `redis::Value`.
//!
//! redis-rs's `StreamReadReply` copies the whole reply once to try its first shape, then builds
//! a `HashMap<String, Value>` per entry (a `String` per field name, SipHash per field); the
//! writer looks up six known fields of each entry once. Here the entries' ids and field lists
//! are moved out of the reply, not copied, and a field is found by scanning the entry's six
//! pairs in place. This runs for every stored coupon.

use redis::aio::ConnectionLike;
use redis::streams::{StreamId, StreamReadOptions};
use redis::{FromRedisValue, ParsingError, RedisResult, Value};

use crate::issuing::wire::{EntryFields, value_text};

/// `XREADGROUP`: `ids[i]` is where to read `keys[i]` from. Not through `Cmd::query_async`, which
/// first rebuilds the whole reply, every entry and field, to look for server errors nested in
/// it (`Value::extract_error`): a read reply holds none; only the reply itself may be one.
pub async fn xreadgroup(
    conn: &mut impl ConnectionLike,
    keys: &[&str],
    ids: &[&str],
    opts: &StreamReadOptions,
) -> RedisResult<ReadReply> {
    let cmd = redis::Cmd::xread_options(keys, ids, opts);
    match conn.req_packed_command(&cmd).await? {
        Value::ServerError(e) => Err(e.into()),
        reply => Ok(ReadReply::from_redis_value(reply)?),
    }
}

/// One stream entry: its id and its fields, name and value alternating, as Redis sent them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub id: String,
    fields: Vec<Value>,
}

impl Entry {
    /// A field's text (a bulk or simple string, valid UTF-8), borrowed. Of two fields with the
    /// same name the last counts, as in redis-rs's map of an entry.
    pub fn text(&self, name: &str) -> Option<&str> {
        let (_, value) = self
            .pairs()
            .rev()
            .find(|(field, _)| bytes(field) == Some(name.as_bytes()))?;
        value_text(value)
    }

    /// Every field, name and value, in the order Redis sent them.
    pub fn pairs(&self) -> impl DoubleEndedIterator<Item = (&Value, &Value)> {
        self.fields.chunks_exact(2).map(|pair| (&pair[0], &pair[1]))
    }
}

/// The entry's fields are read as `issuing::wire` defines them (`coupon_from_entry`).
impl EntryFields for Entry {
    fn text(&self, name: &str) -> Option<&str> {
        Entry::text(self, name)
    }
}

/// `XAUTOCLAIM`'s entries come through redis-rs (a claim runs every `claim_idle / 2`, not per
/// coupon).
impl From<StreamId> for Entry {
    fn from(entry: StreamId) -> Self {
        let fields = entry
            .map
            .into_iter()
            .flat_map(|(name, value)| [Value::BulkString(name.into_bytes()), value])
            .collect();
        Self { id: entry.id, fields }
    }
}

/// An `XREADGROUP` reply: each stream that had entries, by key, with its entries in order.
/// A read that timed out (nil) has none.
#[derive(Debug, Default)]
pub struct ReadReply(pub Vec<(String, Vec<Entry>)>);

impl FromRedisValue for ReadReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        // RESP2: `[[key, entries], ...]`; RESP3: `{key: entries, ...}`.
        let streams: Vec<(Value, Value)> = match v {
            Value::Nil => return Ok(Self::default()),
            Value::Array(streams) => streams.into_iter().map(two).collect::<Result<_, _>>()?,
            Value::Map(streams) => streams,
            other => return Err(unexpected("a stream read reply", &other)),
        };
        streams
            .into_iter()
            .map(|(key, entries)| Ok((string(key)?, entries_of(entries)?)))
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// `[[id, [field, value, ...]], ...]`. An entry deleted while pending has a nil field list: it
/// is kept, with no fields, so that it is dead-lettered and acknowledged rather than read
/// again forever.
fn entries_of(v: Value) -> Result<Vec<Entry>, ParsingError> {
    let entries = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(entries) => entries,
        other => return Err(unexpected("a stream's entries", &other)),
    };
    entries
        .into_iter()
        .map(|entry| {
            let (id, fields) = two(entry)?;
            let fields = match fields {
                Value::Nil => Vec::new(),
                Value::Array(flat) if flat.len() % 2 == 0 => flat,
                Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                other => return Err(unexpected("an entry's fields", &other)),
            };
            Ok(Entry {
                id: string(id)?,
                fields,
            })
        })
        .collect()
}

/// The first two items of an array of at least two.
fn two(v: Value) -> Result<(Value, Value), ParsingError> {
    match v {
        Value::Array(items) if items.len() >= 2 => {
            let mut items = items.into_iter();
            Ok((items.next().unwrap_or_default(), items.next().unwrap_or_default()))
        }
        other => Err(unexpected("a pair", &other)),
    }
}

fn string(v: Value) -> Result<String, ParsingError> {
    match v {
        Value::BulkString(bytes) => Ok(String::from_utf8(bytes)?),
        Value::SimpleString(text) => Ok(text),
        other => Err(unexpected("a string", &other)),
    }
}

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

fn unexpected(what: &str, got: &Value) -> ParsingError {
    format!("expected {what}, got {got:?}").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![bulk(id), Value::Array(fields.iter().map(|f| bulk(f)).collect())])
    }

    #[test]
    fn reads_a_resp2_reply_in_order() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("s1"),
                Value::Array(vec![
                    entry("1-0", &["day", "2026-05-01", "seq", "1"]),
                    entry("2-0", &["seq", "2"]),
                ]),
            ]),
            Value::Array(vec![bulk("s2"), Value::Array(vec![entry("3-0", &[])])]),
        ]);
        let ReadReply(streams) = ReadReply::from_redis_value(reply).unwrap();
        assert_eq!(streams.len(), 2);
        let (key, entries) = &streams[0];
        assert_eq!(key, "s1");
        assert_eq!(
            entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["1-0", "2-0"]
        );
        assert_eq!(
            (entries[0].text("day"), entries[0].text("seq")),
            (Some("2026-05-01"), Some("1"))
        );
        assert_eq!(entries[1].text("day"), None);
        assert_eq!(streams[1].1[0].pairs().count(), 0);
    }

    #[test]
    fn reads_a_resp3_reply_a_timeout_and_a_deleted_entry() {
        let reply = Value::Map(vec![(
            bulk("s"),
            Value::Array(vec![Value::Array(vec![bulk("1-0"), Value::Nil])]),
        )]);
        let ReadReply(streams) = ReadReply::from_redis_value(reply).unwrap();
        assert_eq!(
            streams[0].1,
            vec![Entry {
                id: "1-0".into(),
                fields: vec![]
            }]
        );
        assert!(ReadReply::from_redis_value(Value::Nil).unwrap().0.is_empty());
        assert!(ReadReply::from_redis_value(Value::Int(3)).is_err());
    }

    #[test]
    fn the_last_of_two_equal_fields_counts_and_only_text_is_text() {
        let e = Entry {
            id: "1-0".into(),
            fields: vec![bulk("seq"), bulk("1"), bulk("seq"), bulk("2"), bulk("n"), Value::Int(3)],
        };
        assert_eq!(e.text("seq"), Some("2"));
        assert_eq!(e.text("n"), None);
    }

    #[test]
    fn a_claimed_entry_keeps_its_fields() {
        let claimed = StreamId {
            id: "1-0".into(),
            map: [("day".to_string(), bulk("2026-05-01"))].into_iter().collect(),
            ..Default::default()
        };
        let e = Entry::from(claimed);
        assert_eq!((e.id.as_str(), e.text("day")), ("1-0", Some("2026-05-01")));
    }
}
