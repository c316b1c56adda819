import ArgumentParser
import CryptCount
import CryptCountJSONLines

struct UnframeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unframe",
        abstract: "Turn length-prefixed MessagePack frames on stdin into JSON Lines on stdout.",
        discussion: """
            Each frame becomes one line of compact JSON; map keys keep their wire order (the \
            server's insertion order). The rendering is the one `cryptcount frame` reads, so \
            `unframe | frame` reproduces the frames. Output is flushed whenever input would \
            block. Input that ends inside a frame, an empty or oversize frame, or a payload that \
            is not one MessagePack value (or nests more than 32 arrays or maps, libmsgpack's \
            limit): a message on stderr and exit status 2.
            """
    )

    @Option(help: "Largest frame payload accepted, in bytes (default 1 GiB).")
    var maxFrame: Int = 1 << 30

    func run() throws {
        var input = FDReader(fd: 0)
        var output = FDWriter(fd: 1)
        var frameNumber = 0
        func fail(_ message: String) throws -> Never {
            try output.flush()
            printError("unframe", message)
            throw ExitCode(2)
        }
        do {
            while true {
                let header = try input.read(count: 4, beforeBlocking: { try output.flush() })
                if header.isEmpty { break }
                frameNumber += 1
                guard header.count == 4 else {
                    try fail("input ended inside the length prefix of frame \(frameNumber)")
                }
                let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
                guard length > 0 else { try fail("frame \(frameNumber) has length 0") }
                guard length <= maxFrame else {
                    try fail(
                        "frame \(frameNumber) declares \(length) bytes, above --max-frame \(maxFrame) "
                            + "(is the input really framed?)")
                }
                let payload = try input.read(count: length, beforeBlocking: { try output.flush() })
                guard payload.count == length else {
                    try fail("input ended inside frame \(frameNumber) (\(payload.count) of \(length) bytes)")
                }
                let value: MessagePackValue
                do {
                    value = try MessagePackDecoder.decode(payload)
                } catch .tooDeep {
                    // libmsgpack's parse stack (`frame` takes deeper lines, for tests of `serve`).
                    try fail(
                        "frame \(frameNumber) nests more than \(MessagePackDecoder.maxDepth) arrays or maps, "
                            + "the most libmsgpack (and so unframe and serve) can read")
                } catch {
                    try fail("frame \(frameNumber) is not one MessagePack value (\(error))")
                }
                var line = JSONLines.render(value)
                line.append(0x0a)
                output.append(line)
            }
            try output.flush()
        } catch let failure as IOFailure {
            printError("unframe", failure.message)
            throw ExitCode(2)
        }
    }
}
