//! The copy of a build's log kept after its Pod is gone (pure): a ConfigMap `<build>-log` owned by
//! the Build, holding the clone and build containers' output gzip-compressed under
//! [`LOG_KEY`], capped with the head and the tail kept.
//!
//! The controller writes it as the build finishes (it reads the Pod's logs before it deletes a
//! cancelled build's Pod); `kiln logs` reads it once the Pod is gone; deleting the Build (pruning)
//! deletes it through the owner reference. A ConfigMap, not a kiln kind: every cluster's `view`
//! and `edit` roles already read ConfigMaps, and it needs no CRD, no storage of kiln's own and no
//! registry access.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::ByteString;
use kube::api::ObjectMeta;
use kube::Resource;

use super::Build;
use crate::naming;

/// The ConfigMap key holding the gzip-compressed log.
pub const LOG_KEY: &str = "build.log.gz";
/// Annotation: how many bytes the containers wrote in all.
pub const TOTAL_BYTES_ANNOTATION: &str = "build.kiln.dev/log-bytes";
/// Annotation: how many bytes of the middle were left out to fit.
pub const OMITTED_BYTES_ANNOTATION: &str = "build.kiln.dev/log-omitted-bytes";
/// How much of the beginning of a log is kept.
pub const HEAD_BYTES: usize = 256 * 1024;
/// How much of the end of a log is kept (the end explains a failure).
pub const TAIL_BYTES: usize = 3 * 1024 * 1024;
/// The most compressed bytes stored (a ConfigMap holds at most 1 MiB in all).
pub const MAX_COMPRESSED_BYTES: usize = 900 * 1024;

/// The name of the ConfigMap holding Build `build`'s log: `<build>-log`.
pub fn config_map_name(build: &str) -> String {
    naming::join_name(build, "log", naming::MAX_NAME_LENGTH)
}

/// Collects a stream keeping its first `head` and last `tail` bytes, counting the rest.
#[derive(Debug)]
pub struct Capped {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_limit: usize,
    tail_limit: usize,
    total: u64,
}

impl Capped {
    /// Keeps at most `head` leading and `tail` trailing bytes.
    pub fn new(head: usize, tail: usize) -> Capped {
        Capped {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_limit: head,
            tail_limit: tail,
            total: 0,
        }
    }

    /// Adds the next bytes of the stream.
    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.head_limit - self.head.len();
        if room > 0 {
            let take = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if bytes.len() >= self.tail_limit {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_limit..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_limit);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// How many bytes were pushed.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept text: the head, then (if anything was left out, cut at line ends) a marker line
    /// saying how much, then the tail; and the number of bytes left out.
    pub fn finish(self) -> (Vec<u8>, u64) {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let mut head = self.head;
        let mut tail: Vec<u8> = self.tail.into();
        if kept == self.total {
            head.extend_from_slice(&tail);
            return (head, 0);
        }
        if let Some(end) = head.iter().rposition(|b| *b == b'\n') {
            head.truncate(end + 1);
        }
        if let Some(start) = tail.iter().position(|b| *b == b'\n') {
            tail.drain(..=start);
        }
        let omitted = self.total - (head.len() + tail.len()) as u64;
        if !head.ends_with(b"\n") && !head.is_empty() {
            head.push(b'\n');
        }
        head.extend_from_slice(format!("[… {omitted} bytes of this log left out …]\n").as_bytes());
        head.extend_from_slice(&tail);
        (head, omitted)
    }
}

/// Why a stored log cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ConfigMap is not the Build's own (another object took its name).
    #[error("ConfigMap {0} is not owned by the Build; it is not its log")]
    NotOwned(String),
    /// The ConfigMap has no log key.
    #[error("ConfigMap {0} has no key {LOG_KEY}")]
    Missing(String),
    /// The data does not decompress.
    #[error("ConfigMap {0}: the log does not decompress: {1}")]
    Corrupt(String, std::io::Error),
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// The ConfigMap holding `capped`'s text for `build`, compressed to at most
/// [`MAX_COMPRESSED_BYTES`]: when the kept text compresses to more, less of it is kept (the tail
/// shrinks first) until it fits. `None` when the Build lacks the metadata an owner reference
/// needs.
pub fn config_map(build: &Build, capped: Capped) -> Option<ConfigMap> {
    let name = build.meta().name.clone()?;
    let owner = build.controller_owner_ref(&())?;
    let total = capped.total();
    let (mut text, mut omitted) = capped.finish();
    let mut compressed = gzip(&text);
    let mut budget = text.len();
    while compressed.len() > MAX_COMPRESSED_BYTES && budget > 1024 {
        budget /= 2;
        let mut smaller = Capped::new(budget / 8, budget - budget / 8);
        smaller.push(&text);
        let (t, o) = smaller.finish();
        omitted += o;
        text = t;
        compressed = gzip(&text);
    }
    let mut annotations = BTreeMap::new();
    annotations.insert(TOTAL_BYTES_ANNOTATION.to_string(), total.to_string());
    annotations.insert(OMITTED_BYTES_ANNOTATION.to_string(), omitted.to_string());
    let mut labels = BTreeMap::new();
    labels.insert(
        naming::BUILD_NAME_LABEL.to_string(),
        naming::label_value(&name),
    );
    Some(ConfigMap {
        metadata: ObjectMeta {
            name: Some(config_map_name(&name)),
            namespace: build.meta().namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        binary_data: Some(BTreeMap::from([(
            LOG_KEY.to_string(),
            ByteString(compressed),
        )])),
        ..ConfigMap::default()
    })
}

/// The log stored in `cm` for `build`: only from a ConfigMap the Build owns (its uid).
pub fn read(cm: &ConfigMap, build: &Build) -> Result<Vec<u8>, Error> {
    let name = cm.metadata.name.clone().unwrap_or_default();
    let uid = build.meta().uid.as_deref();
    let owned = cm
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| Some(o.uid.as_str()) == uid);
    if !owned {
        return Err(Error::NotOwned(name));
    }
    let data = cm
        .binary_data
        .as_ref()
        .and_then(|d| d.get(LOG_KEY))
        .ok_or_else(|| Error::Missing(name.clone()))?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data.0.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| Error::Corrupt(name, e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build() -> Build {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": "app-1", "namespace": "demo", "uid": "u-1"},
            "spec": {"strategy": {"type": "Docker"}}
        }))
        .unwrap()
    }

    fn capped(parts: &[&[u8]], head: usize, tail: usize) -> (Vec<u8>, u64) {
        let mut c = Capped::new(head, tail);
        for p in parts {
            c.push(p);
        }
        c.finish()
    }

    #[test]
    fn short_logs_are_kept_whole_in_any_chunking() {
        let text = b"one\ntwo\nthree\n";
        for split in 0..text.len() {
            let (a, b) = text.split_at(split);
            assert_eq!(capped(&[a, b], 8, 8), (text.to_vec(), 0), "{split}");
        }
    }

    #[test]
    fn long_logs_keep_whole_lines_of_head_and_tail() {
        let lines: Vec<String> = (0..100).map(|i| format!("line {i:03}\n")).collect();
        let text = lines.concat();
        // Fed in chunks of 7 bytes, head 30 and tail 40 bytes.
        let chunks: Vec<&[u8]> = text.as_bytes().chunks(7).collect();
        let (kept, omitted) = capped(&chunks, 30, 40);
        let kept = String::from_utf8(kept).unwrap();
        // 30 bytes hold 3 whole lines of 9; the last 40 hold 4 whole lines.
        let expected_omitted = (text.len() - 27 - 36) as u64;
        assert_eq!(omitted, expected_omitted);
        assert_eq!(
            kept,
            format!(
                "line 000\nline 001\nline 002\n[… {expected_omitted} bytes of this log left out …]\nline 096\nline 097\nline 098\nline 099\n"
            )
        );
    }

    #[test]
    fn the_config_map_round_trips_and_is_owned_by_the_build() {
        let b = build();
        let mut c = Capped::new(HEAD_BYTES, TAIL_BYTES);
        c.push(b"Cloning into ...\n");
        c.push(b"STEP 1/2: FROM busybox\n");
        let cm = config_map(&b, c).unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("app-1-log"));
        let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Build", "u-1"));
        assert_eq!(
            cm.metadata.annotations.as_ref().unwrap()[TOTAL_BYTES_ANNOTATION],
            "40"
        );
        assert_eq!(
            read(&cm, &b).unwrap(),
            b"Cloning into ...\nSTEP 1/2: FROM busybox\n"
        );
        let mut other = b.clone();
        other.metadata.uid = Some("u-2".into());
        assert!(matches!(read(&cm, &other), Err(Error::NotOwned(_))));
    }

    #[test]
    fn incompressible_logs_shrink_to_fit() {
        // 3 MiB of pseudo-random printable lines: gzip cannot bring them under the limit.
        let mut state = 0x2545_f491_u32;
        let mut text = Vec::new();
        while text.len() < 3 * 1024 * 1024 {
            for _ in 0..79 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                text.push(b'!' + (state % 90) as u8);
            }
            text.push(b'\n');
        }
        let mut c = Capped::new(HEAD_BYTES, TAIL_BYTES);
        c.push(&text);
        let cm = config_map(&build(), c).unwrap();
        let stored = &cm.binary_data.as_ref().unwrap()[LOG_KEY].0;
        assert!(stored.len() <= MAX_COMPRESSED_BYTES, "{}", stored.len());
        let back = read(&cm, &build()).unwrap();
        assert!(back.ends_with(&text[text.len() - 80..]), "the end is kept");
        assert!(back.starts_with(&text[..80]), "the start is kept");
        let omitted: u64 = cm.metadata.annotations.as_ref().unwrap()[OMITTED_BYTES_ANNOTATION]
            .parse()
            .unwrap();
        assert!(omitted > 0);
    }
}
