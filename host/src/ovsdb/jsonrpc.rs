//! JSON-RPC 1.0 messages as OVSDB uses them (RFC 7047 §4). Parameters,
//! results and errors stay JSON text ([`Json`]) until their reader parses
//! them.

use super::json::Json;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::Deserialize;
use serde_json::Value;

/// One message on an OVSDB connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request expecting a reply with the same id.
    Request {
        /// Method name.
        method: String,
        /// Parameters (an array).
        params: Json,
        /// Request id.
        id: Value,
    },
    /// A notification (no reply).
    Notify {
        /// Method name.
        method: String,
        /// Parameters (an array).
        params: Json,
    },
    /// A successful reply.
    Reply {
        /// The result.
        result: Json,
        /// The id of the request it answers.
        id: Value,
    },
    /// An error reply.
    Error {
        /// The error.
        error: Json,
        /// The id of the request it answers.
        id: Value,
    },
}

/// A message as it comes, before it is classified.
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Json>,
    #[serde(default)]
    result: Option<Json>,
    #[serde(default)]
    error: Option<Json>,
    #[serde(default)]
    id: Value,
}

impl Message {
    /// Reads and classifies one message from `text`.
    pub fn parse(text: &str) -> Result<Message, String> {
        let w: Wire = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Message::classify(w)
    }

    /// Reads the messages of a stream, one after the other, until it ends
    /// (`None`) or breaks (an error: a protocol error, or EOF in the middle
    /// of a message).
    pub fn stream<R: std::io::Read>(reader: R) -> impl Iterator<Item = Result<Message, String>> {
        serde_json::Deserializer::from_reader(reader)
            .into_iter::<Wire>()
            .map(|w| w.map_err(|e| e.to_string()).and_then(Message::classify))
    }

    fn classify(w: Wire) -> Result<Message, String> {
        if let Some(method) = w.method {
            let params = w.params.unwrap_or_else(|| Json::from(Value::Array(vec![])));
            return Ok(if w.id.is_null() {
                Message::Notify { method, params }
            } else {
                Message::Request {
                    method,
                    params,
                    id: w.id,
                }
            });
        }
        match (w.result, w.error) {
            (_, Some(error)) if !error.is_null() => Ok(Message::Error { error, id: w.id }),
            (Some(result), _) => Ok(Message::Reply { result, id: w.id }),
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
        let p = |v: Value| Message::parse(&v.to_string());
        let r = p(json!({"method": "echo", "params": [], "id": "echo"})).unwrap();
        assert!(matches!(r, Message::Request { ref method, .. } if method == "echo"));
        let n = p(json!({"method": "update2", "params": [1, 2], "id": null})).unwrap();
        assert!(matches!(n, Message::Notify { .. }));
        let ok = p(json!({"result": [1], "error": null, "id": 7})).unwrap();
        assert_eq!(
            ok,
            Message::Reply {
                result: json!([1]).into(),
                id: json!(7)
            }
        );
        let e = p(json!({"result": null, "error": "unknown method", "id": 8})).unwrap();
        assert!(matches!(e, Message::Error { .. }));
        assert!(p(json!([1])).is_err());
        assert!(p(json!({"id": 1})).is_err());
    }

    #[test]
    fn round_trips() {
        let m = Message::Request {
            method: "transact".into(),
            params: json!(["Open_vSwitch"]).into(),
            id: json!(3),
        };
        let wire = serde_json::to_value(&m).unwrap();
        assert_eq!(
            wire,
            json!({"method": "transact", "params": ["Open_vSwitch"], "id": 3})
        );
        assert_eq!(Message::parse(&wire.to_string()).unwrap(), m);
        let reply = Message::Reply {
            result: json!([{}]).into(),
            id: json!(3),
        };
        let wire = serde_json::to_value(&reply).unwrap();
        assert_eq!(wire, json!({"result": [{}], "error": null, "id": 3}));
        assert_eq!(Message::parse(&wire.to_string()).unwrap(), reply);
    }

    #[test]
    fn a_stream_of_messages_is_read_in_order() {
        let text = r#"{"method":"echo","params":[],"id":"e"}{"result":{"a":1},"error":null,"id":2}
            {"method":"update2","params":["m",{"T":{}}],"id":null}"#;
        let msgs: Vec<Message> = Message::stream(text.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(msgs.len(), 3);
        assert!(
            matches!(&msgs[2], Message::Notify { params, .. } if params.text() == r#"["m",{"T":{}}]"#)
        );
    }
}
