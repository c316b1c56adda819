import Foundation
import Testing

@testable import CryptCount

#if canImport(Glibc)
    import Glibc
#endif

/// Feeds bytes to a FrameReader through a real pipe.
private func events(_ bytes: [UInt8], maxFrame: Int = 64, readSize: Int = 16) -> [FrameEvent] {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { return [] }
    let writeEnd = fds[1]
    let writer = Thread {
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(writeEnd, raw.baseAddress.map { $0 + off }, min(7, raw.count - off))  // dribble
                if n <= 0 { break }
                off += n
            }
        }
        close(writeEnd)
    }
    writer.start()
    var reader = FrameReader(fd: fds[0], maxFrame: maxFrame, readSize: readSize)
    var out: [FrameEvent] = []
    while true {
        let e = reader.next()
        out.append(e)
        switch e {
        case .frame, .empty, .tooLarge: continue
        default:
            close(fds[0])
            return out
        }
    }
}

@Suite struct FramingTests {
    @Test func wholeFramesSplitAcrossReads() {
        let a: [UInt8] = Array("hello".utf8)
        let b = [UInt8](repeating: 7, count: 40)
        #expect(
            events(FrameHeader.encode(a.count) + a + FrameHeader.encode(b.count) + b) == [.frame(a), .frame(b), .end])
    }

    @Test func zeroLengthIsReportedAndTheStreamGoesOn() {
        #expect(events([0, 0, 0, 0, 0, 0, 0, 1, 0xc0]) == [.empty, .frame([0xc0]), .end])
    }

    @Test func oversizeIsReportedAtOnceThenSkipped() {
        let payload = [UInt8](repeating: 1, count: 100)
        #expect(
            events(FrameHeader.encode(100) + payload + [0, 0, 0, 1, 0xc3]) == [
                .tooLarge(declared: 100), .frame([0xc3]), .end,
            ])
    }

    @Test func hugeDeclaredLengthCostsNothing() {
        #expect(
            events([0xff, 0xff, 0xff, 0xff, 1, 2, 3]) == [.tooLarge(declared: 0xffff_ffff), .truncatedWhileSkipping])
    }

    @Test func endInsideHeaderOrPayloadIsTruncated() {
        #expect(events([0, 0]) == [.truncated])
        #expect(events([0, 0, 0, 5, 1, 2]) == [.truncated])
        #expect(events([]) == [.end])
    }

    @Test func payloadLargerThanTheReadBuffer() {
        let big = (0..<60).map { UInt8($0) }
        #expect(events(FrameHeader.encode(big.count) + big, maxFrame: 64, readSize: 16) == [.frame(big), .end])
    }
}

@Suite struct MessageDecodingTests {
    let decoder = RequestDecoder()

    private func code(_ bytes: [UInt8]) -> RequestErrorCode? {
        if case .failure(let e) = decoder.decode(bytes) { return e.code }
        return nil
    }

    private func decode(_ fields: [(String, MessagePackValue)]) -> Result<(RequestID, Request), RequestError> {
        decoder.decode(.map(fields.map { MessagePackPair(.text($0.0), $0.1) }))
    }

    @Test func malformedPayloadsAreBadMsgpack() {
        #expect(code([0xc1]) == .badMsgpack)
        #expect(code([0x01, 0x02]) == .badMsgpack)  // trailing bytes
        #expect(code([0xdb, 0xff, 0xff, 0xff, 0xff, 0x41]) == .badMsgpack)  // str32 past the end
        #expect(code([0xc6, 0x00, 0x10, 0x00, 0x00]) == .badMsgpack)  // bin32 past the end
        #expect(code([0xdd, 0xff, 0xff, 0xff, 0xff]) == .badMsgpack)  // array32 past the end
        #expect(code([0xdf, 0xff, 0xff, 0xff, 0xff]) == .badMsgpack)  // map32 past the end
        #expect(code([UInt8](repeating: 0x91, count: 100_000) + [0xc0]) == .badMsgpack)  // 100,000 deep
        #expect(code([]) == .badMsgpack)
    }

    /// libmsgpack's parse stack holds 32 open containers: the shape check refuses exactly what
    /// libmsgpack would, empty innermost containers included, and calls it too deep (it was
    /// `tooLarge`, libmsgpack's out-of-stack answer, for a 33rd level that was empty).
    @Test func nestingLimitIsLibmsgpacksExactly() {
        for (inner, name) in [([UInt8]([0x90]), "empty array"), ([0x80], "empty map"), ([0x91, 0xc0], "array")] {
            for levels in [31, 32, 33, 34] {
                // levels - 1 arrays of one element around `inner`, itself a container.
                let bytes = [UInt8](repeating: 0x91, count: levels - 1) + inner
                let result = Result { () throws(MessagePackDecodingError) in try MessagePackDecoder.decode(bytes) }
                if levels <= MessagePackDecoder.maxDepth {
                    #expect((try? result.get()) != nil, "\(name), \(levels) levels")
                } else {
                    #expect(throws: MessagePackDecodingError.tooDeep, "\(name), \(levels) levels") {
                        try result.get()
                    }
                }
            }
        }
        // A map's value nested as deep as the limit allows, and one level more.
        func keyed(_ levels: Int) -> [UInt8] {
            Array(repeating: [0x81, 0xa1, 0x6b], count: levels).flatMap { $0 } + [0xc0]
        }
        #expect((try? MessagePackDecoder.decode(keyed(32))) != nil)
        #expect(throws: MessagePackDecodingError.tooDeep) { try MessagePackDecoder.decode(keyed(33)) }
    }

    @Test func shapeErrorsAreBadRequest() {
        #expect(code(MessagePackWriter.encode(.array([]))) == .badRequest)
        #expect(code(MessagePackWriter.encode(.text("hello"))) == .badRequest)
        let intKey = MessagePackWriter.encode(.map([MessagePackPair(.uint(1), .uint(1))]))
        #expect(code(intKey) == .badRequest)
        let ext = MessagePackWriter.encode(.map([MessagePackPair(.text("id"), .ext(type: 1, data: [1]))]))
        #expect(code(ext) == .badRequest)
    }

    @Test func idsAreUnsignedIntegersOrStrings() {
        guard case .success((let id, _)) = decode([("id", .uint(7)), ("op", .text("hello"))]) else {
            Issue.record("uint id")
            return
        }
        #expect(id == .number(7))
        guard case .success((let sid, _)) = decode([("id", .text("a")), ("op", .text("hello"))]) else {
            Issue.record("string id")
            return
        }
        #expect(sid == .text(Array("a".utf8)))
        for bad: MessagePackValue in [.int(-1), .float(1.5), .nil, .bool(true), .array([])] {
            guard case .failure(let e) = decode([("id", bad), ("op", .text("hello"))]) else {
                Issue.record("\(bad) accepted")
                continue
            }
            #expect(e.code == .badRequest && e.id == nil)
        }
    }

    @Test func everyFieldIsTypeChecked() {
        let base: [(String, MessagePackValue)] = [("id", .uint(1)), ("op", .text("count")), ("files", .array([]))]
        let wrong: [(String, MessagePackValue)] = [
            ("files", .uint(1)), ("terms", .text("x")), ("terms", .array([.uint(1)])), ("key", .uint(1)),
            ("cipher", .array([])), ("ignore_case", .text("yes")), ("whole_word", .uint(1)), ("offsets", .uint(0)),
            ("words", .text("")), ("ordered", .array([])), ("max_offsets", .int(-5)), ("max_offsets", .text("9")),
            ("context", .uint(1_000_000)), ("context", .float(1)), ("keys", .uint(3)), ("iter", .int(-1)),
            ("ttl", .text("1")), ("iter", .uint(UInt64.max)),
        ]
        for (k, v) in wrong {
            guard case .failure(let e) = decode(base.filter { $0.0 != k } + [(k, v)]) else {
                Issue.record("\(k)=\(v) accepted")
                continue
            }
            #expect(e.code == .badRequest, "\(k)=\(v)")
            #expect(e.id == .number(1))
        }
        guard case .failure(let e) = decode(base + [("secret", .uint(5))]) else {
            Issue.record("numeric secret accepted")
            return
        }
        #expect(e.code == .badSecret)
    }

    @Test func nilMeansDefault() {
        guard
            case .success((_, .count(let c))) = decode([
                ("id", .uint(1)), ("op", .text("count")), ("files", .array([.text("a"), .binary([0xff])])),
                ("terms", .nil), ("ignore_case", .nil), ("max_offsets", .nil),
            ])
        else {
            Issue.record("nil options rejected")
            return
        }
        #expect(c.files == [WireBytes(Array("a".utf8), isBinary: false), WireBytes([0xff], isBinary: true)])
        #expect(c.search.maxOffsets == 1000 && !c.search.ignoreCase && c.terms.isEmpty)
    }

    @Test func unknownOpAndLimits() {
        guard case .failure(let e) = decode([("id", .uint(1)), ("op", .text("explode"))]) else { return }
        #expect(e.code == .unknownOp)
        var limits = RequestLimits()
        limits.maxFiles = 2
        limits.maxTerms = 1
        limits.maxTermBytes = 3
        let d = RequestDecoder(limits: limits)
        let tooMany = MessagePackValue.map([
            MessagePackPair(.text("id"), .uint(1)), MessagePackPair(.text("op"), .text("count")),
            MessagePackPair(.text("files"), .array([.text("a"), .text("b"), .text("c")])),
        ])
        if case .failure(let e) = d.decode(tooMany) {
            #expect(e.code == .badRequest)
        } else {
            Issue.record("max files")
        }
        let longTerm = MessagePackValue.map([
            MessagePackPair(.text("id"), .uint(1)), MessagePackPair(.text("op"), .text("count")),
            MessagePackPair(.text("files"), .array([])), MessagePackPair(.text("terms"), .array([.text("abcd")])),
        ])
        if case .failure(let e) = d.decode(longTerm) {
            #expect(e.code == .badRequest)
        } else {
            Issue.record("term bytes")
        }
    }

    @Test func valuesRoundTripThroughLibmsgpack() throws {
        let v = MessagePackValue.map([
            MessagePackPair(.text("a"), .array([.int(-3), .uint(UInt64.max), .float(1.5), .bool(false), .nil])),
            MessagePackPair(.binary([0, 1]), .string([0xff, 0xfe])),
            MessagePackPair(.text("e"), .ext(type: 5, data: [1, 2, 3])),
        ])
        #expect(try MessagePackDecoder.decode(MessagePackWriter.encode(v)) == v)
    }
}

@Suite struct MessageEncodingTests {
    /// A map sized after its entries are packed comes out byte for byte as one sized up front,
    /// including past a fixmap (16+ entries) and past a map16 (65,536+ entries).
    @Test(arguments: [0, 1, 15, 16, 200, 65535, 65536, 70000])
    func mapsSizedAfterTheFactMatchMapsSizedUpFront(entries: Int) {
        let upFront = MessagePackWriter()
        let after = MessagePackWriter()
        upFront.pack("before")
        after.pack("before")
        upFront.packMapHeader(entries)
        let header = after.beginMap()
        for i in 0..<entries {
            for w in [upFront, after] {
                w.pack("k\(i)")
                w.pack(i)
            }
        }
        after.endMap(at: header, count: entries)
        upFront.pack("after")
        after.pack("after")
        #expect(after.bytes == upFront.bytes)
    }
}

@Suite struct ResponseFitTests {
    /// A failed file's message is cut, at a character boundary, so that the frame fits in
    /// max_frame; the bound a count request is checked against leaves room for a short one.
    @Test func failedFileMessageIsCutToFit() throws {
        let path = WireBytes(Array(repeating: UInt8(ascii: "p"), count: 150), isBinary: false)
        let long = String(repeating: "é", count: 400)
        for maxFrame in [260, 300, 333, 1000] {
            let frame = ResponseEncoder(maxFrame: maxFrame).file(
                .number(7), index: 3, path: path, outcome: .failed(.ioError, long), options: SearchOptions())
            let payload = Array(frame.dropFirst(4))
            #expect(payload.count <= maxFrame, "max_frame \(maxFrame)")
            let value = try MessagePackDecoder.decode(payload)
            let message = try #require(value["error"]?["message"]?.stringValue)
            #expect(long.hasPrefix(message) && (maxFrame == 1000 || message.count < 400))
            #expect(value["error"]?["code"]?.stringValue == "io_error")
        }
        // The bound: the longest path and a count per term, each at its widest.
        let bound = ResponseEncoder.countFrameBound(.number(7), longestPath: 150, terms: 1)
        let tight = ResponseEncoder(maxFrame: bound).file(
            .number(7), index: Int.max, path: path, outcome: .failed(.ioError, long), options: SearchOptions())
        #expect(tight.count - 4 <= bound)
        let message = try #require(
            try MessagePackDecoder.decode(Array(tight.dropFirst(4)))["error"]?["message"]?.stringValue)
        #expect(message.utf8.count >= ResponseEncoder.errorRoom - 2)
    }

    /// A request error's message (which may quote the request) is cut, at a character
    /// boundary, to fit max_frame, or `responseFloor` under a smaller limit; the id is kept.
    @Test func requestErrorMessageIsCutToFit() throws {
        let long = String(repeating: "é", count: 6000)
        let id = RequestID.text(Array(repeating: UInt8(ascii: "i"), count: 1000))
        for maxFrame in [100, 5000, 9000, 20000] {
            let frame = ResponseEncoder(maxFrame: maxFrame).error(id, "unknown_key", long)
            let payload = Array(frame.dropFirst(4))
            #expect(payload.count <= max(maxFrame, ResponseEncoder.responseFloor), "max_frame \(maxFrame)")
            let value = try MessagePackDecoder.decode(payload)
            let message = try #require(value["message"]?.stringValue)
            #expect(long.hasPrefix(message) && (maxFrame == 20000) == (message == long))
            #expect(value["id"]?.stringValue == String(repeating: "i", count: 1000))
        }
    }

    /// The longest string id is what leaves every response that is not cut room within
    /// max_frame; one byte more is refused as unreadable (bad_request, id nil).
    @Test func idsLongerThanAResponseCanHoldAreRefused() {
        var limits = RequestLimits()
        limits.maxIDBytes = ResponseEncoder.longestID(maxFrame: 10000)
        #expect(limits.maxIDBytes == 10000 - 2048)
        #expect(ResponseEncoder.longestID(maxFrame: 100) == ResponseEncoder.responseFloor - 2048)
        let decoder = RequestDecoder(limits: limits)
        for (length, accepted) in [(limits.maxIDBytes, true), (limits.maxIDBytes + 1, false)] {
            let id = MessagePackValue.string(Array(repeating: UInt8(ascii: "i"), count: length))
            let request = MessagePackValue.map([
                MessagePackPair(.text("id"), id), MessagePackPair(.text("op"), .text("hello")),
            ])
            switch decoder.decode(request) {
            case .success: #expect(accepted)
            case .failure(let e): #expect(!accepted && e.code == .badRequest && e.id == nil)
            }
        }
    }
}
