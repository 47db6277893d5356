//! SHA-256 of a file written as concurrent ranged parts. Writers record what they wrote; one hashing thread reads
//! the file back in order as the written prefix grows and hashes it, so the hash runs beside the download instead
//! of after it, and no writer ever waits for it. The bytes read back were just written, so they come from the page
//! cache (on EFS too: the NFS client keeps the pages it wrote).
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use sha2::{Digest, Sha256};

pub struct OrderedHasher {
    size: u64,
    part_size: u64,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// Per part, the bytes written from its start (each part writes its blocks in order).
    written: Vec<u64>,
    /// No more writes will come: every part is done, or the copy failed.
    closed: bool,
}

const READ_BLOCK: usize = 1 << 20;

impl OrderedHasher {
    /// A file of `size` bytes, written as parts of `part_size` bytes (the last one shorter).
    pub fn new(size: u64, part_size: u64) -> OrderedHasher {
        let part_size = part_size.max(1);
        OrderedHasher {
            size,
            part_size,
            state: Mutex::new(State {
                written: vec![0; size.div_ceil(part_size) as usize],
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Records that `len` bytes were written at `offset`, as the next block of their part.
    pub fn written(&self, offset: u64, len: u64) {
        let mut state = self.lock();
        let part = (offset / self.part_size) as usize;
        if let Some(w) = state.written.get_mut(part) {
            *w = offset + len - part as u64 * self.part_size;
        }
        drop(state);
        self.changed.notify_one();
    }

    /// No more writes will come (every part is written, or the copy failed): `hash` returns once it has hashed
    /// what there is.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_one();
    }

    /// Reads `file` back in order as its prefix is written and returns its SHA-256 (hex); blocks until every byte
    /// is hashed, or fails if the hasher is closed first. Runs on a thread of its own, beside the writers.
    pub fn hash(&self, file: &File) -> std::io::Result<String> {
        let mut hasher = Sha256::new();
        let mut hashed = 0u64;
        let mut buf = vec![0u8; READ_BLOCK.min(self.size as usize)];
        while hashed < self.size {
            let frontier = {
                let mut state = self.lock();
                loop {
                    let frontier = self.frontier(&state, hashed);
                    if frontier > hashed {
                        break frontier;
                    }
                    if state.closed {
                        return Err(std::io::Error::other(format!(
                            "only the first {hashed} of {} bytes were written",
                            self.size
                        )));
                    }
                    state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            };
            while hashed < frontier {
                let n = ((frontier - hashed) as usize).min(buf.len());
                file.read_exact_at(&mut buf[..n], hashed)?;
                hasher.update(&buf[..n]);
                hashed += n as u64;
            }
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// The end of the contiguous written prefix, from `hashed` on.
    fn frontier(&self, state: &State, hashed: u64) -> u64 {
        let mut part = (hashed / self.part_size) as usize;
        let mut end = hashed;
        while let Some(&w) = state.written.get(part) {
            let start = part as u64 * self.part_size;
            end = end.max(start + w);
            let full = self.part_size.min(self.size - start);
            if w < full {
                break;
            }
            part += 1;
        }
        end
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Closes the hasher when dropped: a copy that ends, well or not, never leaves the hashing thread waiting.
pub struct CloseOnDrop(pub Arc<OrderedHasher>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A new file in `dir`, open for reading and writing.
    fn scratch_file(dir: &tempfile::TempDir) -> File {
        File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("f"))
            .unwrap()
    }

    /// Writes `data` as parts of `part` bytes in blocks of `block` bytes, visiting the parts' blocks in the
    /// interleaving `order` gives, while the hasher runs on its own thread; returns what the hasher says.
    fn hash_in_parts(data: &[u8], part: usize, block: usize, order: &[usize]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = scratch_file(&dir);
        let hasher = OrderedHasher::new(data.len() as u64, part as u64);
        std::thread::scope(|scope| {
            let hashing = scope.spawn(|| hasher.hash(&file));
            write_in_parts(&file, &hasher, data, part, block, order);
            hasher.close();
            hashing.join().unwrap().unwrap()
        })
    }

    fn write_in_parts(
        file: &File,
        hasher: &OrderedHasher,
        data: &[u8],
        part: usize,
        block: usize,
        order: &[usize],
    ) {
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
            hasher.written(at as u64, (end - at) as u64);
            next[i] = end;
        }
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
    fn a_hasher_waiting_for_bytes_stops_when_the_copy_ends_early() {
        let dir = tempfile::tempdir().unwrap();
        let file = scratch_file(&dir);
        let hasher = Arc::new(OrderedHasher::new(10, 5));
        let copy = CloseOnDrop(hasher.clone());
        let err = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| hasher.hash(&file));
            file.write_all_at(b"hello", 0).unwrap();
            hasher.written(0, 5);
            // The second part never comes: the copy fails and its guard closes the hasher.
            drop(copy);
            hashing.join().unwrap().unwrap_err()
        });
        assert_eq!(err.to_string(), "only the first 5 of 10 bytes were written");
    }

    #[test]
    fn a_part_never_written_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = scratch_file(&dir);
        let hasher = OrderedHasher::new(10, 5);
        file.write_all_at(b"hello", 0).unwrap();
        hasher.written(0, 5);
        hasher.close();
        let err = hasher.hash(&file).unwrap_err();
        assert_eq!(err.to_string(), "only the first 5 of 10 bytes were written");
    }
}
