//! Inputs an attacker or a broken producer could send, for property tests of every decoder:
//! arbitrary bytes (invalid UTF-8 included), nesting deeper than any parser allows, huge
//! strings, JSON of every shape and type, and near-valid documents with one field changed.

use proptest::prelude::*;
use serde_json::{Value, json};

/// Any JSON value, up to a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::hash_map("[a-zA-Z-]{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `valid` with one of its fields (at any depth) replaced by any value, or removed.
pub fn mutated(valid: Value) -> impl Strategy<Value = Value> {
    (any::<prop::sample::Index>(), json_value(), any::<bool>()).prop_map(
        move |(at, with, remove)| {
            let mut document = valid.clone();
            let mut paths = Vec::new();
            collect_paths(&document, &mut Vec::new(), &mut paths);
            if let Some(path) = (!paths.is_empty()).then(|| at.get(&paths).clone()) {
                replace(&mut document, &path, with, remove);
            }
            document
        },
    )
}

/// Bodies as bytes: everything above, serialized, plus raw bytes and pathological JSON.
pub fn bodies(valid: Value) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (1usize..20_000)
            .prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        (1usize..20_000).prop_map(|depth| "{\"a\":".repeat(depth).into_bytes()),
        (0usize..200_000).prop_map(|len| json!({"consumerId": "x".repeat(len)})
            .to_string()
            .into_bytes()),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        mutated(valid).prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|mut bytes| {
            // JSON with invalid UTF-8 inside a string.
            let mut body = b"{\"consumerId\":\"".to_vec();
            bytes.push(0xff);
            body.extend(bytes);
            body.extend(b"\"}");
            body
        }),
    ]
}

fn collect_paths(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                at.push(key.clone());
                out.push(at.clone());
                collect_paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(i.to_string());
                out.push(at.clone());
                collect_paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn replace(document: &mut Value, path: &[String], with: Value, remove: bool) {
    let (last, parents) = path.split_last().expect("paths are never empty");
    let mut node = document;
    for step in parents {
        node = match node {
            Value::Object(map) => map.get_mut(step).expect("path exists"),
            Value::Array(items) => &mut items[step.parse::<usize>().expect("index")],
            _ => return,
        };
    }
    match node {
        Value::Object(map) if remove => {
            map.remove(last);
        }
        Value::Object(map) => {
            map.insert(last.clone(), with);
        }
        Value::Array(items) => items[last.parse::<usize>().expect("index")] = with,
        _ => {}
    }
}
