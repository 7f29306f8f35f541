//! JSON-RPC 1.0 messages as OVSDB uses them (RFC 7047 §4).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// One message on an OVSDB connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request expecting a reply with the same id.
    Request {
        /// Method name.
        method: String,
        /// Parameters (an array).
        params: Value,
        /// Request id.
        id: Value,
    },
    /// A notification (no reply).
    Notify {
        /// Method name.
        method: String,
        /// Parameters (an array).
        params: Value,
    },
    /// A successful reply.
    Reply {
        /// The result.
        result: Value,
        /// The id of the request it answers.
        id: Value,
    },
    /// An error reply.
    Error {
        /// The error.
        error: Value,
        /// The id of the request it answers.
        id: Value,
    },
}

impl Message {
    /// Classifies a received JSON object.
    pub fn from_json(v: Value) -> Result<Message, String> {
        let Value::Object(mut o) = v else {
            return Err("JSON-RPC message is not an object".into());
        };
        let id = o.remove("id").unwrap_or(Value::Null);
        if let Some(method) = o.remove("method") {
            let method = method
                .as_str()
                .ok_or("JSON-RPC method is not a string")?
                .to_owned();
            let params = o.remove("params").unwrap_or(Value::Array(vec![]));
            return Ok(if id.is_null() {
                Message::Notify { method, params }
            } else {
                Message::Request { method, params, id }
            });
        }
        match (o.remove("result"), o.remove("error")) {
            (_, Some(error)) if !error.is_null() => Ok(Message::Error { error, id }),
            (Some(result), _) => Ok(Message::Reply { result, id }),
            _ => Err("JSON-RPC message has neither method, result nor error".into()),
        }
    }
}

/// The wire form, written straight from the borrowed parts: a transaction
/// of thousands of operations is not copied on its way to the socket.
impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(3))?;
        match self {
            Message::Request { method, params, id } => {
                m.serialize_entry("method", method)?;
                m.serialize_entry("params", params)?;
                m.serialize_entry("id", id)?;
            }
            Message::Notify { method, params } => {
                m.serialize_entry("method", method)?;
                m.serialize_entry("params", params)?;
                m.serialize_entry("id", &Value::Null)?;
            }
            Message::Reply { result, id } => {
                m.serialize_entry("result", result)?;
                m.serialize_entry("error", &Value::Null)?;
                m.serialize_entry("id", id)?;
            }
            Message::Error { error, id } => {
                m.serialize_entry("result", &Value::Null)?;
                m.serialize_entry("error", error)?;
                m.serialize_entry("id", id)?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_every_kind() {
        let r = Message::from_json(json!({"method": "echo", "params": [], "id": "echo"})).unwrap();
        assert!(matches!(r, Message::Request { ref method, .. } if method == "echo"));
        let n =
            Message::from_json(json!({"method": "update2", "params": [1, 2], "id": null})).unwrap();
        assert!(matches!(n, Message::Notify { .. }));
        let ok = Message::from_json(json!({"result": [1], "error": null, "id": 7})).unwrap();
        assert_eq!(
            ok,
            Message::Reply {
                result: json!([1]),
                id: json!(7)
            }
        );
        let e = Message::from_json(json!({"result": null, "error": "unknown method", "id": 8}))
            .unwrap();
        assert!(matches!(e, Message::Error { .. }));
        assert!(Message::from_json(json!([1])).is_err());
        assert!(Message::from_json(json!({"id": 1})).is_err());
    }

    #[test]
    fn round_trips() {
        let m = Message::Request {
            method: "transact".into(),
            params: json!(["Open_vSwitch"]),
            id: json!(3),
        };
        let wire = serde_json::to_value(&m).unwrap();
        assert_eq!(
            wire,
            json!({"method": "transact", "params": ["Open_vSwitch"], "id": 3})
        );
        assert_eq!(Message::from_json(wire).unwrap(), m);
        let reply = Message::Reply {
            result: json!([{}]),
            id: json!(3),
        };
        let wire = serde_json::to_value(&reply).unwrap();
        assert_eq!(wire, json!({"result": [{}], "error": null, "id": 3}));
        assert_eq!(Message::from_json(wire).unwrap(), reply);
    }
}
