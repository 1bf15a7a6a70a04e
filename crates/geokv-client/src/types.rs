//! The values SDK calls return: siblings, the opaque causal context, and the
//! results of get / put / delete; conversions from their wire messages.
//!
//! Must not: do I/O, or interpret the context: it is the server's encoding
//! of a dotted version vector and must be handed back byte for byte.
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;

use crate::proto::v1 as pb;
use crate::ClientError;

/// One concurrent version of a value, as returned by a read.
///
/// # Example
///
/// ```no_run
/// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
/// for sibling in client.get("cart:7").await?.siblings {
///     match &sibling.value {
///         Some(value) => println!("{} bytes at {} ms", value.len(), sibling.timestamp_ms),
///         None => println!("a concurrent delete (tombstone)"),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    /// The value; `None` for a tombstone.
    pub value: Option<Bytes>,
    /// True when this sibling is a delete concurrent with other writes.
    pub tombstone: bool,
    /// Wall-clock milliseconds at the coordinator that wrote it; for display
    /// only (causality lives in the context, never in timestamps).
    pub timestamp_ms: u64,
}

impl From<pb::Sibling> for Sibling {
    fn from(s: pb::Sibling) -> Self {
        Sibling {
            value: s.value.map(Bytes::from),
            tombstone: s.tombstone,
            timestamp_ms: s.timestamp_ms,
        }
    }
}

/// The opaque causal context a read returns. Pass it back on the next write
/// of the same key to replace exactly the siblings that read saw; a write
/// without it (a blind write) becomes one more sibling. A context is bound to
/// its key: the server refuses it with another key (`InvalidArgument`).
///
/// # Example
///
/// ```no_run
/// use geokv_client::CausalContext;
///
/// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
/// let read = client.get("k").await?;
/// let shell_safe = read.context.to_base64();
/// let back = CausalContext::from_base64(&shell_safe)?;
/// client.put("k", "merged").context(&back).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CausalContext(Bytes);

impl CausalContext {
    /// The empty context: a write with it is a blind write.
    ///
    /// # Example
    ///
    /// ```no_run
    /// assert!(geokv_client::CausalContext::empty().is_empty());
    /// ```
    pub fn empty() -> Self {
        CausalContext(Bytes::new())
    }

    /// Wraps bytes received from the server (or stored by the application).
    ///
    /// # Example
    ///
    /// ```no_run
    /// let ctx = geokv_client::CausalContext::from_bytes(vec![1, 2, 3]);
    /// assert_eq!(ctx.as_bytes(), &[1, 2, 3]);
    /// ```
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        CausalContext(bytes.into())
    }

    /// The raw bytes, as sent on the wire.
    ///
    /// # Example
    ///
    /// ```no_run
    /// assert!(geokv_client::CausalContext::empty().as_bytes().is_empty());
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True for the empty context.
    ///
    /// # Example
    ///
    /// ```no_run
    /// assert!(!geokv_client::CausalContext::from_bytes(vec![0]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Standard base64 (with padding), for shells and text protocols.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let ctx = geokv_client::CausalContext::from_bytes(vec![0xfb, 0xff]);
    /// assert_eq!(ctx.to_base64(), "+/8=");
    /// ```
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.0)
    }

    /// Parses [`to_base64`](CausalContext::to_base64)'s output; surrounding
    /// whitespace is ignored and an empty string is the empty context.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidArgument`] when the text is not base64.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use geokv_client::CausalContext;
    ///
    /// let ctx = CausalContext::from_base64("+/8=")?;
    /// assert_eq!(ctx.as_bytes(), &[0xfb, 0xff]);
    /// # Ok::<(), geokv_client::ClientError>(())
    /// ```
    pub fn from_base64(text: &str) -> Result<Self, ClientError> {
        STANDARD
            .decode(text.trim())
            .map(|bytes| CausalContext(bytes.into()))
            .map_err(|e| ClientError::invalid(format!("causal context is not base64: {e}")))
    }

    pub(crate) fn to_wire(&self) -> Vec<u8> {
        self.0.to_vec()
    }
}

/// The outcome of a read.
///
/// # Example
///
/// ```no_run
/// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
/// let read = client.get("k").await?;
/// if read.siblings.len() > 1 {
///     // Concurrent writes: merge them and write the result back with the context.
///     client.resolve("k", "merged", &read).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetResult {
    /// Every concurrent version; empty when the key was never written or
    /// every version is deleted.
    pub siblings: Vec<Sibling>,
    /// Covers every sibling above; hand it to the next put/delete.
    pub context: CausalContext,
    /// How many replicas answered.
    pub replicas_answered: u32,
    /// The endpoint (coordinator) that served the read.
    pub coordinator: String,
}

impl GetResult {
    /// True when there is no live (non-tombstone) sibling.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// if client.get("k").await?.is_absent() {
    ///     println!("not found");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_absent(&self) -> bool {
        self.values().next().is_none()
    }

    /// The live values (tombstones skipped), in server order.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
    /// let longest = client.get("k").await?.values().max_by_key(|v| v.len()).cloned();
    /// # Ok(()) }
    /// ```
    pub fn values(&self) -> impl Iterator<Item = &Bytes> {
        self.siblings.iter().filter_map(|s| s.value.as_ref())
    }

    pub(crate) fn from_wire(r: pb::GetResponse, coordinator: String) -> Self {
        GetResult {
            siblings: r.siblings.into_iter().map(Sibling::from).collect(),
            context: CausalContext::from_bytes(r.context),
            replicas_answered: r.replicas_answered,
            coordinator,
        }
    }
}

/// The outcome of a put.
///
/// # Example
///
/// ```no_run
/// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
/// let written = client.put("k", "v1").await?;
/// // Overwrite exactly what we wrote, without reading first.
/// client.put("k", "v2").context(&written.context).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// The context this put was given plus the put itself: writing again
    /// with it replaces exactly what this client has seen and written, never
    /// a concurrent sibling another client wrote meanwhile (that one stays a
    /// sibling until a read shows it and a write with the read's context
    /// resolves it).
    pub context: CausalContext,
    /// Replicas that acknowledged before the answer (stored hints are not
    /// acknowledgements; they are in `hints`).
    pub acks: u32,
    /// Hints stored for replicas that were down or failed: they receive the
    /// write when they are back.
    pub hints: u32,
    /// The endpoint (coordinator) that served the write.
    pub coordinator: String,
}

impl PutResult {
    pub(crate) fn from_wire(r: pb::PutResponse, coordinator: String) -> Self {
        PutResult {
            context: CausalContext::from_bytes(r.context),
            acks: r.acks,
            hints: r.hints,
            coordinator,
        }
    }
}

/// The outcome of a delete.
///
/// # Example
///
/// ```no_run
/// # async fn demo(client: geokv_client::Client) -> Result<(), geokv_client::ClientError> {
/// let read = client.get("k").await?;
/// let deleted = client.delete("k", &read.context).await?;
/// println!("{} acks", deleted.acks);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteResult {
    /// The context this delete was given plus the tombstone it wrote (as
    /// for [`PutResult::context`]).
    pub context: CausalContext,
    /// Replicas that acknowledged before the answer.
    pub acks: u32,
    /// Hints stored for replicas that were down or failed.
    pub hints: u32,
    /// The endpoint (coordinator) that served the delete.
    pub coordinator: String,
}

impl DeleteResult {
    pub(crate) fn from_wire(r: pb::DeleteResponse, coordinator: String) -> Self {
        DeleteResult {
            context: CausalContext::from_bytes(r.context),
            acks: r.acks,
            hints: r.hints,
            coordinator,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_base64_roundtrip() {
        for raw in [
            vec![],
            vec![0u8],
            vec![0xfb, 0xff, 0x00, 0x10],
            (0..=255).collect(),
        ] {
            let ctx = CausalContext::from_bytes(raw.clone());
            let text = ctx.to_base64();
            assert_eq!(CausalContext::from_base64(&text).unwrap(), ctx);
            assert_eq!(
                CausalContext::from_base64(&format!(" {text}\n")).unwrap(),
                ctx
            );
        }
        assert!(CausalContext::from_base64("").unwrap().is_empty());
    }

    #[test]
    fn bad_base64_is_invalid_argument() {
        let err = CausalContext::from_base64("not base64!").unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn tombstones_are_not_values() {
        let read = GetResult::from_wire(
            pb::GetResponse {
                siblings: vec![
                    pb::Sibling {
                        value: None,
                        tombstone: true,
                        timestamp_ms: 1,
                    },
                    pb::Sibling {
                        value: Some(b"v".to_vec()),
                        tombstone: false,
                        timestamp_ms: 2,
                    },
                ],
                context: vec![9],
                replicas_answered: 2,
            },
            "http://a".into(),
        );
        assert!(!read.is_absent());
        assert_eq!(read.values().count(), 1);
        assert_eq!(read.context.as_bytes(), &[9]);
    }
}
