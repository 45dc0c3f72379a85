//! A file preallocated on disk and mapped shared into memory: what the ack journal (`journal.rs`) writes
//! its entries into, so that an append is a copy into the page cache instead of a `write(2)` (~1.2 µs of
//! the loop thread's CPU per record in situ, see docs/performance.md, branch `ackmap`).
//!
//! What a store into the mapping gives: the page is the kernel's page cache page, so the bytes are in
//! the file as soon as the store is done, as durable against a crash of the process as a `write(2)`;
//! against a power cut only after [`MappedFile::sync`] (`msync(MS_SYNC)`, what `fdatasync` is for a
//! `write(2)`). The file's blocks are reserved with `posix_fallocate` before they are mapped: a full
//! filesystem is an error from [`MappedFile::grow`], never a `SIGBUS` on a store into a page the
//! filesystem has no room for. That holds where allocated blocks are written in place: ext2/3/4, XFS and
//! tmpfs. A copy-on-write filesystem (btrfs, ZFS, ...) allocates anew at every write, and refuses a
//! store into a mapped page with `SIGBUS` when it is full; an overlay or network filesystem says nothing
//! certain. On any filesystem but those three the file is not mapped and [`MappedFile::put`] is a
//! `pwrite(2)` into the preallocated room (what the journal did before, plus the room).
//!
//! The crate denies `unsafe`: this module is one of its two exceptions (with `bulk_body.rs`), for the
//! system calls std does not wrap (`mmap`, `munmap`, `msync`, `posix_fallocate`) and the slice over the
//! mapping. Each block says why it is sound.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;

/// A file of `len` bytes, all of them allocated on disk and, where that is safe ([`maps_safely`]), mapped
/// read-write, shared (`len` 0: nothing allocated or mapped yet, the file empty).
pub struct MappedFile {
    file: File,
    /// The mapping's start; dangling (never dereferenced) while `len` is 0 or `mapped` is false.
    map: NonNull<u8>,
    len: usize,
    mapped: bool,
}

/// `f_type` of the filesystems whose preallocated blocks are written in place (`statfs(2)`): ext2/3/4,
/// XFS, tmpfs.
const IN_PLACE_FILESYSTEMS: [i64; 3] = [0xEF53, 0x5846_5342, 0x0102_1994];

/// Whether a store into a mapped page of `file`'s preallocated room cannot fail for want of space.
/// Linux only (`f_type` is Linux's); elsewhere (an illumos zone's ZFS, where `posix_fallocate` is
/// refused anyway) the file is never mapped.
#[cfg(not(target_os = "linux"))]
pub fn maps_safely(_file: &File) -> bool {
    false
}

/// Whether a store into a mapped page of `file`'s preallocated room cannot fail for want of space.
#[cfg(target_os = "linux")]
pub fn maps_safely(file: &File) -> bool {
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs writes one `struct statfs` into the buffer we pass, which is exactly that size and
    // lives across the call; the file descriptor is `file`'s, open for the call's duration.
    let code = unsafe { libc::fstatfs(file.as_raw_fd(), buf.as_mut_ptr()) };
    if code != 0 {
        return false;
    }
    // SAFETY: fstatfs returned 0, so it filled the whole struct.
    let buf = unsafe { buf.assume_init() };
    #[allow(clippy::useless_conversion)] // f_type's type differs between targets
    IN_PLACE_FILESYSTEMS.contains(&i64::from(buf.f_type))
}

// SAFETY: `MappedFile` owns its mapping as a `Vec` owns its buffer: nothing else in the process refers to
// it, and every access goes through `&self`/`&mut self`, so moving it to another thread is as sound as
// moving a `Vec<u8>` (the raw pointer is what makes it `!Send` by default).
unsafe impl Send for MappedFile {}
// SAFETY: `&MappedFile` gives no access to the bytes (only `bytes_mut` does, through `&mut self`); `sync`
// and `len` read no mapped memory.
unsafe impl Sync for MappedFile {}

/// `posix_fallocate(fd, 0, len)`: the file at least `len` bytes long with every block allocated.
fn allocate(file: &File, len: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: a plain system call on a file descriptor `file` owns for the duration of the call; no memory
    // is passed. posix_fallocate returns the error number instead of setting errno.
    let code = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if code == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(code)) }
}

/// Map the first `len` (> 0) bytes of `file`, read-write and shared.
fn map(file: &File, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a new mapping at an address the kernel chooses (null hint, no MAP_FIXED), so no existing
    // memory of the process is replaced; `len` > 0 and within the file's allocated size (the callers
    // allocate first), so no page of it lies beyond the end of the file.
    let at = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, file.as_raw_fd(), 0)
    };
    if at == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(at.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned a null mapping"))
}

/// Undo [`map`].
fn unmap(at: NonNull<u8>, len: usize) {
    // SAFETY: `at`/`len` are exactly a mapping `map` made and that nothing refers to any more (its owner
    // is replacing or dropping it, and the only borrows of its bytes were through `&mut` of the owner).
    // munmap of a valid mapping cannot fail.
    unsafe { libc::munmap(at.as_ptr().cast(), len) };
}

impl MappedFile {
    /// Create (or empty) the file at `path`, mode 0600, with no room yet: [`MappedFile::grow`] allocates
    /// (and maps) it, so a full filesystem still lets the file be made, and says so when it grows. Mapped
    /// if the filesystem [`maps_safely`].
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).mode(0o600).open(path)?;
        let mapped = maps_safely(&file);
        Ok(Self { file, map: NonNull::dangling(), len: 0, mapped })
    }

    /// [`MappedFile::create`], never mapped: `put` writes with `pwrite(2)` (what a copy-on-write
    /// filesystem gets; the tests' way to that path on any filesystem).
    pub fn create_unmapped(path: &Path) -> io::Result<Self> {
        let mut created = Self::create(path)?;
        created.mapped = false;
        Ok(created)
    }

    /// Whether the room is mapped (`put` is a copy, no system call).
    pub fn is_mapped(&self) -> bool {
        self.mapped
    }

    /// Write `data` at `at`, within the room (`at + data.len() <= len`): a copy into the mapping, or a
    /// `pwrite(2)` when it is not mapped.
    pub fn put(&mut self, at: usize, data: &[u8]) -> io::Result<()> {
        let end = at.checked_add(data.len()).filter(|&end| end <= self.len);
        let Some(end) = end else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a write beyond the allocated room"));
        };
        if self.mapped {
            self.bytes_mut()[at..end].copy_from_slice(data);
            Ok(())
        } else {
            std::os::unix::fs::FileExt::write_all_at(&self.file, data, at as u64)
        }
    }

    /// The bytes mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapped bytes, to be written (none when not mapped).
    fn bytes_mut(&mut self) -> &mut [u8] {
        if self.len == 0 || !self.mapped {
            return &mut [];
        }
        // SAFETY: `map` is a live mapping of `len` bytes, readable and writable, that this object owns
        // (created in `create`/`grow`, unmapped only in `grow` and `drop`); the borrow of `self` makes it
        // the only reference to those bytes for its lifetime. Every page is backed by an allocated block
        // within the file (posix_fallocate before mmap), so a store cannot fault for want of space; the
        // bytes are plain `u8`, valid whatever another process might write into the file (the file is
        // mode 0600 in the spool's directory, and the spool's lock keeps other receivers out).
        unsafe { std::slice::from_raw_parts_mut(self.map.as_ptr(), self.len) }
    }

    /// At least `len` bytes: allocate the blocks, then map the larger file (the old mapping goes). On an
    /// error (ENOSPC: a full filesystem) the mapping is as before. Unmapped, the room is only a bound for
    /// `put`: nothing is allocated (ZFS refuses `posix_fallocate` with EINVAL, and a copy-on-write
    /// filesystem could not keep what it reserved anyway); `pwrite(2)` says ENOSPC itself.
    pub fn grow(&mut self, len: usize) -> io::Result<()> {
        if len <= self.len {
            return Ok(());
        }
        if self.mapped {
            allocate(&self.file, len)?;
            let larger = map(&self.file, len)?;
            if self.len > 0 {
                unmap(self.map, self.len);
            }
            self.map = larger;
        }
        self.len = len;
        Ok(())
    }

    /// `msync(MS_SYNC)` of the pages holding `range`: on disk when this returns (what `fdatasync` does for
    /// data written with `write(2)`, and does here when the room is not mapped).
    pub fn sync(&self, range: std::ops::Range<usize>) -> io::Result<()> {
        if !self.mapped {
            return self.file.sync_data();
        }
        let page = page_size();
        let start = range.start / page * page;
        let end = range.end.min(self.len);
        if start >= end {
            return Ok(());
        }
        // SAFETY: [start, end) lies within this object's live mapping (start page-aligned as msync
        // requires, end clamped to the mapping's length); msync reads no memory of the process itself, it
        // asks the kernel to write back the pages of that range.
        let code = unsafe { libc::msync(self.map.as_ptr().add(start).cast(), end - start, libc::MS_SYNC) };
        if code == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    }

    /// Unmap the file and cut it to its first `keep` bytes (what is left of its preallocated room goes).
    pub fn close(self, keep: u64) -> io::Result<()> {
        let file = self.file.try_clone()?;
        drop(self);
        file.set_len(keep)
    }

    #[cfg(test)]
    pub(crate) fn replace_file_for_test(&mut self, file: File) {
        self.file = file;
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if self.len > 0 && self.mapped {
            unmap(self.map, self.len);
        }
    }
}

/// The system's page size (msync wants a page-aligned start).
fn page_size() -> usize {
    // SAFETY: sysconf reads a system constant; no memory is passed.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("auditrecv-mapped-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("file")
    }

    fn puts_land_in_the_file(mut m: MappedFile, path: &Path) {
        assert_eq!((m.len(), std::fs::read(path).unwrap().len()), (0, 0), "emptied, no room yet");
        assert_eq!(m.put(0, b"x").unwrap_err().kind(), io::ErrorKind::InvalidInput, "no room: refused");
        m.sync(0..10).unwrap(); // nothing written: nothing to sync
        m.grow(8192).unwrap();
        let allocated = if m.is_mapped() { 8192 } else { 0 }; // unmapped: a bound for put, nothing allocated
        assert_eq!(std::fs::read(path).unwrap(), vec![0; allocated], "preallocated as zeros");
        m.put(4090, b"0123456789").unwrap();
        assert_eq!(&std::fs::read(path).unwrap()[4090..4100], b"0123456789", "in the page cache already");
        m.sync(4090..4100).unwrap();
        m.grow(4096).unwrap();
        assert_eq!(m.len(), 8192, "growing to less is nothing");
        m.grow(20_000).unwrap();
        m.put(19_999, b"!").unwrap();
        assert!(m.put(19_999, b"!!").is_err(), "beyond the room");
        let data = std::fs::read(path).unwrap();
        assert_eq!((data.len(), &data[4090..4100], data[19_999]), (20_000, &b"0123456789"[..], b'!'));
        m.close(4100).unwrap();
        assert_eq!(&std::fs::read(path).unwrap()[4090..], b"0123456789", "closing cuts off the unused room");
    }

    #[test]
    fn puts_land_in_the_file_mapped_where_that_is_safe() {
        let path = scratch("mapped");
        std::fs::write(&path, b"stale contents").unwrap();
        let m = MappedFile::create(&path).unwrap();
        assert_eq!(m.is_mapped(), maps_safely(&File::open(&path).unwrap()));
        puts_land_in_the_file(m, &path);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn puts_land_in_the_file_written_where_mapping_is_not_safe() {
        let path = scratch("written");
        let m = MappedFile::create_unmapped(&path).unwrap();
        assert!(!m.is_mapped());
        puts_land_in_the_file(m, &path);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn only_in_place_filesystems_are_mapped() {
        let tmp = File::open(std::env::temp_dir()).unwrap();
        let shm = File::open("/dev/shm");
        if let Ok(shm) = shm {
            assert!(maps_safely(&shm), "tmpfs");
        }
        let _ = maps_safely(&tmp); // whatever the temporary directory is on: no error
        assert!(!maps_safely(&File::open("/proc/self/stat").unwrap()), "procfs is not one of them");
    }

    #[test]
    fn a_growth_that_cannot_allocate_leaves_the_room_as_it_was() {
        let path = scratch("grow");
        let mut m = MappedFile::create(&path).unwrap();
        m.grow(4096).unwrap();
        m.put(0, &[7]).unwrap();
        m.replace_file_for_test(File::open(&path).unwrap()); // read-only: posix_fallocate fails (EBADF)
        let err = m.grow(1 << 20).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert_eq!((m.len(), std::fs::read(&path).unwrap()[0]), (4096, 7));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096);
        drop(m);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_missing_directory_is_an_error_with_its_errno() {
        let err = MappedFile::create(Path::new("/nonexistent-auditrecv-dir/file")).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
