//! Decoding of the Kubernetes protobuf envelope for the few kinds kubectl's typed generators send
//! as protobuf (`kubectl create namespace|configmap|secret|serviceaccount`), and the
//! DeleteOptions client-go's typed clients send with a delete (`helm uninstall`). The decoded
//! object is handled exactly like a JSON body; answers are JSON.

use base64::Engine;
use serde_json::{json, Map, Value};

/// Why a protobuf body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// Not the `k8s\0` envelope or a truncated/invalid message.
    #[error("invalid protobuf body: {0}")]
    Malformed(&'static str),
    /// A kind this decoder does not know.
    #[error("protobuf bodies are supported for Namespace, ConfigMap, Secret and ServiceAccount only, not {0}")]
    UnsupportedKind(String),
}

type Result<T> = std::result::Result<T, ProtobufError>;

const MAGIC: &[u8] = b"k8s\0";

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .data
                .split_first()
                .ok_or(ProtobufError::Malformed("truncated varint"))?;
            self.data = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::Malformed("varint too long"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.data.len() {
            return Err(ProtobufError::Malformed("truncated field"));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>> {
        if self.data.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = match tag & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| ProtobufError::Malformed("length"))?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed
            }
            _ => return Err(ProtobufError::Malformed("unsupported wire type")),
        };
        Ok(Some((tag >> 3, field)))
    }
}

fn fields(data: &[u8]) -> Result<Vec<(u64, Field<'_>)>> {
    let mut reader = Reader { data };
    let mut out = Vec::new();
    while let Some(field) = reader.next()? {
        out.push(field);
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::Malformed("string is not UTF-8"))
}

fn map_entry(bytes: &[u8], binary_values: bool) -> Result<(String, Value)> {
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => key = text(b)?,
            (2, Field::Bytes(b)) if binary_values => {
                value = Value::String(base64::engine::general_purpose::STANDARD.encode(b));
            }
            (2, Field::Bytes(b)) => value = Value::String(text(b)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn insert_entry(
    target: &mut Map<String, Value>,
    name: &str,
    bytes: &[u8],
    binary: bool,
) -> Result<()> {
    let (key, value) = map_entry(bytes, binary)?;
    super::super::meta::as_map(target.entry(name).or_insert_with(|| json!({}))).insert(key, value);
    Ok(())
}

fn push(target: &mut Map<String, Value>, name: &str, value: Value) {
    if let Value::Array(items) = target.entry(name).or_insert_with(|| json!([])) {
        items.push(value);
    }
}

fn owner_reference(bytes: &[u8]) -> Result<Value> {
    let mut out = Map::new();
    for (number, field) in fields(bytes)? {
        let key = match number {
            1 => "kind",
            3 => "name",
            4 => "uid",
            5 => "apiVersion",
            6 => "controller",
            7 => "blockOwnerDeletion",
            _ => continue,
        };
        match field {
            Field::Bytes(b) => out.insert(key.into(), Value::String(text(b)?)),
            Field::Varint(v) => out.insert(key.into(), Value::Bool(v != 0)),
            Field::Fixed => None,
        };
    }
    Ok(Value::Object(out))
}

fn object_meta(bytes: &[u8]) -> Result<Value> {
    let mut out = Map::new();
    for (number, field) in fields(bytes)? {
        let Field::Bytes(b) = field else { continue };
        match number {
            1 => drop(out.insert("name".into(), Value::String(text(b)?))),
            2 => drop(out.insert("generateName".into(), Value::String(text(b)?))),
            3 => drop(out.insert("namespace".into(), Value::String(text(b)?))),
            11 => insert_entry(&mut out, "labels", b, false)?,
            12 => insert_entry(&mut out, "annotations", b, false)?,
            13 => push(&mut out, "ownerReferences", owner_reference(b)?),
            14 => push(&mut out, "finalizers", Value::String(text(b)?)),
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

fn local_reference(bytes: &[u8]) -> Result<Value> {
    let mut out = Map::new();
    for (number, field) in fields(bytes)? {
        if let (1, Field::Bytes(b)) = (number, field) {
            out.insert("name".into(), Value::String(text(b)?));
        }
    }
    Ok(Value::Object(out))
}

fn decode_kind(kind: &str, raw: &[u8]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (number, field) in fields(raw)? {
        match (kind, number, field) {
            // DeleteOptions (client-go sends it as protobuf with typed clients, e.g. helm's
            // release Secrets): gracePeriodSeconds, preconditions, orphanDependents,
            // propagationPolicy, dryRun.
            ("DeleteOptions", 1, Field::Varint(v)) => {
                out.insert("gracePeriodSeconds".into(), json!(v as i64));
            }
            ("DeleteOptions", 2, Field::Bytes(b)) => {
                let mut preconditions = Map::new();
                for (n, f) in fields(b)? {
                    match (n, f) {
                        (1, Field::Bytes(s)) => {
                            drop(preconditions.insert("uid".into(), Value::String(text(s)?)))
                        }
                        (2, Field::Bytes(s)) => drop(
                            preconditions.insert("resourceVersion".into(), Value::String(text(s)?)),
                        ),
                        _ => {}
                    }
                }
                out.insert("preconditions".into(), Value::Object(preconditions));
            }
            ("DeleteOptions", 3, Field::Varint(v)) => {
                out.insert("orphanDependents".into(), Value::Bool(v != 0));
            }
            ("DeleteOptions", 4, Field::Bytes(b)) => {
                out.insert("propagationPolicy".into(), Value::String(text(b)?));
            }
            ("DeleteOptions", 5, Field::Bytes(b)) => {
                push(&mut out, "dryRun", Value::String(text(b)?))
            }
            ("DeleteOptions", _, _) => {}
            (_, 1, Field::Bytes(b)) => drop(out.insert("metadata".into(), object_meta(b)?)),
            ("Namespace", 2, Field::Bytes(b)) => {
                let mut spec = Map::new();
                for (n, f) in fields(b)? {
                    if let (1, Field::Bytes(s)) = (n, f) {
                        push(&mut spec, "finalizers", Value::String(text(s)?));
                    }
                }
                out.insert("spec".into(), Value::Object(spec));
            }
            ("ConfigMap", 2, Field::Bytes(b)) => insert_entry(&mut out, "data", b, false)?,
            ("ConfigMap", 3, Field::Bytes(b)) => insert_entry(&mut out, "binaryData", b, true)?,
            ("ConfigMap", 4, Field::Varint(v)) | ("Secret", 5, Field::Varint(v)) => {
                out.insert("immutable".into(), Value::Bool(v != 0));
            }
            ("Secret", 2, Field::Bytes(b)) => insert_entry(&mut out, "data", b, true)?,
            ("Secret", 3, Field::Bytes(b)) => {
                drop(out.insert("type".into(), Value::String(text(b)?)))
            }
            ("Secret", 4, Field::Bytes(b)) => insert_entry(&mut out, "stringData", b, false)?,
            ("ServiceAccount", 3, Field::Varint(v)) => {
                out.insert("automountServiceAccountToken".into(), Value::Bool(v != 0));
            }
            ("ServiceAccount", 4, Field::Bytes(b)) => {
                push(&mut out, "imagePullSecrets", local_reference(b)?)
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Decodes a `k8s\0`-enveloped protobuf body into the equivalent JSON object.
pub fn decode(body: &[u8]) -> Result<Value> {
    let payload = body
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::Malformed("missing k8s envelope"))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (number, field) in fields(payload)? {
        match (number, field) {
            (1, Field::Bytes(type_meta)) => {
                for (n, f) in fields(type_meta)? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => api_version = text(b)?,
                        (2, Field::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let supported = match kind.as_str() {
        "Namespace" | "ConfigMap" | "Secret" | "ServiceAccount" => api_version == "v1",
        "DeleteOptions" => api_version == "v1" || api_version == "meta.k8s.io/v1",
        _ => false,
    };
    if !supported {
        return Err(ProtobufError::UnsupportedKind(format!(
            "{api_version}/{kind}"
        )));
    }
    let mut object = decode_kind(&kind, raw)?;
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes_field(number: u64, data: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(data.len() as u64, out);
        out.extend_from_slice(data);
    }

    fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        bytes_field(1, key.as_bytes(), &mut e);
        bytes_field(2, value, &mut e);
        e
    }

    fn envelope(kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut type_meta = Vec::new();
        bytes_field(1, b"v1", &mut type_meta);
        bytes_field(2, kind.as_bytes(), &mut type_meta);
        let mut unknown = Vec::new();
        bytes_field(1, &type_meta, &mut unknown);
        bytes_field(2, raw, &mut unknown);
        bytes_field(4, b"application/vnd.kubernetes.protobuf", &mut unknown);
        [MAGIC, &unknown].concat()
    }

    #[test]
    fn decodes_secret_and_config_map() {
        let mut meta = Vec::new();
        bytes_field(1, b"s", &mut meta);
        bytes_field(3, b"ns", &mut meta);
        bytes_field(11, &entry("app", b"web"), &mut meta);
        let mut secret = Vec::new();
        bytes_field(1, &meta, &mut secret);
        bytes_field(2, &entry("token", b"abc"), &mut secret);
        bytes_field(3, b"Opaque", &mut secret);
        assert_eq!(
            decode(&envelope("Secret", &secret)).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": "s", "namespace": "ns", "labels": {"app": "web"}},
                   "data": {"token": "YWJj"}})
        );
        let mut config_map = Vec::new();
        bytes_field(1, &meta, &mut config_map);
        bytes_field(2, &entry("k", b"v"), &mut config_map);
        assert_eq!(
            decode(&envelope("ConfigMap", &config_map)).unwrap()["data"],
            json!({"k": "v"})
        );
    }

    #[test]
    fn decodes_delete_options() {
        let mut preconditions = Vec::new();
        bytes_field(1, b"u-1", &mut preconditions);
        bytes_field(2, b"42", &mut preconditions);
        let mut options = vec![0x08, 0x05]; // gracePeriodSeconds 5
        bytes_field(2, &preconditions, &mut options);
        bytes_field(4, b"Foreground", &mut options);
        bytes_field(5, b"All", &mut options);
        assert_eq!(
            decode(&envelope("DeleteOptions", &options)).unwrap(),
            json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 5,
                   "preconditions": {"uid": "u-1", "resourceVersion": "42"},
                   "propagationPolicy": "Foreground", "dryRun": ["All"]})
        );
    }

    #[test]
    fn rejects_garbage() {
        let cases: Vec<Vec<u8>> = vec![
            b"{}".to_vec(),
            [MAGIC, &[0x0a, 0x05, 0x01]].concat(),
            [MAGIC, &[0xff; 12]].concat(),
            envelope("Pod", &[]),
        ];
        for body in cases {
            assert!(decode(&body).is_err(), "{body:?}");
        }
    }
}
