//! A JSON value as received from a server: its text, parsed later by whoever
//! needs it, into what they need.
//!
//! A monitor's initial contents or a large update, parsed into a
//! `serde_json::Value` tree, takes several times the memory of the rows it
//! describes, and it was the agent's peak. Kept as text, an update is parsed
//! once, straight into replica rows ([`super::wire`]); small replies are
//! read as a `Value` where that is simpler ([`Json::value`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// A JSON value, kept as its (valid, compact or not) text.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Json(Box<RawValue>);

impl Json {
    /// The JSON `null`.
    pub fn null() -> Json {
        Json::from_value(&Value::Null)
    }

    /// The text of `v`.
    pub fn from_value(v: &Value) -> Json {
        // Serialising a `Value` cannot fail, nor give invalid JSON.
        Json(
            serde_json::value::to_raw_value(v)
                .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("valid JSON")),
        )
    }

    /// The text.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// Parsed into a `Value` (the text is valid JSON, so this cannot fail;
    /// `null` if it somehow did).
    pub fn value(&self) -> Value {
        serde_json::from_str(self.text()).unwrap_or(Value::Null)
    }

    /// Parsed into `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(self.text()).map_err(|e| e.to_string())
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        self.text().trim() == "null"
    }
}

impl From<Value> for Json {
    fn from(v: Value) -> Json {
        Json::from_value(&v)
    }
}

impl PartialEq for Json {
    /// Equal when the values are (not merely the texts).
    fn eq(&self, other: &Json) -> bool {
        self.text() == other.text() || self.value() == other.value()
    }
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl std::fmt::Debug for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 200;
        let t = self.text();
        if t.len() <= SHOWN {
            f.write_str(t)
        } else {
            let mut end = SHOWN;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            write!(f, "{}... ({} bytes)", &t[..end], t.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_text_and_compares_by_value() {
        let j: Json = serde_json::from_str(r#"{"a": [1, 2]}"#).unwrap();
        assert_eq!(j.text(), r#"{"a": [1, 2]}"#);
        assert_eq!(j, Json::from(json!({"a": [1, 2]})));
        assert_eq!(j.value(), json!({"a": [1, 2]}));
        assert_eq!(serde_json::to_string(&j).unwrap(), r#"{"a": [1, 2]}"#);
        assert!(Json::null().is_null());
        let long = Json::from(json!("x".repeat(500)));
        assert!(format!("{long:?}").ends_with("(502 bytes)"));
    }
}
