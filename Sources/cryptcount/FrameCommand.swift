import ArgumentParser
import CryptCount
import CryptCountJSONLines

struct FrameCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frame",
        abstract: "Turn JSON Lines on stdin into length-prefixed MessagePack frames on stdout.",
        discussion: """
            One JSON value per line becomes one frame: a 4-byte big-endian length, then one \
            MessagePack value. Blank lines are skipped. Byte strings use {"$bin":"<base64>"}, \
            non-UTF-8 str {"$str":"<base64>"}, ext {"$ext":[type,"<base64>"]}, maps with \
            non-string keys {"$map":[[k,v],...]}; integers stay exact, numbers with a fraction or \
            exponent become float64 (see protocol/PROTOCOL.md). Output is flushed whenever input \
            would block, so it works inside a coprocess pipeline. A line that is not valid \
            stops it: the frames of the lines before it are written, a message naming the line \
            goes to stderr, exit status 2; lines after it are not read (later requests may \
            depend on the one that failed).
            """
    )

    func run() throws {
        var input = FDReader(fd: 0)
        var output = FDWriter(fd: 1)
        let writer = MessagePackWriter()
        var lineNumber = 0
        do {
            while let line = try input.nextLine(beforeBlocking: { try output.flush() }) {
                lineNumber += 1
                if JSONLines.isBlank(line) { continue }
                let value: MessagePackValue
                do {
                    value = try JSONLines.parse(line)
                } catch {
                    try output.flush()
                    printError("frame", "line \(lineNumber), \(error)")
                    throw ExitCode(2)
                }
                writer.reset()
                writer.pack(value)
                guard writer.count <= Int(UInt32.max) else {
                    try output.flush()
                    printError(
                        "frame", "line \(lineNumber): the value needs \(writer.count) bytes, more than a frame holds")
                    throw ExitCode(2)
                }
                output.append(writer.frameBytes())
            }
            try output.flush()
        } catch let failure as IOFailure {
            printError("frame", failure.message)
            throw ExitCode(2)
        }
    }
}
