//! Lenient JSON decoding, the way the gateway (ASP.NET Core web defaults) reads requests.
//!
//! Clients in the field send `streamID`, `PlaybackTime`, `PlaybackTimeNode` and `playbackTimeNode`
//! for the same properties (PROTOCOL.md §0, §3.4), and numbers as strings. Rather than sprinkling
//! aliases over every type, [`from_str`] wraps `serde_json` in a deserializer that matches struct
//! field names case-insensitively at every depth, and the `number_or_string` helpers accept
//! `2`, `2.0` and `"2.0"` alike. Errors keep the path of the offending field (`playbackTimeNode.speed`).

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Map, Value};
use std::fmt;

/// Why a JSON body was rejected: the field path (empty for the whole body) and serde's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct JsonError {
    /// Dotted path of the field that failed, e.g. `playbackTimeNode.speed`; empty for the body itself.
    pub path: String,
    /// What was wrong, in serde's words.
    pub reason: String,
}

impl JsonError {
    fn describe(&self) -> String {
        if self.path.is_empty() || self.path == "." {
            self.reason.clone()
        } else {
            format!("field `{}`: {}", self.path, self.reason)
        }
    }

    /// The path if there is one, for error bodies that name the field.
    pub fn field(&self) -> Option<&str> {
        (!self.path.is_empty() && self.path != ".").then_some(self.path.as_str())
    }
}

/// Parse `text` as JSON and decode it into `T`, matching field names case-insensitively.
pub fn from_str<T: de::DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    let value: Value = serde_json::from_str(text).map_err(|e| JsonError {
        path: String::new(),
        reason: format!("malformed JSON: {e}"),
    })?;
    from_value(value)
}

/// Decode an already parsed JSON value into `T`, matching field names case-insensitively.
pub fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T, JsonError> {
    serde_path_to_error::deserialize(CaseInsensitive(value)).map_err(|e| JsonError {
        path: e.path().to_string(),
        reason: e.into_inner().to_string(),
    })
}

/// A `serde_json::Value` whose objects, when read as structs, match field names case-insensitively.
struct CaseInsensitive(Value);

type JsonDeError = serde_json::Error;

impl<'de> Deserializer<'de> for CaseInsensitive {
    type Error = JsonDeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            Value::Object(map) => visitor.visit_map(Entries::new(map, None)),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(CaseInsensitive(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Entries::new(map, Some(fields))),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Entries::new(map, None)),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct identifier ignored_any
    }
}

struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = JsonDeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(CaseInsensitive(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries {
    entries: std::vec::IntoIter<(String, Value)>,
    pending: Option<Value>,
}

impl Entries {
    /// When the target is a struct, rename each key to the struct's spelling of it, ignoring case.
    /// An exact match wins over a case-insensitive one, so `{"speed":1,"Speed":2}` stays predictable.
    fn new(map: Map<String, Value>, fields: Option<&'static [&'static str]>) -> Self {
        let entries: Vec<(String, Value)> = map
            .into_iter()
            .map(|(key, value)| {
                let canonical = fields.and_then(|fields| {
                    if fields.contains(&key.as_str()) {
                        return None;
                    }
                    fields
                        .iter()
                        .find(|field| field.eq_ignore_ascii_case(&key))
                        .map(|field| (*field).to_owned())
                });
                (canonical.unwrap_or(key), value)
            })
            .collect();
        Entries {
            entries: entries.into_iter(),
            pending: None,
        }
    }
}

impl<'de> MapAccess<'de> for Entries {
    type Error = JsonDeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.pending = Some(value);
                let key: de::value::StringDeserializer<JsonDeError> = key.into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let value = self.pending.take().unwrap_or(Value::Null);
        seed.deserialize(CaseInsensitive(value))
    }
}

/// Deserialize an optional number that may arrive as a JSON number or a numeric string (`"2.0"`).
/// An empty string counts as absent, as an empty text field in a browser form does.
pub fn optional_number_or_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<f64>, D::Error> {
    struct NumberVisitor;
    impl<'de> Visitor<'de> for NumberVisitor {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number or a string holding a number")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let trimmed = v.trim();
            if trimmed.is_empty() {
                return Ok(None);
            }
            trimmed
                .parse::<f64>()
                .map(Some)
                .map_err(|_| E::custom(format!("`{v}` is not a number")))
        }
    }
    deserializer.deserialize_option(NumberVisitor)
}

/// Deserialize an optional boolean that may arrive as `true`, `"true"` or `"True"`.
pub fn optional_bool_or_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    struct BoolVisitor;
    impl<'de> Visitor<'de> for BoolVisitor {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                "" => Ok(None),
                _ => Err(E::custom(format!("`{v}` is not true or false"))),
            }
        }
    }
    deserializer.deserialize_option(BoolVisitor)
}

/// Accept a string or a list of strings (`urls` in RTCIceServer may be either).
pub fn one_or_many_strings<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Inner {
        playback_time: Option<String>,
        #[serde(default, deserialize_with = "optional_number_or_string")]
        speed: Option<f64>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Outer {
        stream_id: Option<String>,
        playback_time_node: Option<Inner>,
        #[serde(default)]
        list: Vec<Inner>,
    }

    #[test]
    fn keys_match_case_insensitively_at_every_depth() {
        let parsed: Outer = from_str(
            r#"{"STREAMID":"a","PlaybackTimeNode":{"PlaybackTime":"t","Speed":"2.0"},"List":[{"SPEED":3}]}"#,
        )
        .unwrap();
        assert_eq!(parsed.stream_id.as_deref(), Some("a"));
        let node = parsed.playback_time_node.unwrap();
        assert_eq!(node.playback_time.as_deref(), Some("t"));
        assert_eq!(node.speed, Some(2.0));
        assert_eq!(parsed.list[0].speed, Some(3.0));
    }

    #[test]
    fn errors_name_the_field() {
        let err = from_str::<Outer>(r#"{"playbackTimeNode":{"speed":"fast"}}"#).unwrap_err();
        assert_eq!(err.path, "playbackTimeNode.speed");
        assert!(err.reason.contains("not a number"), "{err}");
        let err = from_str::<Outer>("{not json").unwrap_err();
        assert!(err.reason.starts_with("malformed JSON"), "{err}");
        assert_eq!(err.field(), None);
    }

    #[test]
    fn empty_speed_string_is_absent() {
        let parsed: Inner = from_str(r#"{"speed":""}"#).unwrap();
        assert_eq!(parsed.speed, None);
    }
}
