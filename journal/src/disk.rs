//! What the journal directory's filesystem can promise, checked before a
//! journal opens (DESIGN §10, FORMAT.md "What the design assumes of the
//! disk").
//!
//! Two things make the ack rule impossible to keep silently:
//! - a memory filesystem (tmpfs, ramfs): an fdatasync there makes nothing
//!   durable, so acks would come from memory. Refused unless
//!   [`crate::JournalConfig::allow_volatile`] says the operator accepts it.
//! - a filesystem that refuses `O_DIRECT` (some FUSE and network
//!   filesystems, older overlayfs, tmpfs before Linux 6.6): EINVAL at the
//!   open or at the first write. Refused unless
//!   [`crate::JournalConfig::buffered_io`] asks for buffered writes, each
//!   followed by fdatasync before the ack.
//!
//! The O_DIRECT probe writes one aligned block to a scratch file
//! (`direct-io.probe`, never a segment: no block of a segment is written
//! outside a commit) and removes it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::aligned::AlignedBuf;
use crate::error::{JournalError, Result};
use crate::format::BLOCK_BYTES;

/// The scratch file of the O_DIRECT probe (no segment extension, so
/// recovery and `helios-journal check` ignore a leftover).
pub const DIRECT_IO_PROBE_FILE: &str = "direct-io.probe";

/// `statfs` magic numbers of the filesystems the journal names in its
/// messages (linux/magic.h).
const KNOWN_FILESYSTEMS: [(u64, &str); 19] = [
    (0xEF53, "ext4"), // also ext2/ext3: one magic
    (0x5846_5342, "xfs"),
    (0x9123_683E, "btrfs"),
    (0x2FC1_2FC1, "zfs"),
    (0xF2F5_2010, "f2fs"),
    (0x0102_1994, "tmpfs"),
    (0x8584_58F6, "ramfs"),
    (0x794C_7630, "overlayfs"),
    (0x6573_5546, "fuse"),
    (0x6969, "nfs"),
    (0xFF53_4D42, "cifs"),
    (0xFE53_4D42, "smb2"),
    (0x0102_1997, "9p"),
    (0x6A65_6A62, "virtiofs"),
    (0x7366_746E, "ntfs3"),
    (0x5346_544E, "ntfs"),
    (0x4d44, "vfat"),
    (0x2011_BAB0, "exfat"),
    (0x0BD0_0BD0, "lustre"),
];
const TMPFS_MAGIC: u64 = 0x0102_1994;
const RAMFS_MAGIC: u64 = 0x8584_58F6;

/// The filesystem a directory is on, as `statfs` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filesystem {
    /// `f_type`.
    pub magic: u64,
}

impl Filesystem {
    /// The filesystem holding `dir`.
    pub fn of(dir: &Path) -> io::Result<Filesystem> {
        let mut path = dir.as_os_str().as_bytes().to_vec();
        if path.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path contains a NUL byte",
            ));
        }
        path.push(0);
        // SAFETY: `path` is NUL-terminated and `st` is a plain C struct
        // statfs fills in.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statfs(path.as_ptr().cast(), &mut st) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // f_type is a signed word on some targets; the magics are 32-bit.
        Ok(Filesystem {
            magic: st.f_type as u64 & 0xFFFF_FFFF,
        })
    }

    /// A name for messages: `ext4`, `tmpfs`, … or `unknown (f_type 0x…)`.
    pub fn name(&self) -> String {
        KNOWN_FILESYSTEMS
            .iter()
            .find(|(magic, _)| *magic == self.magic)
            .map_or_else(
                || format!("unknown (statfs f_type {:#x})", self.magic),
                |(_, name)| (*name).to_string(),
            )
    }

    /// True for filesystems whose contents live in memory only (tmpfs,
    /// ramfs): nothing written there survives a power loss or a reboot.
    pub fn is_volatile(&self) -> bool {
        self.magic == TMPFS_MAGIC || self.magic == RAMFS_MAGIC
    }
}

/// What [`check_dir`] found about a journal directory that may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskCheck {
    /// The filesystem's name.
    pub filesystem: String,
    /// It is a memory filesystem (allowed by the configuration).
    pub volatile: bool,
    /// Commits are buffered writes + fdatasync (by configuration), not
    /// O_DIRECT.
    pub buffered: bool,
}

/// Checks that `dir` (which must exist) can hold a journal under this
/// policy: refuses a memory filesystem unless `allow_volatile`, and, unless
/// `buffered`, a filesystem that refuses an O_DIRECT open or write.
pub fn check_dir(dir: &Path, buffered: bool, allow_volatile: bool) -> Result<DiskCheck> {
    let fs = Filesystem::of(dir).map_err(|e| JournalError::io("statfs", dir, e))?;
    let filesystem = fs.name();
    if fs.is_volatile() && !allow_volatile {
        return Err(JournalError::Volatile {
            dir: dir.to_path_buf(),
            filesystem,
        });
    }
    if !buffered {
        probe_direct_io(dir).map_err(|(stage, source)| {
            if source.raw_os_error() == Some(libc::EINVAL) {
                JournalError::DirectIoRefused {
                    dir: dir.to_path_buf(),
                    filesystem: filesystem.clone(),
                    stage,
                    source,
                }
            } else {
                let op = if stage == "open" {
                    "O_DIRECT probe open"
                } else {
                    "O_DIRECT probe write"
                };
                JournalError::io(op, dir.join(DIRECT_IO_PROBE_FILE), source)
            }
        })?;
    }
    Ok(DiskCheck {
        filesystem,
        volatile: fs.is_volatile(),
        buffered,
    })
}

/// Opens the probe file with O_DIRECT and writes one aligned block, the
/// way commits do. On failure, says at which step (`open` or `first
/// write`).
fn probe_direct_io(dir: &Path) -> std::result::Result<(), (&'static str, io::Error)> {
    let path: PathBuf = dir.join(DIRECT_IO_PROBE_FILE);
    let file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .map_err(|e| ("open", e))?;
    let mut block = AlignedBuf::zeroed(BLOCK_BYTES);
    block.extend(BLOCK_BYTES);
    let written = file.write_all_at(block.as_slice(), 0);
    drop(file);
    // The probe file is scratch: failing to remove it changes nothing.
    let _ = std::fs::remove_file(&path);
    written.map_err(|e| ("first write", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem_names_come_from_the_statfs_magic() {
        assert_eq!(Filesystem { magic: 0xEF53 }.name(), "ext4");
        assert_eq!(Filesystem { magic: TMPFS_MAGIC }.name(), "tmpfs");
        assert!(Filesystem { magic: TMPFS_MAGIC }.is_volatile());
        assert!(Filesystem { magic: RAMFS_MAGIC }.is_volatile());
        assert!(!Filesystem { magic: 0xEF53 }.is_volatile());
        assert_eq!(
            Filesystem { magic: 0x1234 }.name(),
            "unknown (statfs f_type 0x1234)"
        );
    }

    #[test]
    fn a_directory_on_a_disk_filesystem_passes_and_leaves_no_probe_file() {
        let dir = tempfile::tempdir().unwrap();
        let fs = Filesystem::of(dir.path()).unwrap();
        if fs.is_volatile() {
            // A tmpfs /tmp: the refusal is what this host must give.
            let err = check_dir(dir.path(), false, false).unwrap_err();
            assert!(matches!(err, JournalError::Volatile { .. }), "{err}");
            return;
        }
        let check = check_dir(dir.path(), false, false).unwrap();
        assert!(!check.volatile && !check.buffered);
        assert!(!dir.path().join(DIRECT_IO_PROBE_FILE).exists());
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = check_dir(&missing, false, false).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
