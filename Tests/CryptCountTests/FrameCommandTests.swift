import Foundation
import Testing

@testable import CryptCount

/// End-to-end tests of `cryptcount frame`, `unframe` and `encrypt` through the built binary.
@Suite struct FrameCommandTests {
    static let sample = """
        {"id":1,"op":"hello"}

        {"id":"two","op":"count","files":["a.txt",{"$bin":"/w=="},{"$str":"Yf8="}],"terms":["é"],"n":-5,"f":2.5}
        {"$map":[[1,{"$ext":[3,"AAE="]}]]}
        [18446744073709551615,-9223372036854775808,1e+300,null,true,{}]

        """

    @Test func frameThenUnframeRoundTrips() throws {
        guard let framed = try CLI.run(["frame"], stdin: Array(Self.sample.utf8)) else { return }
        #expect(framed.status == 0, "\(framed.stderr)")
        let frames = try #require(splitFrames(framed.stdout))
        #expect(frames.count == 4)  // blank lines are skipped
        #expect(
            try MessagePackDecoder.decode(frames[0])
                == .map([
                    MessagePackPair(.text("id"), .uint(1)), MessagePackPair(.text("op"), .text("hello")),
                ]))
        let count = try MessagePackDecoder.decode(frames[1])
        #expect(count["files"] == .array([.text("a.txt"), .binary([0xff]), .string([0x61, 0xff])]))
        #expect(count["n"] == .int(-5))
        #expect(count["f"] == .float(2.5))

        guard let unframed = try CLI.run(["unframe"], stdin: framed.stdout) else { return }
        #expect(unframed.status == 0, "\(unframed.stderr)")
        let expected = Self.sample.split(separator: "\n").map(String.init).joined(separator: "\n") + "\n"
        #expect(String(decoding: unframed.stdout, as: UTF8.self) == expected)

        // And back again: the same bytes.
        guard let again = try CLI.run(["frame"], stdin: unframed.stdout) else { return }
        #expect(again.stdout == framed.stdout)
    }

    @Test func badLineStopsWithItsLineNumberAndNoPartialFrame() throws {
        let input = "{\"id\":1}\n\n{\"id\":2}\n{\"id\":3,}\n{\"id\":4}\n"
        guard let result = try CLI.run(["frame"], stdin: Array(input.utf8)) else { return }
        #expect(result.status == 2)
        #expect(result.stderr.contains("line 4"), "\(result.stderr)")
        let frames = try #require(splitFrames(result.stdout), "output must end at a frame boundary")
        #expect(frames.count == 2)
        #expect(try frames.map { try MessagePackDecoder.decode($0)["id"] } == [.uint(1), .uint(2)])
    }

    @Test func notUTF8AndOutOfRangeLinesAreErrors() throws {
        guard let bad = try CLI.run(["frame"], stdin: [0x22, 0xff, 0x22, 0x0a]) else { return }
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("line 1") && bad.stderr.contains("UTF-8"), "\(bad.stderr)")
        #expect(bad.stdout.isEmpty)
        guard let big = try CLI.run(["frame"], stdin: Array("1\n18446744073709551616\n".utf8)) else { return }
        #expect(big.status == 2)
        #expect(big.stderr.contains("line 2"), "\(big.stderr)")
        #expect(splitFrames(big.stdout)?.count == 1)
    }

    @Test func lastLineWithoutNewlineAndCRLF() throws {
        guard let result = try CLI.run(["frame"], stdin: Array("[1]\r\n[2]".utf8)) else { return }
        #expect(result.status == 0)
        #expect(
            try splitFrames(result.stdout)?.map { try MessagePackDecoder.decode($0) } == [
                .array([.uint(1)]), .array([.uint(2)]),
            ])
    }

    @Test func truncatedFrameIsAnError() throws {
        let good = MessagePackWriter()
        good.pack(.text("ok"))
        let frame = good.frameBytes()
        // Payload cut short, and header cut short.
        for cut in [frame + Array(frame.dropLast()), frame + Array(frame.prefix(2))] {
            guard let result = try CLI.run(["unframe"], stdin: cut) else { return }
            #expect(result.status == 2)
            #expect(result.stderr.contains("frame 2"), "\(result.stderr)")
            #expect(String(decoding: result.stdout, as: UTF8.self) == "\"ok\"\n")
        }
    }

    @Test func unframeRejectsBadFrames() throws {
        let cases: [([UInt8], String)] = [
            ([0, 0, 0, 0], "length 0"),
            ([0, 0, 0, 2, 0xc1, 0x00], "not one MessagePack value"),
            ([0, 0, 0, 2, 0x01, 0x02], "not one MessagePack value"),  // trailing bytes
            (Array("{\"id\":1}\n".utf8), "--max-frame"),
            // 33 arrays, the innermost empty: libmsgpack's limit, said as such (was "tooLarge").
            ([0, 0, 0, 33] + [UInt8](repeating: 0x91, count: 32) + [0x90], "nests more than 32 arrays or maps"),
            ([0, 0, 0, 101] + [UInt8](repeating: 0x91, count: 100) + [0xc0], "nests more than 32 arrays or maps"),
        ]
        for (input, fragment) in cases {
            guard let result = try CLI.run(["unframe"], stdin: input) else { return }
            #expect(result.status == 2)
            #expect(result.stderr.contains(fragment), "\(result.stderr)")
        }
        guard let small = try CLI.run(["unframe", "--max-frame", "3"], stdin: [0, 0, 0, 4, 0xa3, 0x61, 0x62, 0x63])
        else { return }
        #expect(small.status == 2)
    }

    @Test func largeInputStreamsThrough() throws {
        // Many lines and one line much larger than the read buffer.
        var input = ""
        for i in 0..<5000 { input += "{\"id\":\(i),\"op\":\"stats\"}\n" }
        let long = String(repeating: "x", count: 300_000)
        input += "{\"id\":5000,\"files\":[\"\(long)\"]}\n"
        guard let framed = try CLI.run(["frame"], stdin: Array(input.utf8)) else { return }
        #expect(framed.status == 0)
        #expect(splitFrames(framed.stdout)?.count == 5001)
        guard let unframed = try CLI.run(["unframe"], stdin: framed.stdout) else { return }
        #expect(unframed.status == 0)
        #expect(String(decoding: unframed.stdout, as: UTF8.self) == input)
    }

    @Test func encryptWritesFilesTheKeyDecrypts() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cryptcount-enc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("s3cret\n".utf8).write(to: dir.appendingPathComponent("pw"))
        let plain = Array("Dear diary, today I met a café owner.\n".utf8)
        try Data(plain).write(to: dir.appendingPathComponent("plain.txt"))
        for cipher in ["biographer", "biographer-v0"] {
            guard
                let result = try CLI.run(
                    ["encrypt", "--cipher", cipher, "--secret-file", "pw", "plain.txt", "out.bin"], directory: dir)
            else { return }
            #expect(result.status == 0, "\(result.stderr)")
            let c = Array(try Data(contentsOf: dir.appendingPathComponent("out.bin")))
            // The trailing newline of the secret file is not part of the password.
            let key = try BiographerKey(password: Array("s3cret".utf8), chained: cipher == "biographer")
            var out: [UInt8] = []
            try c.withUnsafeBytes { try key.decrypt(whole: $0, into: &out) }
            #expect(out == plain)
            if cipher == "biographer" {
                #expect(c.count == 8 + 16 * plain.count)
            }
        }
        // stdin to stdout.
        guard
            let piped = try CLI.run(
                ["encrypt", "--cipher", "biographer-v0", "--secret-file", "pw", "-", "-"], stdin: plain, directory: dir)
        else { return }
        #expect(piped.status == 0)
        #expect(piped.stdout.count == 2 * plain.count)
    }

    @Test func encryptErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cryptcount-enc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("\n".utf8).write(to: dir.appendingPathComponent("empty-pw"))
        try Data("pw".utf8).write(to: dir.appendingPathComponent("pw"))
        let cases: [([String], String)] = [
            (["--cipher", "rot13", "--secret-file", "pw", "-", "-"], "unsupported cipher"),
            (["--cipher", "biographer", "--secret-file", "missing", "-", "-"], "missing"),
            (["--cipher", "biographer", "--secret-file", "empty-pw", "-", "-"], "empty"),
            (["--cipher", "biographer", "--secret-file", "pw", "nope.txt", "-"], "nope.txt"),
            (["--cipher", "biographer", "--secret-file", "pw", "-", "no/such/dir/out"], "no/such/dir/out"),
        ]
        for (args, fragment) in cases {
            guard let result = try CLI.run(["encrypt"] + args, directory: dir) else { return }
            #expect(result.status == 2, "\(args)")
            #expect(result.stderr.contains(fragment), "\(result.stderr)")
            #expect(!result.stderr.contains("pw\n"))
        }
    }

    @Test func frameAnswersEachLineWhileInputStaysOpen() throws {
        guard let child = try CLICoprocess(["frame"]) else { return }
        for i in 0..<3 {
            try child.send(Array("{\"id\":\(i),\"op\":\"stats\"}\n".utf8))
            let header = child.receive(4)
            try #require(header.count == 4, "no frame for line \(i + 1) while stdin is open")
            let n = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
            let value = try MessagePackDecoder.decode(child.receive(n))
            #expect(value["id"] == .uint(UInt64(i)))
        }
        #expect(child.finish() == 0)
    }

    @Test func unframeAnswersEachFrameWhileInputStaysOpen() throws {
        guard let child = try CLICoprocess(["unframe"]) else { return }
        for i in 0..<3 {
            let writer = MessagePackWriter()
            writer.pack(.map([MessagePackPair(.text("id"), .uint(UInt64(i)))]))
            try child.send(writer.frameBytes())
            let expected = Array("{\"id\":\(i)}\n".utf8)
            #expect(child.receive(expected.count) == expected, "no line for frame \(i + 1) while stdin is open")
        }
        #expect(child.finish() == 0)
    }
}
