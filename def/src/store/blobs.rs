//! Plugin bytes in etcd: `blobs/<sha256>/<index>`, in chunks small enough for etcd's request
//! limit (1.5 MiB by default). Content-addressed, so writing the same blob twice is harmless
//! and a blob left by a push that failed half-way is reused by the next push of those bytes.

use etcd_client::GetOptions;

use super::{Result, Store};
use crate::consts::BLOB_CHUNK_BYTES;

impl Store {
    /// Writes `bytes` under `digest` (the caller computed it), chunk by chunk; returns the
    /// number of chunks.
    pub async fn write_blob(&self, digest: &str, bytes: &[u8]) -> Result<u32> {
        let kv = self.client.kv_client();
        let mut count = 0;
        for (index, chunk) in bytes.chunks(BLOB_CHUNK_BYTES).enumerate() {
            let key = self.keys().blob_chunk(digest, index as u32);
            // Content-addressed: a chunk written twice is the same chunk.
            self.idempotent(|| {
                let (mut kv, key) = (kv.clone(), key.clone());
                async move { kv.put(key, chunk.to_vec(), None).await }
            })
            .await?;
            count += 1;
        }
        Ok(count)
    }

    /// The bytes stored under `digest`, chunks joined in order; `None` when there are none. The
    /// caller checks them against the digest: this reads what is there.
    pub async fn read_blob(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let kv = self.client.kv_client();
        let mut bytes = Vec::new();
        // One chunk per request: a page of chunks could pass gRPC's message limit.
        for index in 0.. {
            let key = self.keys().blob_chunk(digest, index);
            let response = self
                .idempotent(|| {
                    let (mut kv, key) = (kv.clone(), key.clone());
                    async move { kv.get(key, Some(GetOptions::new())).await }
                })
                .await?;
            match response.kvs().first() {
                Some(kv) => bytes.extend_from_slice(kv.value()),
                None if index == 0 => return Ok(None),
                None => break,
            }
        }
        Ok(Some(bytes))
    }
}
