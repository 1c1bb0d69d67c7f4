// A SQLite VFS over the default one that changes how a WAL file is written,
// never what is in it:
// - Frames are gathered and passed on at the next sync (or read, truncate,
//   size query, close, or a write that does not follow on) in writes of up to
//   64 KiB: a commit of n pages costs n/16 system calls instead of 2n.
// - When the file grows, it is extended with zeros a chunk ahead, so later
//   commits overwrite blocks already allocated and their sync writes no file
//   metadata (on ext4 that halves the sync of a small commit). Bytes past the
//   last valid frame are ignored by SQLite (frames there fail the checksum),
//   as after every WAL restart. A disk without room for the zeros gets the
//   frames appended as SQLite would write them: no commit fails for it.
//
// Contract: only for connections that sync the WAL at every commit
// (synchronous=FULL or EXTRA). SQLite makes committed frames visible to other
// connections after the sync; without it they would read frames still held
// here. Other files (the database, journals) are the default VFS's own.
#pragma once

namespace continuum {

// Registers the VFS on first use (thread-safe) and returns its name, for
// sqlite3_open_v2. Null if it could not be registered.
const char* sqlite_wal_vfs_name();

}  // namespace continuum
