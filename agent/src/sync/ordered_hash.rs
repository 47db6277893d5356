//! SHA-256 of a file written as concurrent ranged parts. Each byte is hashed once and in order: from memory when
//! the block just written continues the hashed prefix, otherwise read back from the file once the prefix reaches
//! it. Most of a large object is hashed as it arrives, and little is read back (on EFS a read-back is a trip over
//! the network).
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

pub struct OrderedHasher {
    size: u64,
    part_size: u64,
    state: Mutex<State>,
}

struct State {
    hasher: Sha256,
    /// Bytes hashed so far: the file's prefix `0..hashed`.
    hashed: u64,
    /// Per part, the bytes written from its start (each part writes its blocks in order).
    written: Vec<u64>,
}

impl OrderedHasher {
    /// A file of `size` bytes, written as parts of `part_size` bytes (the last one shorter).
    pub fn new(size: u64, part_size: u64) -> OrderedHasher {
        let part_size = part_size.max(1);
        OrderedHasher {
            size,
            part_size,
            state: Mutex::new(State {
                hasher: Sha256::new(),
                hashed: 0,
                written: vec![0; size.div_ceil(part_size) as usize],
            }),
        }
    }

    /// Records that `chunks` were written to `file` at `offset`, as the next block of their part.
    pub fn written<C: AsRef<[u8]>>(
        &self,
        file: &File,
        offset: u64,
        chunks: &[C],
    ) -> std::io::Result<()> {
        let len: u64 = chunks.iter().map(|c| c.as_ref().len() as u64).sum();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let part = (offset / self.part_size) as usize;
        if let Some(w) = state.written.get_mut(part) {
            *w = offset + len - part as u64 * self.part_size;
        }
        if state.hashed == offset {
            for c in chunks {
                state.hasher.update(c.as_ref());
            }
            state.hashed += len;
        }
        self.catch_up(&mut state, file)
    }

    /// The SHA-256 (hex) once every part is written; an error if some bytes were never written.
    pub fn finish(&self, file: &File) -> std::io::Result<String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.catch_up(&mut state, file)?;
        if state.hashed != self.size {
            return Err(std::io::Error::other(format!(
                "only the first {} of {} bytes were written",
                state.hashed, self.size
            )));
        }
        Ok(hex::encode(std::mem::take(&mut state.hasher).finalize()))
    }

    /// Reads back and hashes what was written beyond the hashed prefix, as far as it is contiguous.
    fn catch_up(&self, state: &mut State, file: &File) -> std::io::Result<()> {
        let mut buf = Vec::new();
        while state.hashed < self.size {
            let part = (state.hashed / self.part_size) as usize;
            let frontier = part as u64 * self.part_size + state.written[part];
            if frontier <= state.hashed {
                break;
            }
            if buf.is_empty() {
                buf = vec![0u8; 1 << 20];
            }
            let n = ((frontier - state.hashed) as usize).min(buf.len());
            file.read_exact_at(&mut buf[..n], state.hashed)?;
            state.hasher.update(&buf[..n]);
            state.hashed += n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Writes `data` as parts of `part` bytes in blocks of `block` bytes, visiting the parts' blocks in the
    /// interleaving `order` gives, and returns what the hasher says.
    fn hash_in_parts(data: &[u8], part: usize, block: usize, order: &[usize]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        let hasher = OrderedHasher::new(data.len() as u64, part as u64);
        let parts: Vec<(usize, usize)> = (0..data.len().div_ceil(part))
            .map(|i| (i * part, ((i + 1) * part).min(data.len())))
            .collect();
        let mut next: Vec<usize> = parts.iter().map(|p| p.0).collect();
        let mut turn = 0;
        while next.iter().zip(&parts).any(|(n, p)| n < &p.1) {
            // The next part with blocks left, starting from the one `order` names.
            let pick = order.get(turn).copied().unwrap_or(0) % parts.len();
            turn += 1;
            let Some(i) = (0..parts.len())
                .map(|k| (pick + k) % parts.len())
                .find(|&i| next[i] < parts[i].1)
            else {
                break;
            };
            let (at, end) = (next[i], (next[i] + block).min(parts[i].1));
            file.write_all_at(&data[at..end], at as u64).unwrap();
            hasher.written(&file, at as u64, &[&data[at..end]]).unwrap();
            next[i] = end;
        }
        hasher.finish(&file).unwrap()
    }

    proptest! {
        #[test]
        fn parts_written_in_any_order_hash_like_the_whole_file(
            data in proptest::collection::vec(any::<u8>(), 1..20_000),
            part in 1usize..5_000,
            block in 1usize..3_000,
            order in proptest::collection::vec(any::<usize>(), 0..200),
        ) {
            let expected = hex::encode(Sha256::digest(&data));
            prop_assert_eq!(hash_in_parts(&data, part, block, &order), expected);
        }
    }

    #[test]
    fn a_part_never_written_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        let hasher = OrderedHasher::new(10, 5);
        file.write_all_at(b"hello", 0).unwrap();
        hasher.written(&file, 0, &[b"hello"]).unwrap();
        let err = hasher.finish(&file).unwrap_err();
        assert_eq!(err.to_string(), "only the first 5 of 10 bytes were written");
    }
}
