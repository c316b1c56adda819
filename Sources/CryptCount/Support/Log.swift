#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Human-readable log lines on stderr (stdout carries frames only). Callers pass only facts
/// that are safe to show: paths, counts, codes; never secrets or plaintext.
package enum Log {
    package enum Level: Int, Sendable, Comparable, CaseIterable {
        case error = 0
        case warn
        case info
        case debug

        package static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }

        package init?(name: String) {
            switch name.lowercased() {
            case "error": self = .error
            case "warn", "warning": self = .warn
            case "info": self = .info
            case "debug": self = .debug
            default: return nil
            }
        }

        var label: String {
            switch self {
            case .error: "error"
            case .warn: "warn"
            case .info: "info"
            case .debug: "debug"
            }
        }
    }

    nonisolated(unsafe) private static var threshold: Level = .warn

    /// Set once at start-up, before any thread is started.
    package static func setLevel(_ level: Level) { threshold = level }

    package static func enabled(_ level: Level) -> Bool { level <= threshold }

    package static func error(_ message: @autoclosure () -> String) { write(.error, message) }
    package static func warn(_ message: @autoclosure () -> String) { write(.warn, message) }
    package static func info(_ message: @autoclosure () -> String) { write(.info, message) }
    package static func debug(_ message: @autoclosure () -> String) { write(.debug, message) }

    private static func write(_ level: Level, _ message: () -> String) {
        guard enabled(level) else { return }
        // One write(2) per line, so lines from different threads do not interleave.
        var line = "cryptcount[\(getpid())] \(level.label): \(message())\n"
        line.withUTF8 { buf in
            var offset = 0
            while offset < buf.count {
                let n = Glibc.write(2, buf.baseAddress.map { $0 + offset }, buf.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
