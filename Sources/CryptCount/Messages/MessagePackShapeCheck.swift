/// A bounds check run over a payload before libmsgpack-c decodes it. It builds no values: it
/// only walks the type headers to prove that every declared length fits in the bytes that
/// remain, that every array or map could hold its declared element count (each element takes
/// at least one byte), and that nesting stays within `maxDepth`. libmsgpack reserves memory for
/// a container as soon as it reads the container's header, so this is what keeps a 5-byte
/// frame declaring four billion elements from costing anything.
enum MessagePackShapeCheck {
    static func validate(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) throws(MessagePackDecodingError) {
        let n = bytes.count
        var pos = 0
        // Items still to read at each open container level; the outermost level holds one value.
        var pending: [Int] = [1]
        pending.reserveCapacity(maxDepth + 2)

        func need(_ k: Int) throws(MessagePackDecodingError) {
            if k < 0 || k > n - pos { throw .truncated }
        }
        func readBE(_ width: Int) throws(MessagePackDecodingError) -> Int {
            try need(width)
            var v = 0
            for i in 0..<width { v = (v << 8) | Int(bytes[pos + i]) }
            pos += width
            return v
        }

        while let top = pending.last {
            if top == 0 {
                pending.removeLast()
                continue
            }
            pending[pending.count - 1] = top - 1
            try need(1)
            let b = bytes[pos]
            pos += 1
            var children = 0  // items a container at this position declares
            // fixmap, fixarray, array16/32, map16/32
            let isContainer = (0x80...0x9f).contains(b) || (0xdc...0xdf).contains(b)
            switch b {
            case 0x00...0x7f, 0xe0...0xff, 0xc0, 0xc2, 0xc3:
                break
            case 0x80...0x8f:
                children = Int(b & 0x0f) * 2
            case 0x90...0x9f:
                children = Int(b & 0x0f)
            case 0xa0...0xbf:
                let len = Int(b & 0x1f)
                try need(len)
                pos += len
            case 0xc4, 0xd9:
                let len = try readBE(1)
                try need(len)
                pos += len
            case 0xc5, 0xda:
                let len = try readBE(2)
                try need(len)
                pos += len
            case 0xc6, 0xdb:
                let len = try readBE(4)
                try need(len)
                pos += len
            case 0xc7:
                let len = try readBE(1)
                try need(len + 1)
                pos += len + 1
            case 0xc8:
                let len = try readBE(2)
                try need(len + 1)
                pos += len + 1
            case 0xc9:
                let len = try readBE(4)
                try need(len + 1)
                pos += len + 1
            case 0xca, 0xce, 0xd2:
                try need(4)
                pos += 4
            case 0xcb, 0xcf, 0xd3:
                try need(8)
                pos += 8
            case 0xcc, 0xd0:
                try need(1)
                pos += 1
            case 0xcd, 0xd1:
                try need(2)
                pos += 2
            case 0xd4:
                try need(2)
                pos += 2
            case 0xd5:
                try need(3)
                pos += 3
            case 0xd6:
                try need(5)
                pos += 5
            case 0xd7:
                try need(9)
                pos += 9
            case 0xd8:
                try need(17)
                pos += 17
            case 0xdc:
                children = try readBE(2)
            case 0xdd:
                children = try readBE(4)
            case 0xde:
                children = try readBE(2) * 2
            case 0xdf:
                children = try readBE(4) * 2
            default:  // 0xc1 is never used
                throw .malformed
            }
            // Every element needs at least one byte of its own.
            if children > n - pos { throw .truncated }
            // The open containers are pending's levels but the outermost; libmsgpack refuses a
            // container header, empty or not, once maxDepth are open (its stack is full).
            if isContainer && pending.count > maxDepth { throw .tooDeep }
            if children > 0 { pending.append(children) }
        }
        if pos != n { throw .trailingBytes }
    }
}
