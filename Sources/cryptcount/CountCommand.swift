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
            is an identity file; anything else is a passphrase. For openpgp, the secret is a passphrase \
            (for gpg -c files and for the keys of --gnupg-home DIR or --keys-file F); a secret file \
            holding a PGP PRIVATE KEY BLOCK is a keys file.
            Exit status: 0 when every file was processed, 2 when any failed (each failure is reported \
            on stderr with its path and reason), 1 on a usage or secret error.
            """
    )

    @Option(name: [.customShort("t"), .customLong("term")], help: "A term to count (repeatable).")
    var terms: [String] = []

    @Option(help: "plain, biographer, biographer-v0, fernet, age, openssl, openpgp or auto.")
    var cipher: String = "plain"

    @Option(name: .customLong("secret-file"), help: "Read the secret from this file.")
    var secretFile: String?

    @Option(name: .customLong("secret-env"), help: "Read the secret from this environment variable.")
    var secretEnv: String?

    @Option(name: .customLong("gnupg-home"), help: "openpgp: the secret keys of this GnuPG home.")
    var gnupgHome: String?

    @Option(name: .customLong("keys-file"), help: "openpgp: a file of secret keys (armored or binary).")
    var keysFile: String?

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

    @Flag(name: .customLong("lock-memory"), help: "Lock keys in RAM (never swapped).")
    var lockMemory = false

    @Flag(
        name: .customLong("allow-dumps"),
        help: "Stay dumpable and ptrace-able by the same user, for debugging (keys stay out of dumps).")
    var allowDumps = false

    @Argument(help: "Files or directories.")
    var paths: [String]

    func validate() throws {
        if secretFile != nil && secretEnv != nil {
            throw ValidationError("give --secret-file or --secret-env, not both")
        }
        if terms.contains(where: \.isEmpty) { throw ValidationError("a term must not be empty") }
        if let workers, workers < 1 || workers > 1024 { throw ValidationError("--workers must be between 1 and 1024") }
        if paths.isEmpty { throw ValidationError("give at least one file or directory") }
    }

    func run() throws {
        try harden(allowDumps: allowDumps, lockMemory: lockMemory, cacheBytes: 0)
        let secret = try openPGPKeys(with: loadSecret())
        var config = EngineConfig()
        config.workers = workers ?? ProcessInfo.processInfo.activeProcessorCount
        config.cacheBytes = 0
        let kind = CipherKind(rawValue: cipher)
        if cipher != "auto" {
            guard let kind else {
                throw ValidationError(
                    "unknown cipher \(cipher); known: \(CipherKind.allCases.map(\.name).joined(separator: ", ")), auto")
            }
            if kind.needsSecret && secret == nil {
                throw ValidationError("cipher \(cipher) needs --secret-file or --secret-env")
            }
        }
        let keys: KeyChoice
        do throws(SecretError) {
            let options = CipherOptions(iterations: iter)
            if let kind {
                keys = .single(
                    try UnlockedKey.make(kind: kind, secret: secret.map { adapt($0, for: kind) }, options: options))
            } else {
                var list: [UnlockedKey] = []
                if let secret {
                    for candidate in CipherKind.allCases where candidate.canBeSniffed {
                        if let k = try? UnlockedKey.make(
                            kind: candidate, secret: adapt(secret, for: candidate), options: options)
                        {
                            list.append(k)
                        }
                    }
                }
                keys = .auto(list)
            }
        } catch {
            throw ValidationError("the secret is not a valid \(cipher) key: \(error.message)")
        }

        var files: [[UInt8]] = []
        for p in paths { FileWalker.collect(Array(p.utf8), into: &files) }
        let plan: SearchPlan
        do {
            plan = try SearchPlan(
                terms: terms.map { Array($0.utf8) },
                options: SearchOptions(ignoreCase: ignoreCase, wholeWord: wholeWord, words: words))
        } catch {
            throw ValidationError("a term must not be empty")
        }

        let pool = WorkerPool(config: config)
        let printer = CountPrinter(terms: terms, json: json, words: words, total: files.count)
        let job = CountJob(
            id: .number(1), files: files.map { WireBytes($0, isBinary: false) }, plan: plan, keys: keys, ordered: true,
            observer: printer)
        pool.start()
        _ = pool.submit(job)
        let failed = printer.wait()
        // The workers let go of the job (and its keys) first: keys are freed here, before exit.
        pool.waitUntilIdle()
        throw ExitCode(failed > 0 ? 2 : 0)
    }

    /// age takes identity text or, for anything else, a passphrase; openpgp, a key block or a
    /// passphrase.
    private func adapt(_ secret: SecretInput, for kind: CipherKind) -> SecretInput {
        guard kind == .age || kind == .openpgp, case .text(let bytes) = secret else { return secret }
        let marker = Array((kind == .age ? "AGE-SECRET-KEY-" : "-----BEGIN PGP PRIVATE KEY BLOCK-----").utf8)
        let found = bytes.withBytes { b in
            b.indices.contains { i in b[i...].starts(with: marker) }
        }
        if kind == .openpgp { return found ? .map(["keys": secret]) : secret }
        return found ? secret : .map(["passphrase": secret])
    }

    /// With --gnupg-home or --keys-file, the secret is the passphrase that goes with the keys.
    private func openPGPKeys(with passphrase: SecretInput?) throws -> SecretInput? {
        var map: [String: SecretInput] = [:]
        if let gnupgHome { map["gnupg_home"] = .text(copying: Array(gnupgHome.utf8)) }
        if let keysFile {
            guard let data = FileManager.default.contents(atPath: keysFile) else {
                throw ValidationError("cannot read the keys file \(keysFile)")
            }
            map["keys"] = .bytes(copying: data)
        }
        if map.isEmpty { return passphrase }
        if let passphrase { map["passphrase"] = passphrase }
        return .map(map)
    }

    private func loadSecret() throws -> SecretInput? {
        if let name = secretEnv {
            guard let value = getenv(name) else { throw ValidationError("environment variable \(name) is not set") }
            return .text(
                copying: UnsafeBufferPointer(
                    start: UnsafeRawPointer(value).assumingMemoryBound(to: UInt8.self), count: strlen(value)))
        }
        guard let path = secretFile else { return nil }
        guard var bytes = FileManager.default.contents(atPath: path).map({ [UInt8]($0) }) else {
            throw ValidationError("cannot read the secret file \(path)")
        }
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        defer { SecretBytes.wipe(&bytes) }
        return .text(copying: bytes)
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
