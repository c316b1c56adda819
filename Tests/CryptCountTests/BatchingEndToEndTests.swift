import Foundation
import Testing

@testable import CryptCount

/// The opt-in `"batch": N` count key: file results grouped into `files` frames.
@Suite(.serialized) struct BatchingEndToEndTests {
    static func t(_ s: String) -> MessagePackValue { .text(s) }

    /// Responses up to the terminal one for `id` (`files` frames are not terminal).
    static func untilTerminal(_ s: ServeProcess, _ id: MessagePackValue) throws -> [MessagePackValue] {
        var out: [MessagePackValue] = []
        while let r = try s.receive(timeout: 30) {
            out.append(r)
            if r["id"] == id, let t = r.type, t != "file", t != "files" { return out }
        }
        throw HarnessError(description: "output ended before the terminal response for \(id)")
    }

    @Test func resultsComeInFilesFramesOfAtMostN() throws {
        let dir = try TempDir()
        var paths: [String] = []
        for i in 0..<7 {
            paths.append(try dir.write("f\(i).txt", Array(String(repeating: "ab ", count: i).utf8)))
        }
        paths.append(dir.path("missing"))
        let s = try ServeProcess()
        for ordered in [false, true] {
            s.request([
                "id": .uint(ordered ? 2 : 1), "op": Self.t("count"), "files": .array(paths.map { .text($0) }),
                "terms": .array([Self.t("ab")]), "batch": .uint(3), "ordered": .bool(ordered),
            ])
            let rs = try Self.untilTerminal(s, .uint(ordered ? 2 : 1))
            #expect(rs.allSatisfy { $0.type == "files" || $0.type == "done" }, "no single file frames")
            let batches = rs.filter { $0.type == "files" }.compactMap { $0["results"]?.arrayValue }
            #expect(batches.map(\.count).allSatisfy { $0 >= 1 && $0 <= 3 })
            let results = batches.flatMap { $0 }
            #expect(results.count == 8)
            // Each element is exactly a `file` response.
            #expect(results.allSatisfy { $0.type == "file" && $0["id"] == .uint(ordered ? 2 : 1) })
            let indexes = results.compactMap { $0["index"]?.intValue }
            #expect(Set(indexes) == Set(0..<8))
            if ordered { #expect(indexes == Array(0..<8)) }
            for r in results {
                guard let i = r["index"]?.intValue else { continue }
                if i == 7 {
                    #expect(r["error"]?["code"]?.stringValue == "not_found")
                } else {
                    #expect(r["counts"]?.intArray == [i])
                    #expect(r["path"] == .text(paths[i]))
                }
            }
            let done = try #require(rs.last)
            #expect(done.type == "done" && done["files"]?.intValue == 8 && done["failed"]?.intValue == 1)
            #expect(done["counts"]?.intArray == [21])
        }
        // Out of range: a request error; batch 1 is the default framing.
        s.request(["id": .uint(3), "op": Self.t("count"), "files": .array([]), "batch": .uint(0)])
        #expect(try Self.untilTerminal(s, .uint(3)).last?["code"]?.stringValue == "bad_request")
        s.request(["id": .uint(4), "op": Self.t("count"), "files": .array([.text(paths[1])]), "batch": .uint(1)])
        #expect(try Self.untilTerminal(s, .uint(4)).map(\.type) == ["file", "done"])
        s.closeInput()
        #expect(s.waitExit() == 0)
    }

    /// Unordered batches are filled by several workers at once: every result must arrive intact,
    /// once, in well-formed frames (a race here once corrupted `files` payloads).
    @Test func concurrentWorkersFillUnorderedBatchesIntact() throws {
        let dir = try TempDir()
        var paths: [String] = []
        for i in 0..<300 {
            paths.append(try dir.write("f\(i).txt", Array(String(repeating: "ab ", count: i % 11).utf8)))
        }
        let s = try ServeProcess(["--workers", "4"])
        for round in 0..<5 {
            let id = MessagePackValue.uint(UInt64(10 + round))
            s.request([
                "id": id, "op": Self.t("count"), "files": .array(paths.map { .text($0) }),
                "terms": .array([Self.t("ab")]), "batch": .uint(UInt64(2 + round * 3)),
            ])
            let rs = try Self.untilTerminal(s, id)
            let results = rs.filter { $0.type == "files" }.compactMap { $0["results"]?.arrayValue }.flatMap { $0 }
            let indexes = results.compactMap { $0["index"]?.intValue }
            #expect(indexes.count == paths.count && Set(indexes) == Set(0..<paths.count))
            for r in results {
                guard let i = r["index"]?.intValue else { continue }
                #expect(r["counts"]?.intArray == [i % 11])
            }
            #expect(rs.last?["counts"]?.intArray == [(0..<paths.count).reduce(0) { $0 + $1 % 11 }])
        }
        s.closeInput()
        #expect(s.waitExit() == 0)
    }
}

/// `FileBatch` itself: when a batch is flushed, and a result too big to share a frame.
@Suite struct FileBatchTests {
    static func add(_ batch: inout FileBatch, _ bytes: [UInt8]) -> [FileBatch.Ready] {
        bytes.withUnsafeBytes { batch.add(payload: $0) }
    }

    static func describe(_ ready: [FileBatch.Ready]) -> [String] {
        ready.map {
            switch $0 {
            case .batch(let n, let p): "batch \(n) \(p)"
            case .alone(let f): "alone \(f)"
            }
        }
    }

    @Test func flushesByCountByRoomAndAlone() {
        var b = FileBatch(limit: 3, room: 10)
        #expect(Self.add(&b, [1, 2]).isEmpty)
        #expect(Self.add(&b, [3]).isEmpty)
        // The third result fills the batch (limit 3).
        #expect(Self.describe(Self.add(&b, [4])) == ["batch 3 [1, 2, 3, 4]"])
        #expect(Self.add(&b, [5, 6, 7, 8, 9, 10]).isEmpty)
        // Past the room: what waits goes first, the new result starts the next batch.
        #expect(Self.describe(Self.add(&b, [11, 12, 13, 14, 15])) == ["batch 1 [5, 6, 7, 8, 9, 10]"])
        // Bigger than the room: what waits, then the result alone in its own length-prefixed frame.
        let big = [UInt8](repeating: 7, count: 11)
        #expect(
            Self.describe(Self.add(&b, big)) == ["batch 1 [11, 12, 13, 14, 15]", "alone \([0, 0, 0, 11] + big)"])
        #expect(b.take() == nil)
        #expect(Self.add(&b, [16]).isEmpty)
        let rest = b.take()
        #expect(rest?.0 == 1 && rest?.1 == [16])
    }
}
