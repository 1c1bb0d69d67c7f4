#include "store/sqlite/wal_vfs.h"

#include <sqlite3.h>

#include "store/sqlite/sqlite_db.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace continuum {

namespace {

constexpr const char* kVfsName = "continuum-wal";
constexpr size_t kGatherMax = 8u << 20;            // passed on earlier beyond this
constexpr sqlite3_int64 kExtendChunk = 4ll << 20;  // zeros written ahead of the last frame

struct Gathered {
  std::vector<char> bytes;      // written by SQLite, not yet passed on
  sqlite3_int64 offset = 0;     // where bytes[0] goes
  sqlite3_int64 extended = 0;   // the file holds real (zero or frame) blocks up to here
  bool extend_ahead = true;     // off after an extension failed (a full disk), until a truncate
};

// SQLite allocates szOsFile bytes per open file: this header, then the
// default VFS's file object.
struct WalFile {
  sqlite3_file base;
  sqlite3_file* inner;
  Gathered* gathered;
};
constexpr size_t kHeaderSize = (sizeof(WalFile) + 15) & ~size_t{15};

sqlite3_vfs* default_vfs() {
  configure_sqlite_once();  // before the lookup initializes SQLite
  static sqlite3_vfs* vfs = sqlite3_vfs_find(nullptr);
  return vfs;
}

WalFile* as_wal(sqlite3_file* file) { return reinterpret_cast<WalFile*>(file); }
sqlite3_file* inner_of(sqlite3_file* file) { return as_wal(file)->inner; }

// The default VFS writes at most 128 KiB less one byte per call (more fails
// as a full disk): larger writes go in pieces of this size.
constexpr sqlite3_int64 kWritePieceMax = 64 << 10;

int write_in_pieces(sqlite3_file* inner, const char* data, sqlite3_int64 size, sqlite3_int64 offset) {
  for (sqlite3_int64 done = 0; done < size;) {
    int amount = static_cast<int>(std::min(size - done, kWritePieceMax));
    int rc = inner->pMethods->xWrite(inner, data + done, amount, offset + done);
    if (rc != SQLITE_OK) return rc;
    done += amount;
  }
  return SQLITE_OK;
}

// Writes zeros over [from, to): blocks SQLite will overwrite later.
int write_zeros(sqlite3_file* inner, sqlite3_int64 from, sqlite3_int64 to) {
  static const std::vector<char> kZeros(static_cast<size_t>(kWritePieceMax), 0);
  for (; from < to; from += kWritePieceMax) {
    if (int rc = write_in_pieces(inner, kZeros.data(), std::min(to - from, kWritePieceMax), from); rc != SQLITE_OK) {
      return rc;
    }
  }
  return SQLITE_OK;
}

// The file is extended before the frames are written over the zeros. If the
// disk has no room for the zeros ahead, the frames are written as SQLite
// would write them (appended), and this file is not extended ahead again
// until it is truncated: a nearly full disk fails no commit that SQLite
// alone would have written.
int pass_on(sqlite3_file* file) {
  WalFile* wal = as_wal(file);
  Gathered& gathered = *wal->gathered;
  if (gathered.bytes.empty()) return SQLITE_OK;
  sqlite3_int64 end = gathered.offset + static_cast<sqlite3_int64>(gathered.bytes.size());
  if (end > gathered.extended && gathered.extend_ahead) {
    sqlite3_int64 ahead = (end + kExtendChunk - 1) / kExtendChunk * kExtendChunk;
    if (write_zeros(wal->inner, gathered.extended, ahead) == SQLITE_OK) {
      gathered.extended = ahead;
    } else {
      gathered.extend_ahead = false;
    }
  }
  int rc = write_in_pieces(wal->inner, gathered.bytes.data(), static_cast<sqlite3_int64>(gathered.bytes.size()),
                           gathered.offset);
  if (rc == SQLITE_OK) gathered.extended = std::max(gathered.extended, end);
  gathered.bytes.clear();
  return rc;
}

int wal_close(sqlite3_file* file) {
  WalFile* wal = as_wal(file);
  int passed = pass_on(file);
  int rc = wal->inner->pMethods->xClose(wal->inner);
  delete wal->gathered;
  wal->gathered = nullptr;
  return passed != SQLITE_OK ? passed : rc;
}

int wal_read(sqlite3_file* file, void* buffer, int amount, sqlite3_int64 offset) {
  if (int rc = pass_on(file); rc != SQLITE_OK) return rc;
  return inner_of(file)->pMethods->xRead(inner_of(file), buffer, amount, offset);
}

int wal_write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  Gathered& gathered = *as_wal(file)->gathered;
  bool follows_on = !gathered.bytes.empty() &&
                    offset == gathered.offset + static_cast<sqlite3_int64>(gathered.bytes.size()) &&
                    gathered.bytes.size() + static_cast<size_t>(amount) <= kGatherMax;
  if (!follows_on) {
    if (int rc = pass_on(file); rc != SQLITE_OK) return rc;
    gathered.offset = offset;
  }
  const char* bytes = static_cast<const char*>(data);
  gathered.bytes.insert(gathered.bytes.end(), bytes, bytes + amount);
  return SQLITE_OK;
}

int wal_truncate(sqlite3_file* file, sqlite3_int64 size) {
  if (int rc = pass_on(file); rc != SQLITE_OK) return rc;
  int rc = inner_of(file)->pMethods->xTruncate(inner_of(file), size);
  if (rc == SQLITE_OK) {
    Gathered& gathered = *as_wal(file)->gathered;
    gathered.extended = std::min(gathered.extended, size);
    gathered.extend_ahead = true;  // room may have been freed
  }
  return rc;
}

int wal_sync(sqlite3_file* file, int flags) {
  if (int rc = pass_on(file); rc != SQLITE_OK) return rc;
  return inner_of(file)->pMethods->xSync(inner_of(file), flags);
}

int wal_file_size(sqlite3_file* file, sqlite3_int64* size) {
  if (int rc = pass_on(file); rc != SQLITE_OK) return rc;
  return inner_of(file)->pMethods->xFileSize(inner_of(file), size);
}

int wal_lock(sqlite3_file* file, int level) { return inner_of(file)->pMethods->xLock(inner_of(file), level); }
int wal_unlock(sqlite3_file* file, int level) { return inner_of(file)->pMethods->xUnlock(inner_of(file), level); }
int wal_check_reserved_lock(sqlite3_file* file, int* out) {
  return inner_of(file)->pMethods->xCheckReservedLock(inner_of(file), out);
}
int wal_file_control(sqlite3_file* file, int op, void* arg) {
  return inner_of(file)->pMethods->xFileControl(inner_of(file), op, arg);
}
int wal_sector_size(sqlite3_file* file) { return inner_of(file)->pMethods->xSectorSize(inner_of(file)); }
int wal_device_characteristics(sqlite3_file* file) {
  return inner_of(file)->pMethods->xDeviceCharacteristics(inner_of(file));
}
// SQLite maps shared memory and pages of the database file only; forwarded
// all the same, in case a default VFS does otherwise.
int wal_shm_map(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  sqlite3_file* inner = inner_of(file);
  return inner->pMethods->iVersion >= 2 ? inner->pMethods->xShmMap(inner, region, size, extend, out) : SQLITE_IOERR;
}
int wal_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
  sqlite3_file* inner = inner_of(file);
  return inner->pMethods->iVersion >= 2 ? inner->pMethods->xShmLock(inner, offset, n, flags) : SQLITE_IOERR;
}
void wal_shm_barrier(sqlite3_file* file) {
  sqlite3_file* inner = inner_of(file);
  if (inner->pMethods->iVersion >= 2) inner->pMethods->xShmBarrier(inner);
}
int wal_shm_unmap(sqlite3_file* file, int delete_flag) {
  sqlite3_file* inner = inner_of(file);
  return inner->pMethods->iVersion >= 2 ? inner->pMethods->xShmUnmap(inner, delete_flag) : SQLITE_OK;
}
int wal_fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  *out = nullptr;  // no memory map: SQLite reads instead
  (void)file, (void)offset, (void)amount;
  return SQLITE_OK;
}
int wal_unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  (void)file, (void)offset, (void)page;
  return SQLITE_OK;
}

const sqlite3_io_methods kWalMethods = {
    3,           wal_close,         wal_read,         wal_write,      wal_truncate,
    wal_sync,    wal_file_size,     wal_lock,         wal_unlock,     wal_check_reserved_lock,
    wal_file_control, wal_sector_size, wal_device_characteristics, wal_shm_map, wal_shm_lock,
    wal_shm_barrier, wal_shm_unmap, wal_fetch,        wal_unfetch,
};

int vfs_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  (void)vfs;
  sqlite3_vfs* base = default_vfs();
  if ((flags & SQLITE_OPEN_WAL) == 0) return base->xOpen(base, name, file, flags, out_flags);
  WalFile* wal = as_wal(file);
  wal->base.pMethods = nullptr;  // SQLite calls no method of a file that failed to open
  wal->inner = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kHeaderSize);
  wal->inner->pMethods = nullptr;
  int rc = base->xOpen(base, name, wal->inner, flags, out_flags);
  sqlite3_int64 size = 0;
  if (rc == SQLITE_OK) rc = wal->inner->pMethods->xFileSize(wal->inner, &size);
  if (rc != SQLITE_OK) {
    if (wal->inner->pMethods != nullptr) wal->inner->pMethods->xClose(wal->inner);
    return rc;
  }
  wal->gathered = new Gathered{{}, 0, size, true};
  wal->base.pMethods = &kWalMethods;
  return SQLITE_OK;
}

sqlite3_vfs* make_vfs() {
  sqlite3_vfs* base = default_vfs();
  if (base == nullptr) return nullptr;
  static sqlite3_vfs vfs = *base;  // the rest (paths, time, randomness) is the default VFS's own
  vfs.pNext = nullptr;
  vfs.zName = kVfsName;
  vfs.szOsFile = static_cast<int>(kHeaderSize) + base->szOsFile;
  vfs.xOpen = vfs_open;
  return sqlite3_vfs_register(&vfs, 0) == SQLITE_OK ? &vfs : nullptr;
}

}  // namespace

const char* sqlite_wal_vfs_name() {
  static sqlite3_vfs* vfs = make_vfs();
  return vfs ? vfs->zName : nullptr;
}

}  // namespace continuum
