//! Reading configuration sections out of the parsed [`Json`] tree, with the
//! field path in every error.
//!
//! A section's reader takes a [`Value`] (one JSON value and its path),
//! opens it as an object with the names of the fields it knows, and reads
//! each field with the typed readers. Every error names the field and says
//! what was found and what is expected, in the words serde uses
//! (`invalid type: string "1", expected usize`, ``unknown field `proxy`,
//! expected one of `cidrs`, `scheme`, `proxy_protocol` ``). A section reads
//! like this:
//!
//! ```ignore
//! const FIELDS: &[&str] = &["cidrs", "scheme", "proxy_protocol"];
//! let f = value.object(FIELDS)?;              // refuses unknown and duplicate fields
//! let cidrs = f.req("cidrs", Value::strings)?; // missing → "missing field `cidrs`"
//! let scheme = f.opt("scheme", Value::string)?.unwrap_or_else(|| "https".into());
//! let proxy_protocol = f.opt("proxy_protocol", Value::bool)?.unwrap_or(false);
//! ```
//!
//! [`Fields::opt`] treats an absent field as `None` and hands `null` to the
//! reader (which refuses it: `invalid type: null, expected a boolean`);
//! [`Fields::opt_or_null`] is for `Option` settings where `null` means
//! unset. Enumerations are read with [`Value::variant`] from a table of
//! names.

use super::field::{err, ConfigError};
pub(crate) use super::json::Json;
use crate::text::quoted;

/// One JSON value of the configuration and the path that names it in
/// errors (`forwarded.tcp_load_balancers[0].scheme`).
pub(crate) struct Value<'a> {
    path: String,
    json: &'a Json,
}

impl<'a> Value<'a> {
    /// The whole document.
    pub(crate) fn top(json: &'a Json) -> Value<'a> {
        Value {
            path: String::new(),
            json,
        }
    }

    /// Where this value is, as errors name it.
    pub(crate) fn path(&self) -> &str {
        if self.path.is_empty() {
            "(top level)"
        } else {
            &self.path
        }
    }

    fn child(&self, name: &str, json: &'a Json) -> Value<'a> {
        let mut path = self.path.clone();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(name);
        Value { path, json }
    }

    /// An error about this value.
    pub(crate) fn error(&self, message: impl Into<String>) -> ConfigError {
        err(self.path(), message)
    }

    /// `invalid type: <what this is>, expected <expected>`.
    fn invalid_type(&self, expected: &str) -> ConfigError {
        self.error(format!(
            "invalid type: {}, expected {expected}",
            unexpected(self.json)
        ))
    }

    /// Whether the value is `null`.
    pub(crate) fn is_null(&self) -> bool {
        matches!(self.json, Json::Null)
    }

    /// A string.
    pub(crate) fn string(&self) -> Result<String, ConfigError> {
        match self.json {
            Json::Str(s) => Ok(s.clone()),
            _ => Err(self.invalid_type("a string")),
        }
    }

    /// `true` or `false`.
    pub(crate) fn bool(&self) -> Result<bool, ConfigError> {
        match self.json {
            Json::Bool(b) => Ok(*b),
            _ => Err(self.invalid_type("a boolean")),
        }
    }

    /// A non-negative integer.
    pub(crate) fn u64(&self) -> Result<u64, ConfigError> {
        self.unsigned("u64")
    }

    /// A non-negative integer that fits the platform's `usize`.
    pub(crate) fn usize(&self) -> Result<usize, ConfigError> {
        let n = self.unsigned("usize")?;
        usize::try_from(n)
            .map_err(|_| self.error(format!("invalid value: integer `{n}`, expected usize")))
    }

    fn unsigned(&self, expected: &str) -> Result<u64, ConfigError> {
        match self.json {
            Json::Uint(n) => Ok(*n),
            Json::Neg(n) => {
                Err(self.error(format!("invalid value: integer `{n}`, expected {expected}")))
            }
            _ => Err(self.invalid_type(expected)),
        }
    }

    /// An array, each element with its path (`[0]`, `[1]`...).
    pub(crate) fn list(&self) -> Result<Vec<Value<'a>>, ConfigError> {
        let Json::Arr(items) = self.json else {
            return Err(self.invalid_type("a sequence"));
        };
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, json)| Value {
                path: format!("{}[{i}]", self.path),
                json,
            })
            .collect())
    }

    /// An array of strings.
    pub(crate) fn strings(&self) -> Result<Vec<String>, ConfigError> {
        self.list()?.iter().map(Value::string).collect()
    }

    /// An object's members in document order, each with its path
    /// (`idp.clients.<name>`), for maps whose keys are the operator's names.
    /// A name given twice is refused.
    pub(crate) fn entries(&self) -> Result<Vec<(&'a str, Value<'a>)>, ConfigError> {
        let Json::Obj(members) = self.json else {
            return Err(self.invalid_type("a map"));
        };
        let mut out: Vec<(&'a str, Value<'a>)> = Vec::with_capacity(members.len());
        for (name, json) in members {
            let v = self.child(name, json);
            if out.iter().any(|(seen, _)| seen == name) {
                return Err(v.error(format!(
                    "{} is given twice; give each name once",
                    quoted(name)
                )));
            }
            out.push((name, v));
        }
        Ok(out)
    }

    /// An object whose fields are `known`: an unknown field is refused
    /// naming it (and the known ones), and so is a field given twice.
    pub(crate) fn object(&self, known: &'static [&'static str]) -> Result<Fields<'a>, ConfigError> {
        let Json::Obj(members) = self.json else {
            return Err(self.invalid_type("a JSON object"));
        };
        for (i, (name, _)) in members.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(err(
                    self.child(name, &Json::Null).path,
                    format!("unknown field `{name}`, {}", expected_one_of(known)),
                ));
            }
            if members.iter().take(i).any(|(seen, _)| seen == name) {
                return Err(self.error(format!("duplicate field `{name}`")));
            }
        }
        Ok(Fields {
            at: Value {
                path: self.path.clone(),
                json: self.json,
            },
            members,
        })
    }

    /// A string that must be one of `variants` (name, value).
    pub(crate) fn variant<T: Copy>(&self, variants: &[(&str, T)]) -> Result<T, ConfigError> {
        let Json::Str(s) = self.json else {
            return Err(self.invalid_type("a string"));
        };
        match variants.iter().find(|(name, _)| name == s) {
            Some((_, v)) => Ok(*v),
            None => {
                let names: Vec<&str> = variants.iter().map(|(n, _)| *n).collect();
                Err(self.error(format!(
                    "unknown variant `{s}`, {}",
                    expected_one_of(&names)
                )))
            }
        }
    }
}

/// The fields of an object, checked against the names a section knows.
pub(crate) struct Fields<'a> {
    at: Value<'a>,
    members: &'a [(String, Json)],
}

impl<'a> Fields<'a> {
    /// The field `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<Value<'a>> {
        self.members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(n, json)| self.at.child(n, json))
    }

    /// The field read with `read`, `None` when absent (`null` goes to
    /// `read`, which refuses it unless it reads nullable values).
    pub(crate) fn opt<T>(
        &self,
        name: &str,
        read: impl FnOnce(&Value<'a>) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        self.get(name).map(|v| read(&v)).transpose()
    }

    /// The field read with `read`, `None` when absent or `null`.
    pub(crate) fn opt_or_null<T>(
        &self,
        name: &str,
        read: impl FnOnce(&Value<'a>) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(name) {
            Some(v) if !v.is_null() => read(&v).map(Some),
            _ => Ok(None),
        }
    }

    /// The field read with `read`; absent is `missing field `name``.
    pub(crate) fn req<T>(
        &self,
        name: &str,
        read: impl FnOnce(&Value<'a>) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            Some(v) => read(&v),
            None => Err(self.at.error(format!("missing field `{name}`"))),
        }
    }
}

/// serde's wording for a list of choices: `` expected `a` ``,
/// `` expected `a` or `b` ``, `` expected one of `a`, `b`, `c` ``.
fn expected_one_of(names: &[&str]) -> String {
    let tick = |n: &str| format!("`{n}`");
    match names {
        [] => "there are no fields".to_string(),
        [one] => format!("expected {}", tick(one)),
        [a, b] => format!("expected {} or {}", tick(a), tick(b)),
        _ => {
            let all: Vec<String> = names.iter().map(|n| tick(n)).collect();
            format!("expected one of {}", all.join(", "))
        }
    }
}

/// What a value is, in serde's words (`string "1"`, ``integer `-1` ``,
/// `sequence`, `map`).
fn unexpected(json: &Json) -> String {
    match json {
        Json::Null => "null".to_string(),
        Json::Bool(b) => format!("boolean `{b}`"),
        Json::Uint(n) => format!("integer `{n}`"),
        Json::Neg(n) => format!("integer `{n}`"),
        Json::Float => "floating point number".to_string(),
        Json::Str(s) => format!("string {}", quoted(s)),
        Json::Arr(_) => "sequence".to_string(),
        Json::Obj(_) => "map".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str, known: &'static [&'static str]) -> Result<(), ConfigError> {
        let tree = super::super::json::parse(json.as_bytes())?;
        Value::top(&tree).object(known).map(|_| ())
    }

    #[test]
    fn unknown_and_duplicate_fields_are_refused_naming_them() {
        let e = read(r#"{"a": 1, "c": 2}"#, &["a", "b"]).unwrap_err();
        assert_eq!(e.field, "c");
        assert_eq!(e.message, "unknown field `c`, expected `a` or `b`");
        let e = read(r#"{"a": 1, "a": 2}"#, &["a", "b"]).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("(top level)", "duplicate field `a`")
        );
        let e = read(r#"[]"#, &["a"]).unwrap_err();
        assert_eq!(e.message, "invalid type: sequence, expected a JSON object");
    }

    #[test]
    fn syntax_errors_name_where_the_text_broke_off() {
        let e = read(r#"{"a": {"b": [1, "#, &["a"]).unwrap_err();
        assert_eq!(e.field, "a.b[1]");
        assert!(e.message.starts_with("EOF while parsing"), "{e}");
        let e = read(r#"{"a": 1} }"#, &["a"]).unwrap_err();
        assert_eq!(e.field, "(top level)");
        assert!(e.message.contains("trailing characters"), "{e}");
    }
}
