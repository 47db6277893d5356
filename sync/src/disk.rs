//! Two hints to the file system that make a copy cheaper; neither changes what ends up in the file.
use std::fs::File;
use std::io;

/// Reserves `len` bytes for `file` before its bytes arrive: the blocks are allocated once instead of page by page
/// as writes land, and a file system without room for the object fails now, before the download. A file system
/// that cannot reserve space (EFS: NFS 4.1 has no ALLOCATE) allocates as it writes, as it would have anyway.
pub fn preallocate(file: &File, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    match reserve(file, len) {
        Err(e) if is_unsupported(&e) => Ok(()),
        other => other,
    }
}

/// Starts writing back what is dirty in `file` and returns without waiting for the disk: the copy keeps going, and
/// the fsync that ends it finds most of the file written already.
pub fn start_write_back(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the lifetime of `file`; the call reads no memory of ours. A failure
        // only means the final fsync has more to do, and that fsync reports real errors.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

#[cfg(target_os = "linux")]
fn reserve(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: the descriptor is open for the lifetime of `file`; the call reads no memory of ours.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn reserve(_file: &File, _len: u64) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

fn is_unsupported(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(e.raw_os_error(), Some(code) if code == libc::EOPNOTSUPP || code == libc::ENOSYS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::{FileExt, MetadataExt};

    #[test]
    fn a_preallocated_file_has_its_blocks_and_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let len = 3 << 20;
        preallocate(&file, len).unwrap();
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), len);
        // Blocks are counted in 512-byte units; a sparse file would have none.
        assert!(
            meta.blocks() * 512 >= len,
            "only {} bytes allocated",
            meta.blocks() * 512
        );

        file.write_all_at(b"tail", len - 4).unwrap();
        file.write_all_at(b"head", 0).unwrap();
        start_write_back(&file);
        file.sync_all().unwrap();
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back.len() as u64, len);
        assert_eq!(&back[..4], b"head");
        assert_eq!(&back[back.len() - 4..], b"tail");
        assert!(back[4..back.len() - 4].iter().all(|&b| b == 0));
    }

    #[test]
    fn an_empty_object_reserves_nothing() {
        let mut file = tempfile::tempfile().unwrap();
        preallocate(&file, 0).unwrap();
        file.write_all(b"").unwrap();
        assert_eq!(file.metadata().unwrap().len(), 0);
    }

    #[test]
    fn a_reservation_that_cannot_be_met_is_an_error() {
        let file = tempfile::tempfile().unwrap();
        // Larger than any file system here: the error must surface, not be taken for "unsupported".
        let e = preallocate(&file, 1 << 62).unwrap_err();
        assert!(!is_unsupported(&e), "{e}");
        assert_eq!(file.metadata().unwrap().len(), 0);
    }
}
