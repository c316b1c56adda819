import ArgumentParser
import CryptCount
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `cryptcount count`: the one-shot command for people. Runs the same engine as `serve`, in
/// process, and prints a table (or JSON Lines).
struct CountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "count",
        abstract: "Decrypt files in memory and count terms in them (directories are walked).",
        discussion: """
            Prints a table: one row per file, one column per term, and a total row. With --json, one \
            JSON object per file ({"path", "counts", "bytes"} or {"path", "error"}), in input order.
            The secret is never taken from the command line: --secret-file F (its content, less one \
            trailing newline) or --secret-env VAR. For age, a secret file holding AGE-SECRET-KEY lines \
            is an identity file; anything else is a passphrase.
            Exit status: 0 when every file was processed, 2 when any failed (each failure is reported \
            on stderr with its path and reason), 1 on a usage or secret error.
            """
    )

    @Option(name: [.customShort("t"), .customLong("term")], help: "A term to count (repeatable).")
    var terms: [String] = []

    @Option(
        name: [.customShort("e"), .customLong("regexp")],
        help: ArgumentHelp(
            "A regular expression to count, as `rg --count-matches -e` (repeatable).",
            discussion: "With -e, -t terms are counted as escaped patterns; columns list -t terms, then -e patterns."))
    var patterns: [String] = []

    @Option(help: "plain, biographer, biographer-v0, fernet, age, openssl or auto.")
    var cipher: String = "plain"

    @Option(name: .customLong("secret-file"), help: "Read the secret from this file.")
    var secretFile: String?

    @Option(name: .customLong("secret-env"), help: "Read the secret from this environment variable.")
    var secretEnv: String?

    @Option(help: "PBKDF2 iterations for openssl files (default 10000).")
    var iter: Int?

    @Flag(name: [.customShort("i"), .customLong("ignore-case")], help: "Unicode simple case folding.")
    var ignoreCase = false

    @Flag(name: [.customShort("w"), .customLong("whole-word")], help: "Count whole words only.")
    var wholeWord = false

    @Flag(help: "Also count whitespace-separated words.")
    var words = false

    @Flag(help: "One JSON object per file instead of a table.")
    var json = false

    @Option(help: "Worker threads (default: the number of cores).")
    var workers: Int?

    @Argument(help: "Files or directories.")
    var paths: [String]

    /// A term as a pattern matching exactly it: ASCII punctuation escaped.
    static func escaped(_ term: String) -> String {
        var out = ""
        for c in term.unicodeScalars {
            if c.isASCII && !(c.properties.isAlphabetic || ("0"..."9").contains(c) || c == " ") { out.append("\\") }
            out.unicodeScalars.append(c)
        }
        return out
    }

    func validate() throws {
        if secretFile != nil && secretEnv != nil {
            throw ValidationError("give --secret-file or --secret-env, not both")
        }
        if terms.contains(where: \.isEmpty) { throw ValidationError("a term must not be empty") }
        if patterns.contains(where: \.isEmpty) { throw ValidationError("a pattern must not be empty") }
        if let workers, workers < 1 || workers > 1024 { throw ValidationError("--workers must be between 1 and 1024") }
        if paths.isEmpty { throw ValidationError("give at least one file or directory") }
    }

    func run() throws {
        let secret = try loadSecret()
        var config = EngineConfig()
        config.workers = workers ?? ProcessInfo.processInfo.activeProcessorCount
        config.cacheBytes = 0
        if cipher != "auto" {
            guard CipherRegistry.isKnown(cipher) else {
                throw ValidationError(
                    "unknown cipher \(cipher); known: \(CipherRegistry.names.joined(separator: ", ")), auto")
            }
            if CipherRegistry.needsSecret(cipher) && secret == nil {
                throw ValidationError("cipher \(cipher) needs --secret-file or --secret-env")
            }
        }
        let keys: KeyChoice
        do throws(SecretError) {
            let options = CipherOptions(iterations: iter)
            if cipher == "auto" {
                var list: [UnlockedKey] = []
                if let secret {
                    for name in CipherRegistry.names where name != "plain" && !name.hasPrefix("biographer") {
                        if let k = try? UnlockedKey.make(
                            cipher: name, secret: adapt(secret, for: name), options: options)
                        {
                            list.append(k)
                        }
                    }
                }
                keys = .auto(list)
            } else {
                keys = .single(
                    try UnlockedKey.make(
                        cipher: cipher, secret: secret.map { adapt($0, for: cipher) }, options: options))
            }
        } catch {
            throw ValidationError("the secret is not a valid \(cipher) key: \(error.message)")
        }

        var files: [[UInt8]] = []
        for p in paths { FileWalker.collect(Array(p.utf8), into: &files) }
        let plan: SearchPlan
        let regex = !patterns.isEmpty
        // With -e every column is a pattern: -t terms are escaped into literal patterns.
        let columns = regex ? terms.map(Self.escaped) + patterns : terms
        do throws(SearchPlanError) {
            plan = try SearchPlan(
                terms: columns.map { Array($0.utf8) },
                options: SearchOptions(ignoreCase: ignoreCase, wholeWord: wholeWord, words: words, regex: regex))
        } catch {
            throw ValidationError(error.message.replacingOccurrences(of: "\"terms\"", with: "column "))
        }

        let pool = WorkerPool(config: config)
        let printer = CountPrinter(terms: terms + patterns, json: json, words: words, total: files.count)
        let job = CountJob(
            id: .number(1), files: files.map { WireBytes($0, isBinary: false) }, plan: plan, keys: keys, ordered: true,
            observer: printer)
        pool.start()
        _ = pool.submit(job)
        let failed = printer.wait()
        throw ExitCode(failed > 0 ? 2 : 0)
    }

    /// age takes identity text or, for anything else, a passphrase.
    private func adapt(_ secret: SecretInput, for cipher: String) -> SecretInput {
        guard cipher == "age", case .text(let bytes) = secret else { return secret }
        if String(decoding: bytes, as: UTF8.self).contains("AGE-SECRET-KEY-") { return secret }
        return .map(["passphrase": secret])
    }

    private func loadSecret() throws -> SecretInput? {
        if let name = secretEnv {
            guard let value = getenv(name) else { throw ValidationError("environment variable \(name) is not set") }
            return .text(Array(String(cString: value).utf8))
        }
        guard let path = secretFile else { return nil }
        guard var bytes = FileManager.default.contents(atPath: path).map({ [UInt8]($0) }) else {
            throw ValidationError("cannot read the secret file \(path)")
        }
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return .text(bytes)
    }
}

/// Expands directories (recursively, names sorted, symlinked directories not followed) into
/// the files below them. Paths stay raw bytes, so names that are not UTF-8 still work.
enum FileWalker {
    static func collect(_ path: [UInt8], into out: inout [[UInt8]]) {
        var st = stat()
        let cpath = path + [0]
        let isDir = withCString(cpath) { lstat($0, &st) == 0 } && (st.st_mode & S_IFMT) == S_IFDIR
        guard isDir else {
            out.append(path)
            return
        }
        guard let dir = withCString(cpath, { opendir($0) }) else {
            out.append(path)  // let the engine report why it cannot be read
            return
        }
        var names: [[UInt8]] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
            names.append(name)
        }
        closedir(dir)
        names.sort { $0.lexicographicallyPrecedes($1) }
        let base = path.last == UInt8(ascii: "/") ? path : path + [UInt8(ascii: "/")]
        for name in names { collect(base + name, into: &out) }
    }
}

/// Receives results in input order and prints them.
final class CountPrinter: CountObserver, @unchecked Sendable {
    let terms: [String]
    let json: Bool
    let words: Bool
    let total: Int
    private let monitor = Monitor()
    private var rows: [(path: String, outcome: FileOutcome)] = []
    private var finished = false
    private var failed = 0
    private var seen = 0
    private let progress: Bool
    private let started = monotonicMicros()
    private var lastProgress: UInt64 = 0

    init(terms: [String], json: Bool, words: Bool, total: Int) {
        self.terms = terms
        self.json = json
        self.words = words
        self.total = total
        self.progress = isatty(2) != 0
    }

    func fileFinished(_ job: CountJob, index: Int, outcome: FileOutcome, worker: Int) {
        let path = String(decoding: job.files[index].bytes, as: UTF8.self)
        monitor.withLock {
            seen += 1
            if case .failed(let code, let message) = outcome {
                failed += 1
                clearProgress()
                Self.writeErr("cryptcount count: \(path): \(code.rawValue): \(message)\n")
            }
            if json {
                Self.writeOut(jsonLine(path: path, outcome: outcome))
            } else {
                rows.append((path, outcome))
            }
            showProgress()
        }
    }

    func jobFinished(_ job: CountJob, summary: CountSummary, worker: Int) {
        monitor.withLock {
            clearProgress()
            if !json { Self.writeOut(table(summary)) }
            finished = true
            monitor.broadcast()
        }
    }

    /// Blocks until the job is done; returns how many files failed.
    func wait() -> Int {
        monitor.withLock {
            while !finished { monitor.wait() }
            return failed
        }
    }

    private var progressShown = false

    private func showProgress() {
        guard progress else { return }
        let now = monotonicMicros()
        // Only for work that takes over half a second, and at most ten times a second.
        guard now &- started > 500_000, now &- lastProgress > 100_000 else { return }
        lastProgress = now
        progressShown = true
        Self.writeErr("\r\(seen)/\(total) files")
    }

    private func clearProgress() {
        guard progressShown else { return }
        progressShown = false
        Self.writeErr("\r\u{1b}[K")
    }

    private func jsonLine(path: String, outcome: FileOutcome) -> String {
        switch outcome {
        case .counted(let f):
            var s =
                "{\"path\":\(Self.quote(path)),\"counts\":[\(f.result.counts.map(String.init).joined(separator: ","))]"
            s += ",\"bytes\":\(f.bytes)"
            if let w = f.result.words { s += ",\"words\":\(w)" }
            if let c = f.cipher { s += ",\"cipher\":\(Self.quote(c))" }
            return s + "}\n"
        case .failed(let code, let message):
            return
                "{\"path\":\(Self.quote(path)),\"error\":{\"code\":\"\(code.rawValue)\",\"message\":\(Self.quote(message))}}\n"
        }
    }

    private func table(_ summary: CountSummary) -> String {
        var header = ["path"] + terms
        if words { header.append("words") }
        var body: [[String]] = []
        for row in rows {
            switch row.outcome {
            case .counted(let f):
                var cells = [row.path] + f.result.counts.map(String.init)
                if words { cells.append(String(f.result.words ?? 0)) }
                body.append(cells)
            case .failed(let code, _):
                body.append(
                    [row.path] + Array(repeating: "-", count: terms.count) + (words ? ["-"] : []) + [
                        "(\(code.rawValue))"
                    ])
            }
        }
        var totalRow = ["TOTAL"] + summary.counts.map(String.init)
        if words { totalRow.append(String(summary.words ?? 0)) }
        if header.count == 1 { header.append("bytes") }
        let all = [header] + body + [totalRow]
        let columns = all.map(\.count).max() ?? 1
        var widths = [Int](repeating: 0, count: columns)
        for r in all { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for r in all {
            var line = ""
            for (i, c) in r.enumerated() {
                if i == 0 {
                    line += c.padding(toLength: widths[0], withPad: " ", startingAt: 0)
                } else {
                    line += "  " + String(repeating: " ", count: max(0, widths[i] - c.count)) + c
                }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        return out
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    // Output errors (a closed pipe) are not worth dying for here: the exit status still tells.
    static func writeOut(_ s: String) { try? writeAll(fd: 1, Array(s.utf8)) }
    static func writeErr(_ s: String) { try? writeAll(fd: 2, Array(s.utf8)) }
}
