import CMsgPack

/// Why a frame's payload is not one MessagePack value.
package enum MessagePackDecodingError: Error, Equatable, Sendable {
    case empty
    case truncated
    case malformed
    case trailingBytes
    case tooDeep
    case tooLarge
}

/// Decodes one MessagePack value with libmsgpack-c (`msgpack_unpack` into a zone).
///
/// Before libmsgpack sees the bytes, `MessagePackShapeCheck` verifies that no declared length
/// or element count exceeds what the payload can hold and that nesting stays shallow, so a
/// hostile header cannot make libmsgpack reserve memory the frame does not account for.
package enum MessagePackDecoder {
    /// The deepest nesting accepted (libmsgpack's own parse stack is 32 levels deep).
    package static let maxDepth = 32

    package static func decode(_ bytes: UnsafeRawBufferPointer) throws(MessagePackDecodingError) -> MessagePackValue {
        guard let base = bytes.baseAddress, bytes.count > 0 else { throw .empty }
        try MessagePackShapeCheck.validate(bytes, maxDepth: maxDepth)

        var zone = msgpack_zone()
        guard msgpack_zone_init(&zone, 2048) else { throw .tooLarge }
        defer { msgpack_zone_destroy(&zone) }
        var object = msgpack_object()
        var offset = 0
        let rc = msgpack_unpack(base.assumingMemoryBound(to: CChar.self), bytes.count, &offset, &zone, &object)
        switch rc {
        case MSGPACK_UNPACK_SUCCESS:
            break
        case MSGPACK_UNPACK_EXTRA_BYTES:
            throw .trailingBytes
        case MSGPACK_UNPACK_CONTINUE:
            throw .truncated
        case MSGPACK_UNPACK_NOMEM_ERROR:
            throw .tooLarge
        default:
            throw .malformed
        }
        guard offset == bytes.count else { throw .trailingBytes }
        return try convert(object, depth: 0)
    }

    package static func decode(_ bytes: [UInt8]) throws(MessagePackDecodingError) -> MessagePackValue {
        do {
            return try bytes.withUnsafeBytes { raw in try decode(raw) }
        } catch let error as MessagePackDecodingError {
            throw error
        } catch {
            throw .malformed
        }
    }

    private static func bytesOf(_ ptr: UnsafePointer<CChar>?, _ size: UInt32) -> [UInt8] {
        guard let ptr, size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: ptr, count: Int(size)).bindMemory(to: UInt8.self))
    }

    private static func convert(_ o: msgpack_object, depth: Int) throws(MessagePackDecodingError) -> MessagePackValue {
        guard depth <= maxDepth else { throw .tooDeep }
        switch o.type {
        case MSGPACK_OBJECT_NIL:
            return .nil
        case MSGPACK_OBJECT_BOOLEAN:
            return .bool(o.via.boolean)
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            return .uint(o.via.u64)
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return .int(o.via.i64)
        case MSGPACK_OBJECT_FLOAT32, MSGPACK_OBJECT_FLOAT64:
            return .float(o.via.f64)
        case MSGPACK_OBJECT_STR:
            return .string(bytesOf(o.via.str.ptr, o.via.str.size))
        case MSGPACK_OBJECT_BIN:
            return .binary(bytesOf(o.via.bin.ptr, o.via.bin.size))
        case MSGPACK_OBJECT_EXT:
            return .ext(type: o.via.ext.type, data: bytesOf(o.via.ext.ptr, o.via.ext.size))
        case MSGPACK_OBJECT_ARRAY:
            let array = o.via.array
            guard let items = array.ptr, array.size > 0 else { return .array([]) }
            var out: [MessagePackValue] = []
            out.reserveCapacity(Int(array.size))  // bounded: the shape check capped it by the frame
            for i in 0..<Int(array.size) {
                out.append(try convert(items[i], depth: depth + 1))
            }
            return .array(out)
        case MSGPACK_OBJECT_MAP:
            let map = o.via.map
            guard let kvs = map.ptr, map.size > 0 else { return .map([]) }
            var out: [MessagePackPair] = []
            out.reserveCapacity(Int(map.size))
            for i in 0..<Int(map.size) {
                out.append(
                    MessagePackPair(
                        try convert(kvs[i].key, depth: depth + 1),
                        try convert(kvs[i].val, depth: depth + 1)))
            }
            return .map(out)
        default:
            throw .malformed
        }
    }
}
