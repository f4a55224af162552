//! Each consumer's webhook signing secret, in the Standard Webhooks form: `whsec_` and the
//! base64 of 32 bytes, the bytes being the HMAC key. A consumer's secret is derived from the
//! deployment's master secret (`WebhookMasterSecret` in Secrets Manager), the consumer's id and the
//! secret's generation, so no receiver can sign for another and nothing per consumer is stored
//! but the generation, and that only once it has been rotated.
//!
//! A rotation starts the next generation; for [`ROTATION_OVERLAP`] the one before still signs
//! too (`webhook-signature` carries one `v1,` signature per secret, space-separated), so a
//! receiver that has not switched yet verifies every delivery meanwhile.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The prefix Standard Webhooks libraries strip before base64-decoding the key.
pub const SECRET_PREFIX: &str = "whsec_";

/// How long the secret before a rotation goes on signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Which generations of a consumer's secret sign: the current one and each one before whose
/// overlap has not ended (two rotations in a row, a retried one, cut no receiver off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Generations {
    pub current: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<Previous>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Previous {
    pub generation: u32,
    pub until: DateTime<Utc>,
}

impl Default for Generations {
    /// A consumer whose secret was never rotated.
    fn default() -> Self {
        Self {
            current: 1,
            previous: Vec::new(),
        }
    }
}

impl Generations {
    /// The generations that sign a delivery at `now`, the newest first.
    pub fn signing(&self, now: DateTime<Utc>) -> Vec<u32> {
        std::iter::once(self.current)
            .chain(self.in_overlap(now).map(|p| p.generation))
            .collect()
    }

    /// The secrets before the current one that still sign at `now`, the newest first.
    pub fn in_overlap(&self, now: DateTime<Utc>) -> impl Iterator<Item = &Previous> {
        self.previous.iter().filter(move |p| now < p.until)
    }

    /// After a rotation at `now`: the next generation; this one signs on for the overlap, as do
    /// those before it still within theirs.
    pub fn rotated(&self, now: DateTime<Utc>) -> Self {
        let current = Previous {
            generation: self.current,
            until: now + ROTATION_OVERLAP,
        };
        Self {
            current: self.current + 1,
            previous: std::iter::once(current)
                .chain(self.in_overlap(now).cloned())
                .collect(),
        }
    }
}

/// Derives consumers' secrets from the master secret.
pub struct Keyring<'a>(pub &'a [u8]);

impl Keyring<'_> {
    /// The HMAC key of a consumer's secret of one generation: 32 bytes, unique to both.
    pub fn key(&self, consumer_id: &str, generation: u32) -> [u8; 32] {
        // Length-prefixed, so that no two (consumer, generation) pairs give the same input.
        let label = format!(
            "webhook-secret/v1/{}:{consumer_id}/{generation}",
            consumer_id.len()
        );
        hmac_sha256(self.0, label.as_bytes())
    }

    /// The secret as the consumer is given it and its receiver's library takes it.
    pub fn secret(&self, consumer_id: &str, generation: u32) -> String {
        format!(
            "{SECRET_PREFIX}{}",
            STANDARD.encode(self.key(consumer_id, generation))
        )
    }

    /// The `webhook-signature` header of a delivery: `v1,` and the base64 HMAC of
    /// `id.timestamp.body` under each key, space-separated.
    pub fn signature_header(
        &self,
        consumer_id: &str,
        generations: &[u32],
        id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> String {
        let mut signed = format!("{id}.{timestamp}.").into_bytes();
        signed.extend_from_slice(body);
        generations
            .iter()
            .map(|&generation| {
                let mac = hmac_sha256(&self.key(consumer_id, generation), &signed);
                format!("v1,{}", STANDARD.encode(mac))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than a block is hashed first (test case 6).
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// `Keyring(b"master").secret("consumer-1", 1)`, computed apart (Python's hmac) and kept.
    const KNOWN_ANSWER: &str = "whsec_YqFOuBUXoGEOBatF8+axYj2vwskBSLDSW2jTT6tUqDQ=";

    #[test]
    fn each_consumer_and_generation_has_its_own_secret_in_the_standard_form() {
        let keyring = Keyring(b"master");
        let secret = keyring.secret("consumer-1", 1);
        let key = STANDARD
            .decode(secret.strip_prefix(SECRET_PREFIX).unwrap())
            .unwrap();
        assert_eq!(key, keyring.key("consumer-1", 1));
        // Pinned: a change of the derivation would change every consumer's secret at once,
        // with no overlap; it must be a new label version, never an edit.
        assert_eq!(secret, KNOWN_ANSWER);
        for other in [
            keyring.secret("consumer-2", 1),
            keyring.secret("consumer-1", 2),
            Keyring(b"another master").secret("consumer-1", 1),
        ] {
            assert_ne!(secret, other);
        }
    }

    #[test]
    fn the_header_signs_with_each_secret_in_force_the_standard_webhooks_way() {
        let keyring = Keyring(b"master");
        let header = keyring.signature_header("c", &[2, 1], "msg_1", 1_795_694_400, b"{}");
        let signatures: Vec<&str> = header.split(' ').collect();
        assert_eq!(signatures.len(), 2);
        // What a receiver computes from its own secret: HMAC of "id.timestamp.body".
        for (signature, generation) in signatures.iter().zip([2, 1]) {
            let mac = hmac_sha256(&keyring.key("c", generation), b"msg_1.1795694400.{}");
            assert_eq!(*signature, format!("v1,{}", STANDARD.encode(mac)));
        }
        let one = keyring.signature_header("c", &[1], "msg_1", 1_795_694_400, b"{}");
        assert_eq!(one, signatures[1]);
        assert_ne!(
            one,
            keyring.signature_header("c", &[1], "msg_1", 1_795_694_400, b"{ }")
        );
    }

    #[test]
    fn a_rotation_signs_with_both_secrets_until_the_overlap_ends() {
        let now = Utc::now();
        let first = Generations::default();
        assert_eq!(first.signing(now), [1]);
        let rotated = first.rotated(now);
        assert_eq!(rotated.signing(now), [2, 1]);
        assert_eq!(rotated.signing(now + ROTATION_OVERLAP), [2]);
        // Rotated again within the overlap (or the rotation retried): every secret a receiver may
        // still hold signs on until its own overlap ends.
        let again = rotated.rotated(now + Duration::hours(1));
        assert_eq!(again.signing(now + Duration::hours(2)), [3, 2, 1]);
        assert_eq!(again.signing(now + ROTATION_OVERLAP), [3, 2]);
        let later = again.rotated(now + Duration::hours(30));
        assert_eq!(
            later.previous.len(),
            1,
            "ended overlaps are dropped: {later:?}"
        );
    }
}
