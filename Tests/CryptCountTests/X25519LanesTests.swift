import Crypto
import Foundation
import Testing

@testable import CryptCount

/// X25519Lanes (issue 14, age cold): the 8-lane AVX-512 IFMA kernel and the narrow BoringSSL path
/// against RFC 7748's vectors, against BoringSSL on random and edge inputs with every count
/// 1...8, and lane against lane. The wide tests are disabled (and say so) on a CPU without
/// AVX-512 IFMA; the narrow path is tested everywhere.
@Suite struct X25519LanesTests {
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return out
    }

    static func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

    /// X25519Lanes.compute on `count` points (`points` holds them back to back), into a fresh
    /// output filled with a sentinel byte beyond what the call should write.
    static func run(_ scalar: [UInt8], _ points: [UInt8], count: Int, wide: Bool, outCount: Int? = nil) -> [UInt8] {
        var out = [UInt8](repeating: 0xa5, count: outCount ?? count * 32)
        scalar.withUnsafeBytes { s in
            points.withUnsafeBytes { p in
                out.withUnsafeMutableBytes { o in
                    X25519Lanes.compute(scalar: s, points: p, count: count, into: o, wide: wide)
                }
            }
        }
        return out
    }

    /// BoringSSL through swift-crypto's public API (a second, independent way in), or 32 zeros
    /// when it refuses a low-order point.
    static func reference(_ scalar: [UInt8], _ point: [UInt8]) -> [UInt8] {
        do {
            let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: scalar)
            let peer = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: point)
            let shared = try key.sharedSecretFromKeyAgreement(with: peer)
            return shared.withUnsafeBytes { [UInt8]($0) }
        } catch {
            return [UInt8](repeating: 0, count: 32)
        }
    }

    static let rfc: [(scalar: String, u: String, out: String)] = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"
        ),
    ]

    /// u-coordinates at the edges of the field and the encoding: 0, 1, p - 1, p, p + 1,
    /// 2^255 - 1, 2^255 - 20, bit 255 set on small and large values.
    static let edges: [String] = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "0900000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "ebffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0900000000000000000000000000000000000000000000000000000000000080",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff0f00",
        "0000000000000000000000000000000000000000000000000008000000000000",
        "dbffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "daffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "d9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ]

    /// The points of order 1, 2, 4 and 8 (u = 0, 1, p - 1 and the two of order 8) and their
    /// non-canonical encodings (u + p, which is below 2^255 only for u = 0 and 1, and bit 255
    /// set): X25519 gives all zeros for every one.
    static let lowOrder: [String] = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "0100000000000000000000000000000000000000000000000000000000000080",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ]

    /// The paths this CPU runs: always the narrow one, the wide one with AVX-512 IFMA.
    static var paths: [Bool] {
        if !X25519Lanes.isWide { print("X25519Lanes: this CPU has no AVX-512 IFMA; only the narrow path is tested") }
        return X25519Lanes.isWide ? [false, true] : [false]
    }

    @Test(arguments: [false, true])
    func rfc7748VectorsInEveryLane(wide: Bool) {
        if wide && !X25519Lanes.isWide {
            print("X25519Lanes: no AVX-512 IFMA on this CPU; the wide path is not tested")
            return
        }
        for vector in Self.rfc {
            let scalar = Self.bytes(vector.scalar)
            for count in 1...X25519Lanes.width {
                let points = (0..<count).flatMap { _ in Self.bytes(vector.u) }
                let out = Self.run(scalar, points, count: count, wide: wide)
                for lane in 0..<count {
                    #expect(
                        Self.hex(Array(out[(32 * lane)..<(32 * lane + 32)])) == vector.out,
                        "count \(count) lane \(lane)")
                }
            }
            // Each vector in one lane, random points in the others.
            var rng = Rng(state: 7)
            for lane in 0..<X25519Lanes.width {
                var points = rng.bytes(32 * X25519Lanes.width)
                points.replaceSubrange((32 * lane)..<(32 * lane + 32), with: Self.bytes(vector.u))
                let out = Self.run(scalar, points, count: X25519Lanes.width, wide: wide)
                #expect(Self.hex(Array(out[(32 * lane)..<(32 * lane + 32)])) == vector.out, "lane \(lane)")
            }
        }
    }

    /// RFC 7748 section 5.2's iteration (k, u = X25519(k, u), k from k = u = 9), the same in all
    /// 8 lanes: after 1 and 1,000 iterations (1,000,000 is left out: too slow for a unit test).
    @Test(arguments: [false, true])
    func rfc7748Iterated(wide: Bool) {
        if wide && !X25519Lanes.isWide {
            print("X25519Lanes: no AVX-512 IFMA on this CPU; the wide path is not tested")
            return
        }
        var k = Self.bytes("0900000000000000000000000000000000000000000000000000000000000000")
        var u = k
        for iteration in 1...1000 {
            let out = Self.run(k, (0..<8).flatMap { _ in u }, count: 8, wide: wide)
            let first = Array(out[0..<32])
            for lane in 1..<8 { #expect(Array(out[(32 * lane)..<(32 * lane + 32)]) == first) }
            u = k
            k = first
            if iteration == 1 {
                #expect(Self.hex(k) == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")
            }
        }
        #expect(Self.hex(k) == "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")
    }

    /// The kernel against BoringSSL (the narrow path) on random scalars and points, every count
    /// 1...8, and the narrow path against swift-crypto's public API now and then.
    @Test(.enabled(if: X25519Lanes.isWide, "the wide path needs AVX-512 IFMA, which this CPU lacks"))
    func wideMatchesBoringSSLOnRandomInputs() {
        var rng = Rng(state: 0x2519)
        for round in 0..<1200 {
            var scalar = rng.bytes(32)
            if round % 50 == 0 { scalar = [UInt8](repeating: round % 100 == 0 ? 0 : 0xff, count: 32) }
            let count = round % 8 + 1
            var points = rng.bytes(32 * count)
            if round % 4 == 0 { for lane in 0..<count { points[32 * lane + 31] |= 0x80 } }
            let wide = Self.run(scalar, points, count: count, wide: true)
            let narrow = Self.run(scalar, points, count: count, wide: false)
            #expect(wide == narrow, "round \(round) count \(count)")
            if round % 100 == 0 {
                #expect(Array(narrow[0..<32]) == Self.reference(scalar, Array(points[0..<32])))
            }
        }
    }

    /// Edge and low-order u-coordinates mixed into the lanes, both paths against each other and
    /// against swift-crypto; the low-order ones give zeros on every path.
    @Test func edgeAndLowOrderPoints() {
        var rng = Rng(state: 0xED6E)
        let all = (Self.edges + Self.lowOrder).map(Self.bytes)
        let scalars = [rng.bytes(32), Self.bytes(Self.rfc[0].scalar), [UInt8](repeating: 0xff, count: 32)]
        for scalar in scalars {
            for start in stride(from: 0, to: all.count, by: 3) {
                for count in [1, 3, 8] {
                    let points = (0..<count).flatMap { all[(start + $0) % all.count] }
                    let outs = Self.paths.map { Self.run(scalar, points, count: count, wide: $0) }
                    for out in outs.dropFirst() { #expect(out == outs[0], "from edge \(start), count \(count)") }
                    for lane in 0..<count {
                        let point = all[(start + lane) % all.count]
                        #expect(Array(outs[0][(32 * lane)..<(32 * lane + 32)]) == Self.reference(scalar, point))
                    }
                }
            }
            for point in Self.lowOrder.map(Self.bytes) {
                for wide in Self.paths {
                    #expect(Self.run(scalar, point, count: 1, wide: wide) == [UInt8](repeating: 0, count: 32))
                }
            }
        }
    }

    /// Changing one lane's point changes that lane's output only.
    @Test func lanesAreIndependent() {
        var rng = Rng(state: 99)
        let scalar = rng.bytes(32)
        let points = rng.bytes(32 * 8)
        for wide in Self.paths {
            let before = Self.run(scalar, points, count: 8, wide: wide)
            for lane in 0..<8 {
                var changed = points
                changed[32 * lane + 5] ^= 0x10
                let after = Self.run(scalar, changed, count: 8, wide: wide)
                for other in 0..<8 {
                    let range = (32 * other)..<(32 * other + 32)
                    if other == lane {
                        #expect(after[range] != before[range])
                        #expect(Array(after[range]) == Self.reference(scalar, Array(changed[range])))
                    } else {
                        #expect(after[range] == before[range], "lane \(lane) changed lane \(other)")
                    }
                }
            }
        }
    }

    /// The kernel's CPU check agrees with the kernel's CPU flags in /proc/cpuinfo (Linux), so
    /// the wide tests above cannot quietly test the narrow path twice.
    @Test func wideWhereTheCPUHasIFMA() throws {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else {
            print("X25519Lanes: no /proc/cpuinfo; the CPU check is not cross-checked")
            return
        }
        let set = Set(flags.split(separator: " ").map(String.init))
        #expect(X25519Lanes.isWide == (set.contains("avx512f") && set.contains("avx512ifma")))
    }

    /// Wrong sizes write nothing; a larger output keeps its bytes past count * 32.
    @Test func badSizesWriteNothing() {
        let scalar = [UInt8](repeating: 1, count: 32)
        let points = Self.bytes(Self.rfc[0].u) + Self.bytes(Self.rfc[1].u)
        for wide in [false, true] {
            let untouched = [UInt8](repeating: 0xa5, count: 64)
            #expect(Self.run(scalar, points, count: 0, wide: wide, outCount: 64) == untouched)
            #expect(
                Self.run(scalar, points, count: 9, wide: wide, outCount: 64 * 9) == untouched
                    + [UInt8](repeating: 0xa5, count: 64 * 8))
            #expect(Self.run(Array(scalar.prefix(31)), points, count: 1, wide: wide, outCount: 64) == untouched)
            #expect(Self.run(scalar, points, count: 3, wide: wide, outCount: 96).allSatisfy { $0 == 0xa5 })
            #expect(Self.run(scalar, points, count: 2, wide: wide, outCount: 63) == Array(untouched.prefix(63)))
            let longer = Self.run(scalar, points, count: 1, wide: wide, outCount: 64)
            #expect(longer[0..<32] != untouched[0..<32])
            #expect(longer[32...].allSatisfy { $0 == 0xa5 })
        }
    }
}
