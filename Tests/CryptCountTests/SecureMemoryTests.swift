import Foundation
import Testing

@testable import CryptCount

/// Key material and cached plaintext live in pages of their own that are left out of core
/// dumps (MADV_DONTDUMP, "dd" in /proc/self/smaps) and are zeroed when freed.
@Suite struct SecureMemoryTests {
    /// The VmFlags of the mapping that holds `address`.
    static func vmFlags(of address: UnsafeRawPointer) throws -> [String] {
        // Read to the end: String(contentsOfFile:) stops after the first read of a /proc file.
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/smaps"))
        defer { try? handle.close() }
        let smaps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        let target = UInt(bitPattern: address)
        var inside = false
        for line in smaps.split(separator: "\n") {
            let first = line.split(separator: " ", maxSplits: 1).first ?? ""
            let bounds = first.split(separator: "-")
            if bounds.count == 2, let lo = UInt(bounds[0], radix: 16), let hi = UInt(bounds[1], radix: 16) {
                inside = lo <= target && target < hi
            } else if inside && line.hasPrefix("VmFlags:") {
                return line.split(separator: " ").dropFirst().map(String.init)
            }
        }
        return []
    }

    @Test(arguments: [0, 1, 15, 16, 17, 100, 2048, 2049, 5000, 70000])
    func secretBytesKeepTheirBytesInDontDumpMemory(size: Int) throws {
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        let s = SecretBytes(bytes)
        #expect(s.count == size)
        #expect(s.bytes == bytes)
        let address = try #require(s.withBytes { $0.baseAddress })
        #expect(try Self.vmFlags(of: UnsafeRawPointer(address)).contains("dd"))
    }

    @Test func aFreedSlotIsZeroed() {
        // A 2 KiB slot: slab memory stays mapped after free, so it can be read back.
        let block = SecureMemory.allocate(1500)
        #expect(block.bytes.count == 2048)
        #expect(block.bytes.allSatisfy { $0 == 0 })
        for i in 0..<block.bytes.count { block.bytes[i] = 0xA5 }
        let base = block.bytes.baseAddress
        SecureMemory.free(block)
        // Zero, unless a test running beside this one took the slot again at once (keys are
        // 2 KiB slots too) and wrote its own bytes: the pattern must be gone either way.
        let after = UnsafeRawBufferPointer(start: base, count: 2048)
        #expect(after.count(where: { $0 == 0xA5 }) < 256)
    }

    @Test func secureBufferCopiesIntoWholePagesOutOfDumps() throws {
        let plain = Array("cached plaintext\n".utf8) + [UInt8](repeating: 0x41, count: 9000)
        let buffer = try #require(plain.withUnsafeBytes { SecureBuffer(copying: $0) })
        #expect(buffer.count == plain.count)
        #expect(buffer.capacity % SecureMemory.pageSize == 0 && buffer.capacity >= plain.count)
        #expect(buffer.withUnsafeBytes { Array($0) } == plain)
        let address = try #require(buffer.withUnsafeBytes { $0.baseAddress })
        #expect(try Self.vmFlags(of: address).contains("dd"))

        let empty = try #require([UInt8]().withUnsafeBytes { SecureBuffer(copying: $0) })
        #expect(empty.count == 0 && empty.capacity == SecureMemory.pageSize)
    }

    @Test func theCacheChargesWholePages() {
        let cache = PlaintextCache(limitBytes: 8 << 20, shardCount: 1)
        let key = PlaintextCache.Key(
            file: FileIdentity(device: 1, inode: 2, size: 3, mtimeNanos: 4, ctimeNanos: 5),
            key: KeyIdentity(high: 6, low: 7))
        [UInt8]("tiny".utf8).withUnsafeBytes { cache.insert(key, plaintext: $0, cipher: "age") }
        let hit = cache.lookup(key)
        #expect(hit?.plaintext.withUnsafeBytes { Array($0) } == Array("tiny".utf8))
        #expect(cache.snapshot().bytes == SecureMemory.pageSize + 128)
    }
}
