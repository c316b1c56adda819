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

    /// `"compact": true`: a plain success is the array `[index, counts, bytes, cached]` (`words`
    /// fifth when asked for) inside a `files` frame, also without `batch` (frames of one); what
    /// carries more (an error, offsets, the cipher `auto` chose) stays the map. The counts are the
    /// map form's.
    @Test func compactResultsAreArraysInFilesFrames() throws {
        let dir = try TempDir()
        var paths: [String] = []
        for i in 0..<6 {
            paths.append(try dir.write("f\(i).txt", Array(String(repeating: "ab ", count: i).utf8)))
        }
        paths.append(dir.path("missing"))
        let s = try ServeProcess()
        var next: UInt64 = 0
        func run(_ extra: [String: MessagePackValue]) throws -> (
            frames: [MessagePackValue], results: [MessagePackValue]
        ) {
            next += 1
            var req: [String: MessagePackValue] = [
                "id": .uint(next), "op": Self.t("count"), "files": .array(paths.map { .text($0) }),
                "terms": .array([Self.t("ab"), Self.t("b")]), "ordered": .bool(true),
            ]
            req.merge(extra) { $1 }
            s.request(req)
            let rs = try Self.untilTerminal(s, .uint(next))
            #expect(rs.last?.type == "done", "\(extra): \(rs.last.map { "\($0)" } ?? "nothing")")
            return (rs, rs.filter { $0.type == "files" }.flatMap { $0["results"]?.arrayValue ?? [] })
        }
        let maps = try run(["words": .bool(true)]).frames.filter { $0.type == "file" }
        #expect(maps.count == paths.count)
        for batch: UInt64 in [1, 4] {
            for words in [false, true] {
                let (frames, results) = try run(
                    ["compact": .bool(true), "batch": .uint(batch), "words": .bool(words)])
                #expect(frames.allSatisfy { $0.type == "files" || $0.type == "done" }, "no single file frames")
                #expect(
                    frames.filter { $0.type == "files" }.allSatisfy {
                        ($0["results"]?.arrayValue?.count ?? 0) <= Int(batch)
                    })
                #expect(results.count == paths.count)
                for (i, r) in results.enumerated() {
                    if i == paths.count - 1 {
                        #expect(r.type == "file" && r["index"]?.intValue == i)
                        #expect(r["error"]?["code"]?.stringValue == "not_found")
                        continue
                    }
                    let a = try #require(r.arrayValue, "result \(i) is an array: \(r)")
                    #expect(a.count == (words ? 5 : 4))
                    #expect(a.first?.intValue == i)
                    #expect(a.count > 1 && a[1].intArray == maps[i]["counts"]?.intArray && a[1].intArray == [i, i])
                    #expect(a.count > 2 && a[2].intValue == 3 * i)
                    #expect(a.count > 3 && a[3] == .bool(false))
                    if words { #expect(a.count > 4 && a[4].intValue == maps[i]["words"]?.intValue) }
                }
            }
        }
        // Offsets, and the cipher `auto` names: the map, in a `files` frame.
        for extra: [String: MessagePackValue] in [["offsets": .bool(true)], ["cipher": Self.t("auto")]] {
            let results = try run(extra.merging(["compact": .bool(true)]) { $1 }).results
            #expect(results.count == paths.count)
            #expect(results.allSatisfy { $0.type == "file" }, "\(extra)")
            #expect(results[2]["counts"]?.intArray == [2, 2] && results[2]["path"] == .text(paths[2]))
        }
        // A type error is a request error.
        s.request(["id": .uint(99), "op": Self.t("count"), "files": .array([]), "compact": .uint(1)])
        #expect(try Self.untilTerminal(s, .uint(99)).last?["code"]?.stringValue == "bad_request")
        s.closeInput()
        #expect(s.waitExit() == 0)
    }

    /// Under a tiny `max_frame`, a compact result that cannot share a `files` frame within it is
    /// sent as its map in a `file` frame of its own (a frame is always a map with an id).
    @Test func compactResultTooBigForAFilesFrameIsAFileMap() throws {
        // 26 counts of 5 bytes each (over 65,535) make the array about 140 bytes, more than a
        // `files` frame holds under a 160-byte limit, while the request itself fits in it.
        let letters = "abcdefghijklmnopqrstuvwxyz"
        let dir = try TempDir()
        let path = try dir.write("a.txt", Array(String(repeating: letters, count: 70_000).utf8))
        let s = try ServeProcess(["--max-frame", "160"])
        for (id, n) in [(UInt64(1), 1), (2, 26)] {
            s.request([
                "id": .uint(id), "op": Self.t("count"), "files": .array([.text(path)]),
                "terms": .array(letters.suffix(n).map { Self.t(String($0)) }), "compact": .bool(true),
            ])
            let rs = try Self.untilTerminal(s, .uint(id))
            #expect(rs.map(\.type) == [n == 1 ? "files" : "file", "done"], "\(n) terms: \(rs)")
            let counts =
                n == 1
                ? rs.first?["results"]?.arrayValue?.first?.arrayValue?[1].intArray : rs.first?["counts"]?.intArray
            #expect(counts == Array(repeating: 70_000, count: n))
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
