import CMsgPack

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Builds one MessagePack value with libmsgpack-c's packer writing into an sbuffer.
/// Not thread-safe: each thread encodes with its own writer.
package final class MessagePackWriter {
    // Behind pointers, not stored `var`s: the packer keeps the sbuffer's address (a stored
    // property's address is only valid inside `withUnsafeMutablePointer`), and every `&packer`
    // of a class's stored property is an exclusivity check at run time, about 20 per `file`
    // response (a quarter of the time it took to encode one).
    private let buffer: UnsafeMutablePointer<msgpack_sbuffer>
    private let packer: UnsafeMutablePointer<msgpack_packer>

    package init() {
        buffer = .allocate(capacity: 1)
        buffer.initialize(to: msgpack_sbuffer())
        msgpack_sbuffer_init(buffer)
        packer = .allocate(capacity: 1)
        packer.initialize(to: msgpack_packer())
        msgpack_packer_init(packer, UnsafeMutableRawPointer(buffer), msgpack_sbuffer_write)
    }

    deinit {
        msgpack_sbuffer_destroy(buffer)
        buffer.deallocate()
        packer.deallocate()
    }

    /// Bytes packed so far.
    package var count: Int { buffer.pointee.size }

    /// Forgets what was packed; keeps the allocation for reuse.
    package func reset() { buffer.pointee.size = 0 }

    package func packNil() { msgpack_pack_nil(packer) }
    package func pack(_ v: Bool) { if v { msgpack_pack_true(packer) } else { msgpack_pack_false(packer) } }
    package func pack(_ v: Int) { msgpack_pack_int64(packer, Int64(v)) }
    package func pack(_ v: Int64) { msgpack_pack_int64(packer, v) }
    package func pack(_ v: UInt64) { msgpack_pack_uint64(packer, v) }
    package func pack(_ v: Double) { msgpack_pack_double(packer, v) }
    package func pack(_ s: String) {
        var s = s
        s.withUTF8 { packString($0) }
    }
    package func packString(_ bytes: UnsafeBufferPointer<UInt8>) {
        msgpack_pack_str(packer, bytes.count)
        if let base = bytes.baseAddress, bytes.count > 0 { msgpack_pack_str_body(packer, base, bytes.count) }
    }
    package func packString(_ bytes: [UInt8]) { bytes.withUnsafeBufferPointer { packString($0) } }
    package func packBinary(_ bytes: [UInt8]) {
        msgpack_pack_bin(packer, bytes.count)
        bytes.withUnsafeBufferPointer { b in
            if let base = b.baseAddress, b.count > 0 { msgpack_pack_bin_body(packer, base, b.count) }
        }
    }
    package func packExt(type: Int8, data: [UInt8]) {
        msgpack_pack_ext(packer, data.count, type)
        data.withUnsafeBufferPointer { b in
            if let base = b.baseAddress, b.count > 0 { msgpack_pack_ext_body(packer, base, b.count) }
        }
    }
    package func packArrayHeader(_ n: Int) { msgpack_pack_array(packer, n) }
    package func packMapHeader(_ n: Int) { msgpack_pack_map(packer, n) }

    /// Starts a map whose size is known only once its entries are packed: a one-byte header now,
    /// fixed by `endMap(at:count:)` (widened, moving the entries, past a fixmap's 15 entries).
    /// Returns where the header is.
    package func beginMap() -> Int {
        let at = buffer.pointee.size
        msgpack_pack_map(packer, 0)
        return at
    }

    /// Writes `count` into the header `beginMap` left at `at`, as `packMapHeader(count)` would
    /// have written it.
    package func endMap(at: Int, count: Int) {
        guard at >= 0, at < buffer.pointee.size else { return }
        let entries = buffer.pointee.size - at - 1
        if (0...15).contains(count) {
            // A fixmap, as `beginMap` left it: one byte, nothing moves (no array allocated).
            if let data = buffer.pointee.data {
                UnsafeMutableRawPointer(data).storeBytes(of: 0x80 | UInt8(count), toByteOffset: at, as: UInt8.self)
            }
            return
        }
        var header: [UInt8]
        if count <= 0xFFFF {
            header = [0xDE, UInt8(truncatingIfNeeded: count >> 8), UInt8(truncatingIfNeeded: count)]
        } else {
            header = [0xDF] + (0..<4).map { UInt8(truncatingIfNeeded: count >> (24 - 8 * $0)) }
        }
        // Grow by the extra header bytes, move the entries up, then write the header.
        let extra = header.count - 1
        if extra > 0 {
            header.withUnsafeBufferPointer { b in
                guard let base = b.baseAddress else { return }
                _ = msgpack_sbuffer_write(buffer, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), extra)
            }
        }
        guard let data = buffer.pointee.data else { return }
        let raw = UnsafeMutableRawPointer(data)
        if extra > 0 && entries > 0 { memmove(raw + at + 1 + extra, raw + at + 1, entries) }
        header.withUnsafeBytes { h in
            if let base = h.baseAddress { memcpy(raw + at, base, h.count) }
        }
    }

    /// Packs an arbitrary value tree.
    package func pack(_ value: MessagePackValue) {
        switch value {
        case .nil: packNil()
        case .bool(let b): pack(b)
        case .int(let i): pack(i)
        case .uint(let u): pack(u)
        case .float(let d): pack(d)
        case .string(let s): packString(s)
        case .binary(let b): packBinary(b)
        case .ext(let t, let d): packExt(type: t, data: d)
        case .array(let items):
            packArrayHeader(items.count)
            for item in items { pack(item) }
        case .map(let pairs):
            packMapHeader(pairs.count)
            for pair in pairs {
                pack(pair.key)
                pack(pair.value)
            }
        }
    }

    /// The packed bytes.
    package var bytes: [UInt8] {
        guard let data = buffer.pointee.data, buffer.pointee.size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: buffer.pointee.size))
    }

    /// Appends bytes that already hold whole packed values (e.g. an encoded response map).
    package func appendPacked(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress, b.count > 0 else { return }
            _ = msgpack_sbuffer_write(buffer, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), b.count)
        }
    }

    /// The packed bytes, lent to `body` (valid only during the call).
    package func withPackedBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard let data = buffer.pointee.data, buffer.pointee.size > 0 else {
            return body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return body(UnsafeRawBufferPointer(start: data, count: buffer.pointee.size))
    }

    /// The packed bytes behind a 4-byte big-endian length: one wire frame.
    package func frameBytes() -> [UInt8] {
        let size = buffer.pointee.size
        var out = [UInt8]()
        out.reserveCapacity(size + 4)
        out.append(UInt8(truncatingIfNeeded: size >> 24))
        out.append(UInt8(truncatingIfNeeded: size >> 16))
        out.append(UInt8(truncatingIfNeeded: size >> 8))
        out.append(UInt8(truncatingIfNeeded: size))
        if let data = buffer.pointee.data, size > 0 {
            out.append(contentsOf: UnsafeRawBufferPointer(start: data, count: size))
        }
        return out
    }

    /// Encodes a value tree to bytes (no frame header).
    package static func encode(_ value: MessagePackValue) -> [UInt8] {
        let w = MessagePackWriter()
        w.pack(value)
        return w.bytes
    }
}
