//! Message bodies, kept durably apart from the log so they can be purged at the end of their
//! retention while the log (which holds only their salted commitments) stays whole.
//!
//! A body entry in the body segments is `kind:u8 request_id:[16] salt:[32] body`, where `body`
//! is the protobuf encoding of the `InformationRequest` or `InformationResponse` as received.

use crate::codec::{DecodeError, Reader, Writer};
use crate::crypto::{Digest32, commitment};
use crate::domain::MessageKind;
use crate::records::RequestId;

/// Magic of the body segments.
pub const BODY_MAGIC: [u8; 8] = *b"ISBODY01";

/// One stored body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyEntry {
    /// Request or response body.
    pub kind: MessageKind,
    /// The request it belongs to.
    pub request_id: RequestId,
    /// The commitment salt.
    pub salt: [u8; 32],
    /// The protobuf-encoded body.
    pub body: Vec<u8>,
}

/// Flag on the kind byte of an erased entry.
const ERASED: u8 = 0x80;
/// Flag on the kind byte of an entry sealed at rest (the store's `seal` module writes it).
pub const SEALED: u8 = 0x40;

/// The body-store key of a protocol document version.
pub fn protocol_body_id(protocol_id: &str, version: u32) -> RequestId {
    let digest = crate::crypto::sha256(
        format!("infoshare.v1/protocol\0{protocol_id}\0{version}").as_bytes(),
    );
    RequestId(digest[..16].try_into().expect("16 bytes"))
}

/// A protocol document as a body entry (its log record holds the document's plain SHA-256:
/// a governance document needs no salt).
pub fn protocol_body(protocol_id: &str, version: u32, document: &str) -> BodyEntry {
    BodyEntry {
        kind: MessageKind::Protocol,
        request_id: protocol_body_id(protocol_id, version),
        salt: [0; 32],
        body: document.as_bytes().to_vec(),
    }
}

impl BodyEntry {
    /// The salted commitment the log records for this body.
    pub fn commitment(&self) -> Digest32 {
        commitment(&self.salt, &self.body)
    }

    /// The entry's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.kind.code())
            .fixed(&self.request_id.0)
            .fixed(&self.salt)
            .fixed(&self.body);
        w.finish()
    }

    /// Decodes an entry.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if Self::is_erased(bytes) {
            return Err(DecodeError::UnknownCode {
                field: "body kind (erased)",
                code: bytes[0],
            });
        }
        let (kind, request_id) = Self::decode_key(bytes)?;
        let mut r = Reader::new(&bytes[17..]);
        let salt = r.fixed()?;
        Ok(Self {
            kind,
            request_id,
            salt,
            body: bytes[49..].to_vec(),
        })
    }

    /// Decodes only the kind and request id (of a live, sealed or erased entry).
    pub fn decode_key(bytes: &[u8]) -> Result<(MessageKind, RequestId), DecodeError> {
        let mut r = Reader::new(bytes);
        Ok((
            r.code("body kind", |c| {
                MessageKind::from_code(c & !(ERASED | SEALED))
            })?,
            RequestId(r.fixed()?),
        ))
    }

    /// The erased form of a stored entry: the same length (so positions stay valid), its kind
    /// (flagged erased) and request id kept (so start-up still knows whose it was), and every
    /// other byte (salt and body) zero.
    pub fn erased(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0; payload.len()];
        let key = payload.len().min(17);
        out[..key].copy_from_slice(&payload[..key]);
        if let Some(kind) = out.first_mut() {
            *kind |= ERASED;
        }
        out
    }

    /// Whether a stored entry was erased.
    pub fn is_erased(payload: &[u8]) -> bool {
        payload.first().is_some_and(|kind| kind & ERASED != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_commits() {
        let e = BodyEntry {
            kind: MessageKind::Response,
            request_id: RequestId([3; 16]),
            salt: [4; 32],
            body: b"hello".to_vec(),
        };
        let d = BodyEntry::decode(&e.encode()).unwrap();
        assert_eq!(d, e);
        assert_eq!(d.commitment(), commitment(&[4; 32], b"hello"));
        assert!(BodyEntry::decode(&e.encode()[..20]).is_err());
    }
}
