import Foundation
import Testing

@testable import CryptCount

#if canImport(Glibc)
    import Glibc
#endif

/// `cryptcount serve` as a parent sees it: the built binary, over pipes.
@Suite(.serialized) struct ServeEndToEndTests {
    static func t(_ s: String) -> MessagePackValue { .text(s) }
    static func u(_ n: Int) -> MessagePackValue { .uint(UInt64(n)) }
    static func list(_ items: [String]) -> MessagePackValue { .array(items.map { .text($0) }) }

    @Test func helloReportsTheProtocol() throws {
        let s = try ServeProcess(["--workers", "3", "--max-frame", "4096"])
        s.request(["id": Self.u(1), "op": Self.t("hello")])
        let r = try #require(try s.receive())
        #expect(r.type == "hello")
        #expect(r["id"] == Self.u(1))
        #expect(r["protocol"]?.intValue == 1)
        #expect(r["server"]?.stringValue == "cryptcount")
        #expect(r["workers"]?.intValue == 3)
        #expect(r["max_frame"]?.intValue == 4096)
        let ciphers = try #require(r["ciphers"]?.arrayValue?.compactMap { $0.stringValue })
        #expect(ciphers.contains("plain") && ciphers.contains("biographer") && ciphers.contains("biographer-v0"))
        let ops = try #require(r["ops"]?.arrayValue?.compactMap { $0.stringValue })
        #expect(Set(ops) == Set(["hello", "unlock", "forget", "count", "cancel", "stats", "shutdown"]))
        s.closeInput()
        #expect(s.waitExit() == 0)
    }

    @Test func countsPlainFilesAndEchoesPaths() throws {
        let dir = try TempDir()
        let a = try dir.write("a.txt", Array("aaaa the theme of the thesis".utf8))
        let b = try dir.write("b.txt", Array("nothing here".utf8))
        let s = try ServeProcess()
        s.request([
            "id": Self.t("q1"), "op": Self.t("count"),
            "files": .array([.text(a), .binary(Array(b.utf8)), .text(dir.path("missing"))]),
            "terms": Self.list(["aa", "the"]), "words": .bool(true),
        ])
        let rs = try s.receiveUntilTerminal(of: Self.t("q1"))
        let files = rs.filter { $0.type == "file" }
        #expect(files.count == 3)
        let byIndex = Dictionary(uniqueKeysWithValues: files.compactMap { f in f["index"]?.intValue.map { ($0, f) } })
        #expect(byIndex[0]?["counts"]?.intArray == [2, 4])  // the, theme, the, thesis
        #expect(byIndex[0]?["path"] == .text(a))
        #expect(byIndex[0]?["bytes"]?.intValue == 28)
        #expect(byIndex[0]?["words"]?.intValue == 6)
        #expect(byIndex[1]?["path"] == .binary(Array(b.utf8)), "a bin path comes back as bin")
        #expect(byIndex[1]?["counts"]?.intArray == [0, 0])
        #expect(byIndex[2]?["error"]?["code"]?.stringValue == "not_found")
        let done = try #require(rs.last)
        #expect(done.type == "done")
        #expect(done["files"]?.intValue == 3)
        #expect(done["failed"]?.intValue == 1)
        #expect(done["skipped"]?.intValue == 0)
        #expect(done["counts"]?.intArray == [2, 4])
        #expect(done["words"]?.intValue == 8)
        #expect(done["cancelled"]?.boolValue == false)
        #expect(done["elapsed_us"]?.intValue != nil)
    }

    @Test func biographerFilesThroughAnUnlockedKey() throws {
        let dir = try TempDir()
        let key = try BiographerKey(password: Array("hunter2".utf8), chained: true)
        let v0 = try BiographerKey(password: Array("hunter2".utf8), chained: false)
        let text = Array("Dear diary, the rain. The rain again.\n".utf8)
        let p1 = try dir.write("s1.bio", key.encrypt(text, iv: [9, 8, 7, 6, 5, 4, 3, 2]))
        let p0 = try dir.write("s0.bio", v0.encrypt(text, iv: []))
        let s = try ServeProcess()
        s.request([
            "id": Self.u(1), "op": Self.t("unlock"), "name": Self.t("diary"), "cipher": Self.t("biographer"),
            "secret": Self.t("hunter2"),
        ])
        #expect(try s.receive()?.type == "ok")
        s.request([
            "id": Self.u(2), "op": Self.t("count"), "key": Self.t("diary"), "files": Self.list([p1]),
            "terms": Self.list(["rain"]),
        ])
        var rs = try s.receiveUntilTerminal(of: Self.u(2))
        #expect(rs.first?["counts"]?.intArray == [2])
        #expect(rs.first?["cached"]?.boolValue == false)
        // The same query again is served from the cache.
        s.request([
            "id": Self.u(3), "op": Self.t("count"), "key": Self.t("diary"), "files": Self.list([p1]),
            "terms": Self.list(["rain"]),
        ])
        rs = try s.receiveUntilTerminal(of: Self.u(3))
        #expect(rs.first?["counts"]?.intArray == [2])
        #expect(rs.first?["cached"]?.boolValue == true)
        // v0 inline; and the wrong cipher for the file is decrypt_failed or bad_format, never counts.
        s.request([
            "id": Self.u(4), "op": Self.t("count"), "cipher": Self.t("biographer-v0"),
            "secret": .binary(Array("hunter2".utf8)),
            "files": Self.list([p0, p1]), "terms": Self.list(["rain"]), "ordered": .bool(true),
        ])
        rs = try s.receiveUntilTerminal(of: Self.u(4))
        #expect(rs[0]["counts"]?.intArray == [2])
        #expect(["decrypt_failed", "bad_format"].contains(rs[1]["error"]?["code"]?.stringValue ?? ""))
        // Wrong password.
        s.request([
            "id": Self.u(5), "op": Self.t("count"), "cipher": Self.t("biographer"), "secret": Self.t("wrong"),
            "files": Self.list([p1]), "terms": Self.list(["rain"]),
        ])
        rs = try s.receiveUntilTerminal(of: Self.u(5))
        #expect(rs[0]["error"]?["code"]?.stringValue == "decrypt_failed")
        let logs = s.stderrText
        #expect(!logs.contains("hunter2"))
        // forget drops the key and its cached plaintexts (the v0 entry, another key's, stays).
        s.request(["id": Self.u(60), "op": Self.t("stats")])
        #expect(try s.receive()?["cache"]?["entries"]?.intValue == 2)
        s.request(["id": Self.u(6), "op": Self.t("forget"), "name": Self.t("diary")])
        #expect(try s.receive()?.type == "ok")
        s.request(["id": Self.u(7), "op": Self.t("stats")])
        let stats = try #require(try s.receive())
        #expect(stats.type == "stats")
        #expect(stats["cache"]?["entries"]?.intValue == 1)
        #expect(stats["keys"]?.intValue == 0)
        s.request(["id": Self.u(8), "op": Self.t("count"), "key": Self.t("diary"), "files": Self.list([p1])])
        #expect(try s.receive()?.code == "unknown_key")
        s.request(["id": Self.u(9), "op": Self.t("forget"), "name": Self.t("diary")])
        #expect(try s.receive()?.code == "unknown_key")
    }

    @Test func aRewrittenFileIsNeverServedStale() throws {
        let dir = try TempDir()
        let key = try BiographerKey(password: Array("pw".utf8), chained: true)
        let path = try dir.write("f.bio", key.encrypt(Array("cat cat dog".utf8), iv: [1, 1, 1, 1, 1, 1, 1, 1]))
        var before = stat()
        stat(path, &before)
        let s = try ServeProcess()
        let req: [String: MessagePackValue] = [
            "op": Self.t("count"), "cipher": Self.t("biographer"), "secret": Self.t("pw"), "files": Self.list([path]),
            "terms": Self.list(["cat"]),
        ]
        var r = req
        r["id"] = Self.u(1)
        s.request(r)
        #expect(try s.receiveUntilTerminal(of: Self.u(1)).first?["counts"]?.intArray == [2])
        // Same size, same mtime (restored), different content.
        try dir.write("f.bio", key.encrypt(Array("dog dog cat".utf8), iv: [1, 1, 1, 1, 1, 1, 1, 1]))
        var times = [before.st_atim, before.st_mtim]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        var after = stat()
        stat(path, &after)
        #expect(after.st_size == before.st_size && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec)
        r["id"] = Self.u(2)
        s.request(r)
        let second = try s.receiveUntilTerminal(of: Self.u(2)).first
        #expect(second?["counts"]?.intArray == [1])
        #expect(second?["cached"]?.boolValue == false)
    }

    @Test func requestErrorsCarryTheirCodes() throws {
        let s = try ServeProcess()
        let cases: [([String: MessagePackValue], String)] = [
            (["id": Self.u(1), "op": Self.t("nope")], "unknown_op"),
            (["id": Self.u(2)], "bad_request"),
            (["id": Self.u(3), "op": Self.t("count")], "bad_request"),
            (["id": Self.u(4), "op": Self.t("count"), "files": Self.t("x")], "bad_request"),
            (["id": Self.u(5), "op": Self.t("count"), "files": .array([]), "terms": Self.list([""])], "bad_request"),
            (
                ["id": Self.u(6), "op": Self.t("count"), "files": .array([]), "cipher": Self.t("rot13")],
                "unknown_cipher"
            ),
            (["id": Self.u(7), "op": Self.t("count"), "files": .array([]), "key": Self.t("nokey")], "unknown_key"),
            (
                [
                    "id": Self.u(8), "op": Self.t("count"), "files": .array([]), "cipher": Self.t("biographer"),
                    "secret": Self.t(""),
                ], "bad_secret"
            ),
            (
                [
                    "id": Self.u(9), "op": Self.t("unlock"), "name": Self.t("k"), "cipher": Self.t("biographer"),
                    "secret": Self.t(""),
                ], "bad_secret"
            ),
            (
                [
                    "id": Self.u(10), "op": Self.t("unlock"), "name": Self.t("k"), "cipher": Self.t("zzz"),
                    "secret": Self.t("x"),
                ], "unknown_cipher"
            ),
            (["id": Self.u(11), "op": Self.t("count"), "files": .array([]), "ignore_case": Self.u(1)], "bad_request"),
            (["id": Self.u(12), "op": Self.t("count"), "files": .array([]), "max_offsets": .int(-1)], "bad_request"),
            (["id": Self.u(13), "op": Self.t("count"), "files": .array([.uint(3)])], "bad_request"),
            (["id": Self.u(14), "op": Self.t("forget")], "bad_request"),
            (["id": Self.u(15), "op": .uint(1)], "bad_request"),
        ]
        for (req, code) in cases {
            s.request(req)
            let r = try #require(try s.receive())
            #expect(r.type == "error", "\(req)")
            #expect(r.code == code, "\(req) gave \(r)")
            #expect(r["id"] == req["id"])
            let message = r["message"]?.stringValue ?? ""
            #expect(!message.isEmpty)
        }
        // The secret never comes back, even in an error.
        s.request([
            "id": Self.u(20), "op": Self.t("count"), "files": .array([]), "cipher": Self.t("nope"),
            "secret": Self.t("sekrit-value"),
        ])
        let r = try #require(try s.receive())
        #expect(r.code == "unknown_cipher")
        let message = r["message"]?.stringValue ?? ""
        #expect(!message.contains("sekrit"))
        // An empty file list is valid and finishes at once.
        s.request(["id": Self.u(21), "op": Self.t("count"), "files": .array([])])
        let done = try #require(try s.receive())
        #expect(done.type == "done" && done["files"]?.intValue == 0 && done["skipped"]?.intValue == 0)
    }

    @Test func hostileFramesThenAGoodRequest() throws {
        let s = try ServeProcess(["--max-frame", "1024"])
        s.sendRaw([0, 0, 0, 0])  // zero length
        #expect(try s.receive()?.code == "bad_frame")
        s.sendRaw([0, 0, 0, 1, 0xc1])  // never-used type byte
        #expect(try s.receive()?.code == "bad_msgpack")
        s.sendRaw([0, 0, 0, 2, 0x01, 0x02])  // trailing bytes after a value
        #expect(try s.receive()?.code == "bad_msgpack")
        s.sendRaw([0, 0, 0, 5, 0xdd, 0xff, 0xff, 0xff, 0xff])  // array32 of 4 billion, no data
        #expect(try s.receive()?.code == "bad_msgpack")
        s.sendRaw([0, 0, 0, 5, 0xdb, 0x7f, 0xff, 0xff, 0xff])  // str32 past the frame
        #expect(try s.receive()?.code == "bad_msgpack")
        s.sendRaw([0, 0, 0, 1, 0x93])  // array of 3, nothing else
        #expect(try s.receive()?.code == "bad_msgpack")
        var deep = [UInt8](repeating: 0x91, count: 1000)
        deep.append(0xc0)
        s.sendRaw(FrameHeader.encode(deep.count) + deep)  // 1000-deep nesting
        #expect(try s.receive()?.code == "bad_msgpack")
        let notMap = MessagePackWriter.encode(.array([.uint(1)]))
        s.sendRaw(FrameHeader.encode(notMap.count) + notMap)
        #expect(try s.receive()?.code == "bad_request")
        let intKey = MessagePackWriter.encode(
            .map([MessagePackPair(.uint(1), .uint(2)), MessagePackPair(.text("id"), .uint(5))]))
        s.sendRaw(FrameHeader.encode(intKey.count) + intKey)
        let ik = try #require(try s.receive())
        #expect(ik.code == "bad_request" && ik["id"] == .uint(5))
        // An oversize frame is reported at once and its payload skipped.
        s.sendRaw([0, 0, 0x10, 0x00] + [UInt8](repeating: 0x41, count: 4096))
        let big = try #require(try s.receive())
        #expect(big.code == "frame_too_large" && big["id"] == .nil)
        s.request(["id": Self.u(7), "op": Self.t("hello")])
        let hello = try #require(try s.receive())
        #expect(hello.type == "hello" && hello["id"] == Self.u(7))
        s.closeInput()
        #expect(s.waitExit() == 0)
    }

    @Test func endOfInputInsideAFrameIsBadFrameAndExit1() throws {
        let s = try ServeProcess()
        s.sendRaw([0, 0, 0, 9, 0x81])
        s.closeInput()
        let r = try #require(try s.receive())
        #expect(r.code == "bad_frame")
        #expect(try s.receive() == nil)
        #expect(s.waitExit() == 1)
    }

    @Test func duplicateIDWhileInFlight() throws {
        let dir = try TempDir()
        var files: [String] = []
        for i in 0..<400 { files.append(try dir.write("f\(i).txt", Array(repeating: UInt8(ascii: "a"), count: 20000))) }
        let s = try ServeProcess(["--workers", "1"])
        s.request(["id": Self.u(1), "op": Self.t("count"), "files": Self.list(files), "terms": Self.list(["a"])])
        s.request(["id": Self.u(1), "op": Self.t("hello")])
        let rs = try s.receiveUntilTerminal(of: Self.u(1))
        // The only terminal response may be the duplicate's error (if it came first) or the
        // request's done: then the error must follow. Either way the original goes on.
        var all = rs
        if rs.last?.type == "error" { all += try s.receiveUntilTerminal(of: Self.u(1)) }
        #expect(all.filter { $0.type == "error" }.count == 1)
        #expect(all.first { $0.type == "error" }?.code == "duplicate_id")
        let done = try #require(all.first { $0.type == "done" })
        #expect(done["files"]?.intValue == 400)
    }

    /// A one-file request whose plaintext is cached is answered on the reader thread: under a
    /// big request still running, each gets its one `file` and one `done` (in that order), the
    /// big one's id stays taken, and the big request still accounts for every file.
    @Test func cachedTinyRequestsInterleavedWithABigOne() throws {
        let dir = try TempDir()
        let key = try BiographerKey(password: Array("hunter2".utf8), chained: true)
        let tiny = try dir.write(
            "tiny.bio", key.encrypt(Array("rain, rain and rain\n".utf8), iv: [1, 2, 3, 4, 5, 6, 7, 8]))
        var big: [String] = []
        let body = Array(String(repeating: "the rain in spain ", count: 3000).utf8)
        for i in 0..<100 {
            big.append(try dir.write("b\(i).bio", key.encrypt(body, iv: [9, 9, 9, 9, 9, 9, 9, UInt8(i % 256)])))
        }
        let s = try ServeProcess(["--workers", "1"])
        s.request([
            "id": Self.u(1), "op": Self.t("unlock"), "name": Self.t("diary"), "cipher": Self.t("biographer"),
            "secret": Self.t("hunter2"),
        ])
        #expect(try s.receive()?.type == "ok")
        func tinyRequest(_ id: Int) -> [String: MessagePackValue] {
            [
                "id": Self.u(id), "op": Self.t("count"), "key": Self.t("diary"), "files": Self.list([tiny]),
                "terms": Self.list(["rain"]), "batch": Self.u(1),
            ]
        }
        s.request(tinyRequest(2))  // cold: a worker decrypts it and fills the cache
        let rs = try s.receiveUntilTerminal(of: Self.u(2))
        #expect(rs.first?["cached"]?.boolValue == false)
        s.request([
            "id": Self.u(1000), "op": Self.t("count"), "key": Self.t("diary"), "files": Self.list(big),
            "terms": Self.list(["rain"]), "ordered": .bool(true),
        ])
        var perID: [Int: [String]] = [:]
        var bigFiles = 0
        var lastBig = -1
        var errors: [String] = []
        var bigDone: MessagePackValue? = nil
        var cancelOK = false
        func take() throws {
            let r = try #require(try s.receive())
            let id = r["id"]?.intValue ?? -1
            if id == 60 { cancelOK = r.type == "ok" }
            if r.type == "error" {
                errors.append(r.code ?? "")
                return
            }
            if id == 1000 {
                if r.type == "file" {
                    bigFiles += 1
                    let i = r["index"]?.intValue ?? -1
                    #expect(i > lastBig, "ordered results come in index order")
                    lastBig = i
                }
                if r.type == "done" { bigDone = r }
            } else if (3..<53).contains(id) {
                perID[id, default: []].append(r.type ?? "")
                if r.type == "file" {
                    #expect(r["counts"]?.intArray == [3])
                    #expect(r["cached"]?.boolValue == true)
                }
                if r.type == "done" { #expect(r["counts"]?.intArray == [3]) }
            }
        }
        // A burst (frames waiting behind each other: the workers take them) ...
        for id in 3..<28 { s.request(tinyRequest(id)) }
        // ... then request-reply, one at a time (answered on the reader thread).
        for id in 28..<53 {
            s.request(tinyRequest(id))
            while perID[id]?.last != "done" { try take() }
        }
        // The big request's id is still in flight; a cached tiny request under it is a duplicate.
        var dup = tinyRequest(1000)
        dup["id"] = Self.u(1000)
        s.request(dup)
        s.request(["id": Self.u(60), "op": Self.t("cancel"), "target": Self.u(30)])
        while bigDone == nil || perID.filter({ $0.value.last == "done" }).count < 50 || !cancelOK { try take() }
        for id in 3..<53 { #expect(perID[id] == ["file", "done"], "request \(id): one file, then one done") }
        #expect(errors == ["duplicate_id"])
        let d = try #require(bigDone)
        #expect(d["files"]?.intValue == 100)
        #expect(bigFiles == 100)
        #expect(d["counts"]?.intArray == [3000 * 100])
    }

    @Test func cancelStopsDispatchAndAccountsForEveryFile() throws {
        let dir = try TempDir()
        var files: [String] = []
        for i in 0..<3000 {
            files.append(try dir.write("f\(i).txt", Array(repeating: UInt8(ascii: "b"), count: 50000)))
        }
        let s = try ServeProcess(["--workers", "1"])
        s.request([
            "id": Self.u(1), "op": Self.t("count"), "files": Self.list(files), "terms": Self.list(["b"]),
            "ordered": .bool(true),
        ])
        s.request(["id": Self.u(2), "op": Self.t("cancel"), "target": Self.u(1)])
        var fileCount = 0
        var sawOK = false
        var done: MessagePackValue? = nil
        var lastIndex = -1
        while done == nil || !sawOK {
            let r = try #require(try s.receive())
            if r["id"] == Self.u(2) { sawOK = r.type == "ok" }
            if r.type == "file" {
                fileCount += 1
                let i = r["index"]?.intValue ?? -1
                #expect(i > lastIndex, "ordered results come in index order")
                lastIndex = i
            }
            if r.type == "done" { done = r }
        }
        let d = try #require(done)
        #expect(d["cancelled"]?.boolValue == true)
        let skipped = d["skipped"]?.intValue ?? -1
        #expect(d["files"]?.intValue == fileCount)
        #expect(fileCount + skipped == files.count)
        #expect(skipped > 0)
        // Cancelling something unknown or finished is fine.
        s.request(["id": Self.u(3), "op": Self.t("cancel"), "target": Self.u(1)])
        #expect(try s.receive()?.type == "ok")
    }

    @Test func interleavedRequestsAllComplete() throws {
        let dir = try TempDir()
        var files: [String] = []
        for i in 0..<50 { files.append(try dir.write("f\(i).txt", Array("x y x \(i)".utf8))) }
        let s = try ServeProcess()
        for id in 1...20 {
            s.request(["id": Self.u(id), "op": Self.t("count"), "files": Self.list(files), "terms": Self.list(["x"])])
        }
        s.request(["id": Self.u(99), "op": Self.t("hello")])
        var done: [Int: MessagePackValue] = [:]
        var perID: [Int: Int] = [:]
        var hello = false
        while done.count < 20 || !hello {
            let r = try #require(try s.receive())
            let id = r["id"]?.intValue ?? -1
            if r.type == "file" { perID[id, default: 0] += 1 }
            if r.type == "done" {
                #expect(perID[id] == 50, "every file response comes before done")
                done[id] = r
            }
            if r.type == "hello" { hello = true }
        }
        for (_, d) in done { #expect(d["counts"]?.intArray == [100]) }
    }

    @Test func shutdownFinishesInFlightAndSendsOKLast() throws {
        let dir = try TempDir()
        var files: [String] = []
        for i in 0..<200 { files.append(try dir.write("f\(i).txt", Array("word ".utf8))) }
        let s = try ServeProcess()
        s.request(["id": Self.u(1), "op": Self.t("count"), "files": Self.list(files), "terms": Self.list(["word"])])
        s.request(["id": Self.u(2), "op": Self.t("shutdown")])
        s.request(["id": Self.u(3), "op": Self.t("hello")])  // never read
        var responses: [MessagePackValue] = []
        while let r = try s.receive() { responses.append(r) }
        #expect(responses.last?.type == "ok" && responses.last?["id"] == Self.u(2))
        #expect(responses.filter { $0.type == "file" }.count == 200)
        #expect(responses.contains { $0.type == "done" })
        #expect(!responses.contains { $0["id"] == Self.u(3) })
        #expect(s.waitExit() == 0)
    }

    @Test func endOfInputFinishesWorkThenExits0() throws {
        let dir = try TempDir()
        let f = try dir.write("f.txt", Array("abc abc".utf8))
        let s = try ServeProcess()
        s.request(["id": Self.u(1), "op": Self.t("count"), "files": Self.list([f, f, f]), "terms": Self.list(["abc"])])
        s.closeInput()
        var responses: [MessagePackValue] = []
        while let r = try s.receive() { responses.append(r) }
        #expect(responses.count == 4)
        #expect(responses.last?.type == "done")
        #expect(s.waitExit() == 0)
    }

    @Test func notAFileNeverBlocks() throws {
        let dir = try TempDir()
        let fifo = dir.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let s = try ServeProcess()
        s.request([
            "id": Self.u(1), "op": Self.t("count"), "files": Self.list([fifo, dir.url.path, "/dev/null"]),
            "terms": Self.list(["x"]),
        ])
        let rs = try s.receiveUntilTerminal(of: Self.u(1), timeout: 5)
        let codes = rs.filter { $0.type == "file" }.compactMap { $0["error"]?["code"]?.stringValue }
        #expect(codes == ["not_a_file", "not_a_file", "not_a_file"])
    }

    @Test func sigtermExitsWithinASecond() throws {
        let s = try ServeProcess()
        s.request(["id": Self.u(1), "op": Self.t("hello")])
        _ = try s.receive()
        kill(s.pid, SIGTERM)
        let start = Date()
        let status = s.waitExit(timeout: 5)
        #expect(status != nil && status != 0)
        #expect(Date().timeIntervalSince(start) < 1.0)
    }

    @Test func closedStdoutEndsTheProcess() throws {
        let s = try ServeProcess()
        s.closeOutput()
        s.request(["id": Self.u(1), "op": Self.t("hello")])
        let status = s.waitExit(timeout: 5)
        #expect(status != nil && status != 0)
    }

    @Test func offsetsSnippetsAndMaxOffsets() throws {
        let dir = try TempDir()
        let f = try dir.write("f.txt", Array("one two cat three\nfour cat five six cat\n".utf8))
        let s = try ServeProcess()
        s.request([
            "id": Self.u(1), "op": Self.t("count"), "files": Self.list([f]), "terms": Self.list(["cat"]),
            "offsets": .bool(true), "max_offsets": Self.u(2), "context": Self.u(1),
        ])
        let r = try #require(try s.receiveUntilTerminal(of: Self.u(1)).first)
        #expect(r["counts"]?.intArray == [3])
        #expect(r["offsets"]?.arrayValue?.first?.intArray == [8, 23])
        #expect(r["truncated"]?.boolValue == true)
        let snippets = r["snippets"]?.arrayValue?.first?.arrayValue?.compactMap { $0.stringValue }
        #expect(snippets == ["two cat three", "four cat five"])
    }
}
