//! The sink's WAL checkpoints, on a thread of their own.
//!
//! A checkpoint copies the pages that committed transactions appended to
//! the WAL back into the database file and fsyncs it. SQLite runs it on the
//! committing connection by default (`wal_autocheckpoint`), so the sink's
//! writer thread spent about a third of a backlog drain copying and
//! syncing pages instead of inserting the next batch (measured:
//! `loadtest/drain.sh`, 3 M events, 147 k events/s with the inline
//! checkpoint, 219 k with none at all). In WAL mode a checkpoint on another
//! connection runs beside the writer: [`Checkpointer`] keeps one on its own
//! thread and runs a PASSIVE checkpoint (it never waits for a lock and
//! never blocks the writer or a reader) each time the sink says it
//! committed. The sink's own `wal_autocheckpoint` rises to
//! [`INLINE_CHECKPOINT_PAGES`], a backstop: should this thread fall behind
//! or fail, the writer checkpoints inline again once the WAL holds that
//! many pages, as it did before, so the WAL stays bounded.
//!
//! Durability does not move: a commit is durable when its WAL frames are
//! fsynced (`synchronous=FULL`), before and after; a checkpoint only makes
//! the database file catch up, and a crash mid-checkpoint is recovered from
//! the WAL at the next open.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::error::StoreError;

use super::schema::open_writer;

/// The sink connection's `wal_autocheckpoint` while a [`Checkpointer`]
/// runs: 65,536 pages of 4 KiB, 256 MiB of WAL (about eight of the
/// collector's default 32,768-event batches), reached only when the
/// checkpoint thread cannot keep up.
pub const INLINE_CHECKPOINT_PAGES: i64 = 65_536;

/// What the WAL file is cut back to when SQLite starts it over (it reuses
/// the file from its start once every frame is checkpointed): 64 MiB, room
/// for two of the collector's default batches, so the high-water mark of a
/// backlog does not stay on disk.
const WAL_KEPT_BYTES: i64 = 64 * 1024 * 1024;

/// The name of the checkpoint thread (`top -H`, `perf`).
const THREAD_NAME: &str = "helios-store-ckpt";

/// A thread that checkpoints the WAL of one database after each commit it is
/// told of. Dropping it stops the thread (after the checkpoint in progress).
pub(crate) struct Checkpointer {
    /// `None` only while dropping. One slot: a nudge while one is pending
    /// adds nothing, since the next checkpoint copies every frame there is.
    nudge: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Hands the checkpoints of `writer`, the sink's connection to `path`
    /// (opened and migrated already), to a new thread with a connection of
    /// its own: `writer` keeps only the inline backstop.
    pub(crate) fn start(writer: &Connection, path: &Path) -> Result<Self, StoreError> {
        let open_error = |context, source| StoreError::Open {
            path: path.to_owned(),
            context,
            source,
        };
        writer
            .pragma_update(None, "wal_autocheckpoint", INLINE_CHECKPOINT_PAGES)
            .map_err(|e| open_error("setting wal_autocheckpoint", Box::new(e)))?;
        writer
            .pragma_update(None, "journal_size_limit", WAL_KEPT_BYTES)
            .map_err(|e| open_error("setting journal_size_limit", Box::new(e)))?;
        let conn = open_writer(path)?;
        let (nudge, nudged) = sync_channel(1);
        let thread_path = path.to_owned();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || checkpoint_when_nudged(&conn, &thread_path, &nudged))
            .map_err(|e| open_error("starting the WAL checkpoint thread", Box::new(e)))?;
        Ok(Self {
            nudge: Some(nudge),
            thread: Some(thread),
        })
    }

    /// Says a transaction committed: the thread checkpoints soon. Never
    /// blocks.
    pub(crate) fn committed(&self) {
        if let Some(nudge) = &self.nudge {
            // Full: a checkpoint is pending and will copy this commit too.
            // Disconnected: the thread is gone (it panicked), and the
            // inline backstop keeps the WAL bounded. Neither needs more.
            let _ = nudge.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        drop(self.nudge.take());
        if let Some(thread) = self.thread.take() {
            // A panic there has been printed already; nothing to add.
            let _ = thread.join();
        }
    }
}

/// The thread's loop: one PASSIVE checkpoint per nudge, until the sink is
/// dropped.
fn checkpoint_when_nudged(conn: &Connection, path: &Path, nudged: &Receiver<()>) {
    while nudged.recv().is_ok() {
        // PASSIVE returns (busy, frames in the WAL, frames checkpointed);
        // it copies what no reader still needs and leaves the rest for the
        // next one, so "busy" is not an error.
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match result {
            Ok((wal_frames, checkpointed_frames)) => {
                debug_assert!(checkpointed_frames <= wal_frames || wal_frames < 0);
                tracing::trace!(
                    store = %path.display(),
                    wal_frames,
                    checkpointed_frames,
                    "checkpointed"
                );
            }
            Err(error) => tracing::warn!(
                store = %path.display(),
                %error,
                "WAL checkpoint failed; the writer checkpoints inline once the WAL \
                 holds {INLINE_CHECKPOINT_PAGES} pages"
            ),
        }
    }
}
