#if canImport(Glibc)
    import Glibc
#endif

/// What identifies a file's content for the cache: if any of these change, the file may have
/// changed. Nanosecond mtime and ctime catch a rewrite with the same size and mtime (the
/// rewrite moves ctime, which no user call can set).
package struct FileIdentity: Hashable, Sendable {
    package var device: UInt64
    package var inode: UInt64
    package var size: Int64
    package var mtimeNanos: Int64
    package var ctimeNanos: Int64

    package init(device: UInt64, inode: UInt64, size: Int64, mtimeNanos: Int64, ctimeNanos: Int64) {
        self.device = device
        self.inode = inode
        self.size = size
        self.mtimeNanos = mtimeNanos
        self.ctimeNanos = ctimeNanos
    }

    init(_ st: stat) {
        device = UInt64(truncatingIfNeeded: st.st_dev)
        inode = UInt64(truncatingIfNeeded: st.st_ino)
        size = Int64(truncatingIfNeeded: st.st_size)
        mtimeNanos = Int64(truncatingIfNeeded: st.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(st.st_mtim.tv_nsec)
        ctimeNanos = Int64(truncatingIfNeeded: st.st_ctim.tv_sec) &* 1_000_000_000 &+ Int64(st.st_ctim.tv_nsec)
    }
}
