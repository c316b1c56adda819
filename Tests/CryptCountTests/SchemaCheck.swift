import Foundation
import Synchronization
import Testing

@testable import CryptCount
@testable import CryptCountFuzzSupport
@testable import CryptCountJSONLines

/// Checks responses against `protocol/schema.json` with `Tests/Golden/schema_check.py` (Python
/// `jsonschema`, installed by `make deps`). The golden runner and `ServeProcess` pass every
/// response they read through it, so a response field the schema does not allow fails the
/// test that provoked it, not only a hand-written golden line.
enum SchemaCheck {
    static let script = TestPaths.packageRoot.appendingPathComponent("Tests/Golden/schema_check.py")

    /// Why some of `responses` break the schema (empty: all valid), or nil when the checker
    /// cannot run here (no python3 or no jsonschema), which is printed once.
    static func problems(_ responses: [MessagePackValue]) -> [String]? {
        if responses.isEmpty { return [] }
        let lines = responses.map { JSONLines.renderString($0) + "\n" }.joined()
        let input = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cryptcount-schema-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: input) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path]
        let out = Pipe()
        do {
            try Data(lines.utf8).write(to: input)
            process.standardInput = try FileHandle(forReadingFrom: input)
            process.standardOutput = out
            process.standardError = out
            try process.run()
        } catch {
            unavailable("cannot run python3 (\(error))")
            return nil
        }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        switch process.terminationStatus {
        case 0: return []
        case 1: return text.split(separator: "\n").map(String.init)
        case 3:
            unavailable(text.trimmingCharacters(in: .whitespacesAndNewlines))
            return nil
        default: return ["schema_check.py failed (status \(process.terminationStatus)): \(text)"]
        }
    }

    private static let warned = Mutex(false)

    private static func unavailable(_ why: String) {
        let first = warned.withLock { w in
            defer { w = true }
            return !w
        }
        if first { print("responses are not schema-checked: \(why)") }
    }

    /// Records an issue for each response that breaks the schema.
    static func expectValid(_ responses: [MessagePackValue], _ context: String) {
        guard let problems = problems(responses) else { return }
        for p in problems.prefix(5) {
            Issue.record("\(context): a response does not match protocol/schema.json: \(p)")
        }
    }
}
