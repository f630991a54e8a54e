//! The configuration's JSON as a tree: serde_json parses it, and this keeps
//! what checking a configuration needs that `serde_json::Value` drops:
//! object members in document order with duplicates kept (a field given
//! twice is refused by [`super::read`], never silently overwritten), and, for
//! a syntax error, the field path where the text broke off.
//!
//! One small `Deserialize` for one tree type, instead of derived code per
//! configuration type: the module stays small, and nothing here runs per
//! request.

use super::field::{err, ConfigError};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A non-negative integer.
    Uint(u64),
    /// A negative integer.
    Neg(i64),
    /// A number with a fraction or exponent, or beyond the 64-bit integers
    /// (no configuration value is one; kept only to be refused).
    Float,
    Str(String),
    Arr(Vec<Json>),
    /// Members in document order, duplicates kept.
    Obj(Vec<(String, Json)>),
}

/// Parses one JSON document (and nothing after it). A syntax error names
/// the path where it occurred (`forwarded.trusted_cidrs`; `(top level)`
/// outside any field) and carries serde_json's message with line and column.
pub(crate) fn parse(text: &[u8]) -> Result<Json, ConfigError> {
    let mut path = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(text);
    let parsed = Seed { path: &mut path }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| err(path_string(&path), e.to_string()))
}

/// One step into the tree: an object member or an array index.
enum Step {
    Field(String),
    Index(usize),
}

fn path_string(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Field(name) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(name);
            }
            Step::Index(i) => {
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
        }
    }
    if s.is_empty() {
        s.push_str("(top level)");
    }
    s
}

/// Deserializes one value, keeping `path` at the innermost step when it
/// fails (steps are popped only on success).
struct Seed<'p> {
    path: &'p mut Vec<Step>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Json;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Uint(n))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(u64::try_from(n).map_or(Json::Neg(n), Json::Uint))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
        Ok(Json::Float)
    }
    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::Str(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        loop {
            self.path.push(Step::Index(items.len()));
            match seq.next_element_seed(Seed { path: self.path })? {
                Some(v) => items.push(v),
                None => {
                    self.path.pop();
                    return Ok(Json::Arr(items));
                }
            }
            self.path.pop();
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            self.path.push(Step::Field(key));
            let v = map.next_value_seed(Seed { path: self.path })?;
            let Some(Step::Field(key)) = self.path.pop() else {
                return Err(de::Error::custom("lost track of the field path"));
            };
            members.push((key, v));
        }
        Ok(Json::Obj(members))
    }
}
