//! Field access on parsed JSON objects that reports the dotted path of a bad field and what was
//! expected there.

use serde_json::{Map, Value};

use crate::records::InvalidRecord;

/// The field name used for errors about a whole line.
pub const WHOLE_LINE: &str = "(line)";

/// Parses one line as a JSON object.
pub fn parse_object(line: &str) -> Result<Map<String, Value>, InvalidRecord> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(InvalidRecord::new(
            WHOLE_LINE,
            format!("a JSON object, got {}", describe(&other)),
        )),
        Err(e) => Err(InvalidRecord::new(
            WHOLE_LINE,
            format!("a JSON object ({e})"),
        )),
    }
}

/// A short description of a value's type for error messages: `a number (3)`, `an array`...
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(_) => "a string".into(),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// An object being read, with its path for error messages.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Fields<'a> {
    /// Fields of `map`, found at `path` (empty for the top level).
    pub fn new(map: &'a Map<String, Value>, path: &'a str) -> Self {
        Fields { map, path }
    }

    /// The dotted path of `key` in this object.
    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The raw value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// The first of `keys` that is present, with its name.
    pub fn first_of(&self, keys: &[&'static str]) -> Option<(&'static str, &'a Value)> {
        keys.iter().find_map(|&k| self.map.get(k).map(|v| (k, v)))
    }

    /// An error at `key`.
    pub fn error(&self, key: &str, expected: impl Into<String>) -> InvalidRecord {
        InvalidRecord::new(self.path_of(key), expected)
    }

    /// A required string.
    pub fn str(&self, key: &str) -> Result<&'a str, InvalidRecord> {
        match self.map.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(self.error(key, format!("a string, got {}", describe(other)))),
            None => Err(self.error(key, "a string (the field is missing)")),
        }
    }

    /// An optional string; missing and null give `None`.
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, InvalidRecord> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => {
                Err(self.error(key, format!("a string or null, got {}", describe(other))))
            }
        }
    }

    /// An optional finite number; missing and null give `None`.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, InvalidRecord> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| self.error(key, format!("a finite number, got {n}"))),
            Some(other) => {
                Err(self.error(key, format!("a number or null, got {}", describe(other))))
            }
        }
    }

    /// An optional boolean; missing and null give `None`.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, InvalidRecord> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => {
                Err(self.error(key, format!("a boolean or null, got {}", describe(other))))
            }
        }
    }

    /// An optional non-negative integer that fits in `u32`; missing and null give `None`.
    pub fn opt_u32(&self, key: &str) -> Result<Option<u32>, InvalidRecord> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .map(Some)
                .ok_or_else(|| self.error(key, format!("a non-negative integer, got {n}"))),
            Some(other) => {
                Err(self.error(key, format!("an integer or null, got {}", describe(other))))
            }
        }
    }

    /// A required scalar written as text: a string as is, a number or boolean in its JSON form
    /// (label tables often hold numeric ids and labels).
    pub fn scalar_text(&self, key: &str) -> Result<String, InvalidRecord> {
        match self.map.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(Value::Bool(b)) => Ok(b.to_string()),
            Some(other) => {
                Err(self.error(key, format!("a string or number, got {}", describe(other))))
            }
            None => Err(self.error(key, "a string or number (the field is missing)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_path_and_the_type_found() {
        let map = parse_object(r#"{"a": 3, "b": "x", "c": null, "d": -1}"#).unwrap();
        let f = Fields::new(&map, "prompt.replies[2]");
        assert_eq!(f.str("b").unwrap(), "x");
        let err = f.str("a").unwrap_err();
        assert_eq!(err.field, "prompt.replies[2].a");
        assert!(err.expected.contains("a number (3)"), "{}", err.expected);
        assert_eq!(f.opt_str("c").unwrap(), None);
        assert_eq!(f.opt_u32("d").unwrap_err().field, "prompt.replies[2].d");
        assert_eq!(f.scalar_text("a").unwrap(), "3");
        assert!(f.str("zz").unwrap_err().expected.contains("missing"));
        assert_eq!(parse_object("[1]").unwrap_err().field, WHOLE_LINE);
        assert_eq!(parse_object("{").unwrap_err().field, WHOLE_LINE);
    }
}
