import ArgumentParser
import CryptCount
import CryptCountJSONLines
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
            Prints a table: one row per file, one column per term, and a TOTAL row; with no terms, \
            the bytes of each file (and --words). Names with control characters or bytes that are \
            not UTF-8 are escaped in the table (\\n, \\t, \\xHH, \\\\). With --json, one JSON object \
            per file ({"path", "counts", "bytes"} or {"path", "error"}; with --cipher auto also \
            "cipher", as in the protocol), in input order; a path that \
            is not UTF-8 is {"$bin":"<base64 of its bytes>"}.
            Directories are walked (names sorted); a symbolic link named on the command line is \
            followed, one met during the walk is followed to a file but not to a directory unless \
            -L (then a link back to a directory being walked is skipped with a warning).
            The secret is never taken from the command line: --secret-file F (its bytes less \
            exactly one trailing \\n or \\r\\n; - is stdin) or --secret-env VAR (its value exactly). \
            For age, a secret holding AGE-SECRET-KEY lines is an identity file; anything else is a \
            passphrase. For openpgp, the secret is a passphrase (for gpg -c files and for the keys \
            of --gnupg-home DIR or --keys-file F); a secret holding a PGP PRIVATE KEY BLOCK is a \
            keys file.
            Exit status: 0 when every file was processed; 2 when any failed (each failure is also \
            reported on stderr with its path and reason) or the output could not be written; 1 on \
            a usage or secret error; on SIGINT \
            the process ends by that signal (130 in a shell).
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

    @Option(help: ArgumentHelp("The files' cipher; auto sniffs each file's format.", valueName: "cipher"))
    var cipher: CipherChoice = .one(.plain)

    @Option(
        name: .customLong("secret-file"), help: "Read the secret from this file (one trailing newline stripped).")
    var secretFile: String?

    @Option(name: .customLong("secret-env"), help: "Read the secret from this environment variable (as is).")
    var secretEnv: String?

    @Option(name: .customLong("gnupg-home"), help: "openpgp: the secret keys of this GnuPG home.")
    var gnupgHome: String?

    @Option(name: .customLong("keys-file"), help: "openpgp: a file of secret keys (armored or binary).")
    var keysFile: String?

    @Option(help: "PBKDF2 iterations for openssl files (default 10000).")
    var iter: Int?

    @Flag(
        name: [.customShort("i"), .customLong("ignore-case")],
        help: "Unicode simple case folding (a term with no cased letter matches as is).")
    var ignoreCase = false

    @Flag(name: [.customShort("w"), .customLong("whole-word")], help: "Count whole words only.")
    var wholeWord = false

    @Flag(help: "Also count whitespace-separated words.")
    var words = false

    @Flag(name: [.customShort("L"), .customLong("follow")], help: "Follow symbolic links to directories.")
    var follow = false

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

    /// `count` command lines of the common shapes, parsed without swift-argument-parser (whose
    /// reflection costs a one-shot run about 1.4 ms, half of what `rg` takes for a whole small
    /// search): `-t/--term V`, `-e/--regexp V`, `-i/--ignore-case`, `-w/--whole-word`, `--words`,
    /// `--json`, `-L/--follow`, in any order, and paths. A value or path that begins with `-`,
    /// a flag given twice, `--`, `--name=value`, any other option, or no path gives nil: the
    /// parser then parses the command line as before (help, errors and all). Every property is
    /// set here (reading one left unset would trap).
    static func quick(_ arguments: ArraySlice<String>) -> CountCommand? {
        guard arguments.first == "count" else { return nil }
        var terms: [String] = []
        var patterns: [String] = []
        var flags: Set<String> = []
        var paths: [String] = []
        var rest = arguments.dropFirst()
        while let arg = rest.popFirst() {
            switch arg {
            case "-t", "--term", "-e", "--regexp":
                guard let value = rest.popFirst(), !value.isEmpty, !value.hasPrefix("-") else { return nil }
                if arg == "-t" || arg == "--term" { terms.append(value) } else { patterns.append(value) }
            case "-i", "--ignore-case", "-w", "--whole-word", "--words", "--json", "-L", "--follow":
                let flag = arg == "-i" ? "--ignore-case" : arg == "-w" ? "--whole-word" : arg == "-L" ? "--follow" : arg
                guard flags.insert(flag).inserted else { return nil }
            default:
                guard !arg.isEmpty, !arg.hasPrefix("-") else { return nil }
                paths.append(arg)
            }
        }
        guard !paths.isEmpty else { return nil }
        var command = CountCommand()
        command.terms = terms
        command.patterns = patterns
        command.cipher = .one(.plain)
        command.secretFile = nil
        command.secretEnv = nil
        command.gnupgHome = nil
        command.keysFile = nil
        command.iter = nil
        command.ignoreCase = flags.contains("--ignore-case")
        command.wholeWord = flags.contains("--whole-word")
        command.words = flags.contains("--words")
        command.follow = flags.contains("--follow")
        command.json = flags.contains("--json")
        command.workers = nil
        command.lockMemory = false
        command.allowDumps = false
        command.paths = paths
        guard (try? command.validate()) != nil else { return nil }
        return command
    }

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
        if let iter, iter < 1 || iter > OpenSSLKey.maxIterations {
            throw ValidationError("--iter must be between 1 and \(OpenSSLKey.maxIterations)")
        }
        if paths.isEmpty { throw ValidationError("give at least one file or directory") }
        if case .failure(let error) = BiographerKernel.requested(BiographerKernel.environmentValue) {
            throw ValidationError(error.message)
        }
    }

    /// A usage or secret error found while running: the message on stderr, exit status 1.
    private func fail(_ message: String) -> ExitCode {
        printError("count", message)
        return ExitCode(1)
    }

    func run() throws {
        LibRNPDiagnostics.silence()  // the failed file's line on stderr says what failed
        do {
            try harden(allowDumps: allowDumps, lockMemory: lockMemory, cacheBytes: 0)
        } catch let error as ValidationError {
            throw fail(error.message)  // a run-time refusal: no usage line
        }
        Interrupt.install()
        // The secret; with --gnupg-home or --keys-file, the openpgp key is those keys with it
        // as their passphrase (and under auto the secret is still every other format's key).
        let passphrase = try loadSecret()
        let pgpSecret = try openPGPKeys(with: passphrase)
        func secret(for kind: CipherKind) -> SecretInput? { kind == .openpgp ? pgpSecret : passphrase }
        var config = EngineConfig()
        config.cacheBytes = 0
        var kind: CipherKind? = nil
        if case .one(let k) = cipher {
            kind = k
            if k != .openpgp && (gnupgHome != nil || keysFile != nil) {
                throw fail("--gnupg-home and --keys-file go with --cipher openpgp or auto")
            }
            if k.needsSecret && secret(for: k) == nil {
                throw fail("cipher \(k.name) needs --secret-file or --secret-env")
            }
        }
        let keys: KeyChoice
        do throws(SecretError) {
            let options = CipherOptions(iterations: iter)
            if let kind {
                keys = .single(
                    try UnlockedKey.make(
                        kind: kind, secret: secret(for: kind).map { adapt($0, for: kind) }, options: options))
            } else {
                var list: [UnlockedKey] = []
                for candidate in CipherKind.allCases where candidate.canBeSniffed {
                    guard let s = secret(for: candidate) else { continue }
                    if let k = try? UnlockedKey.make(
                        kind: candidate, secret: adapt(s, for: candidate), options: options)
                    {
                        list.append(k)
                    }
                }
                keys = .auto(list)
            }
        } catch {
            throw fail("the secret is not a valid \(cipher.name) key: \(error.message)")
        }

        var walker = FileWalker(follow: follow)
        for p in RawArguments.bytes(of: paths) { walker.collectNamed(p) }
        let plan: SearchPlan
        let regex = !patterns.isEmpty
        // With -e every column is a pattern: -t terms are escaped into literal patterns.
        let columns = regex ? terms.map(Self.escaped) + patterns : terms
        do throws(SearchPlanError) {
            plan = try SearchPlan(
                terms: regex ? columns.map { Array($0.utf8) } : RawArguments.termBytes(of: terms),
                options: SearchOptions(ignoreCase: ignoreCase, wholeWord: wholeWord, words: words, regex: regex))
        } catch {
            throw fail(error.message.replacingOccurrences(of: "\"terms\"", with: "column "))
        }

        config.workers = workers ?? Self.defaultWorkers(for: walker.entries)
        let pool = WorkerPool(config: config)
        let printer = CountPrinter(
            columns: RawArguments.termBytes(of: terms) + patterns.map { Array($0.utf8) }, json: json, words: words,
            entries: walker.entries)
        let job = CountJob(
            id: .number(1), files: printer.files.map { WireBytes($0, isBinary: false) }, plan: plan, keys: keys,
            ordered: true, sink: printer)
        if config.workers == 1 {
            // One worker: this thread is it (no thread to start, no hand-offs).
            _ = pool.submit(job)
            pool.runHereUntilIdle()
        } else {
            pool.start()
            _ = pool.submit(job)
        }
        let failed = printer.wait()
        // The workers let go of the job (and its keys) first: keys are freed here, before exit.
        pool.waitUntilIdle()
        throw ExitCode(failed > 0 ? 2 : 0)
    }

    /// One worker per core; but one small file keeps one worker busy at most, and then the
    /// cores are not counted (Foundation reads the cgroup's CPU quota files for that: a tenth of
    /// a one-shot run's time).
    static func defaultWorkers(for entries: [WalkEntry]) -> Int {
        if entries.count == 1, case .file(let path) = entries[0] {
            var st = stat()
            if withCString(path + [0], { stat($0, &st) }) == 0, (st.st_mode & S_IFMT) == S_IFREG,
                st.st_size < 1 << 20
            {
                return 1
            }
        }
        return ProcessInfo.processInfo.activeProcessorCount
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
            // Read as is (a binary key may end in a newline byte), and the read copy zeroed.
            guard var data = FileManager.default.contents(atPath: keysFile) else {
                throw fail("cannot read the keys file \(keysFile)")
            }
            map["keys"] = .bytes(copying: data)
            data.withUnsafeMutableBytes { raw in
                if let base = raw.baseAddress, raw.count > 0 { memset(base, 0, raw.count) }
            }
        }
        if map.isEmpty { return passphrase }
        if let passphrase { map["passphrase"] = passphrase }
        return .map(map)
    }

    private func loadSecret() throws -> SecretInput? {
        if let name = secretEnv {
            // An environment variable has no line-ending convention (`$(cat f)` already strips
            // them all): its value is the secret, byte for byte.
            guard let value = getenv(name) else { throw fail("environment variable \(name) is not set") }
            return .text(
                copying: UnsafeBufferPointer(
                    start: UnsafeRawPointer(value).assumingMemoryBound(to: UInt8.self), count: strlen(value)))
        }
        guard let path = secretFile else { return nil }
        do throws(IOFailure) {
            return .text(try SecretFile.read(path))
        } catch {
            throw fail("cannot read the secret file: \(error.message)")
        }
    }
}

/// A C string's bytes as they are (`String(cString:)` would replace bytes that are not UTF-8).
func cStringBytes(_ p: UnsafePointer<CChar>) -> [UInt8] {
    Array(UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p)))
}

/// SIGINT: clear a progress line, then end by the signal itself, so a shell sees 130 and a
/// script running `count` stops as it would for any interrupted command.
enum Interrupt {
    static func install() {
        signal(SIGINT) { _ in
            if isatty(2) != 0 {
                let clear: StaticString = "\r\u{1b}[K"
                _ = write(2, clear.utf8Start, clear.utf8CodeUnitCount)
            }
            signal(SIGINT, SIG_DFL)
            raise(SIGINT)
        }
    }
}

/// The command line's own bytes for arguments that are not valid UTF-8 (the parser only has
/// them with U+FFFD in place of each bad byte), so such file names can be opened and such terms
/// counted as given.
enum RawArguments {
    /// Operands (paths), as given.
    static func bytes(of parsed: [String]) -> [[UInt8]] { bytes(of: parsed, after: [[]]) }

    /// `-t` values (given as `-t V`, `--term V` or `--term=V`).
    static func termBytes(of parsed: [String]) -> [[UInt8]] {
        bytes(of: parsed, after: [Array("--term=".utf8), []])
    }

    /// Each of `parsed` that holds U+FFFD as the raw argument, less one of `prefixes`, that
    /// decodes to it: they keep their order in argv, so the search goes on after the last found.
    private static func bytes(of parsed: [String], after prefixes: [[UInt8]]) -> [[UInt8]] {
        let raw: [[UInt8]] = (0..<Int(CommandLine.argc)).map { i in
            CommandLine.unsafeArgv[i].map { cStringBytes($0) } ?? []
        }
        var next = 1
        return parsed.map { arg in
            guard arg.unicodeScalars.contains("\u{FFFD}") else { return Array(arg.utf8) }
            for i in next..<max(next, raw.count) {
                for prefix in prefixes where raw[i].starts(with: prefix) {
                    let value = Array(raw[i].dropFirst(prefix.count))
                    if String(decoding: value, as: UTF8.self) == arg {
                        next = i + 1
                        return value
                    }
                }
            }
            return Array(arg.utf8)
        }
    }
}

/// What a command-line path expands to: a file for the engine, or a failure found while walking
/// (a directory that cannot be listed).
enum WalkEntry {
    case file([UInt8])
    case failed([UInt8], FileErrorCode, String)
}

/// Expands directories (recursively, names sorted) into the files below them, as `rg` and
/// `grep -r` do: a symbolic link named on the command line is followed; one met during the walk
/// is followed to a file, but to a directory only with `follow` (-L), and then never into a
/// directory that is being walked already (a loop). Paths stay raw bytes, so names that are not
/// UTF-8 still work.
struct FileWalker {
    let follow: Bool
    private(set) var entries: [WalkEntry] = []
    /// (device, inode) of the directories being walked, outermost first: a loop check.
    private var ancestors: [(dev_t, ino_t)] = []

    init(follow: Bool) { self.follow = follow }

    /// A path from the command line: followed if it is a link.
    mutating func collectNamed(_ path: [UInt8]) {
        var st = stat()
        guard withCString(path + [0], { stat($0, &st) }) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            entries.append(.file(path))  // the engine reports what it is or why it cannot be read
            return
        }
        walk(path, st)
    }

    private mutating func visit(_ path: [UInt8]) {
        var st = stat()
        let cpath = path + [0]
        guard withCString(cpath, { lstat($0, &st) }) == 0 else {
            entries.append(.file(path))
            return
        }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            walk(path, st)
        case S_IFLNK:
            var target = stat()
            guard withCString(cpath, { stat($0, &target) }) == 0, (target.st_mode & S_IFMT) == S_IFDIR else {
                entries.append(.file(path))  // a link to a file is counted; a dangling one reported
                return
            }
            guard follow else { return }  // a link to a directory: skipped, as rg and grep -r do
            if ancestors.contains(where: { $0 == (target.st_dev, target.st_ino) }) {
                printError("count", "\(TablePath.escape(path)): a link to a directory being walked, not followed")
                return
            }
            walk(path, target)
        default:
            entries.append(.file(path))
        }
    }

    private mutating func walk(_ path: [UInt8], _ st: stat) {
        guard let dir = withCString(path + [0], { opendir($0) }) else {
            let code = errno
            let reason = String(cString: strerror(code))
            switch code {
            case EACCES, EPERM: entries.append(.failed(path, .permissionDenied, "cannot list the directory: \(reason)"))
            case ENOENT: entries.append(.failed(path, .notFound, "cannot list the directory: \(reason)"))
            default: entries.append(.failed(path, .ioError, "cannot list the directory: \(reason)"))
            }
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
        ancestors.append((st.st_dev, st.st_ino))
        for name in names { visit(base + name) }
        ancestors.removeLast()
    }
}

/// Receives results (from any worker, in any order) and prints them in input order, merged with
/// the walk's own failures.
final class CountPrinter: CountSink, @unchecked Sendable {
    /// The engine's files: the walk's file entries, in order.
    let files: [[UInt8]]
    /// The columns' terms and patterns, as given.
    let columns: [[UInt8]]
    let json: Bool
    let words: Bool
    let total: Int
    private let entries: [WalkEntry]
    /// For the engine's file i, its place in `entries`.
    private let slotOfFile: [Int]
    /// Entries up to here are printed (or kept for the table).
    private var nextSlot = 0
    private let monitor = Monitor()
    private var rows: [(path: [UInt8], outcome: FileOutcome)] = []
    private var pending = InOrder<FileOutcome>()
    private var finished = false
    private var failed = 0
    private var seen = 0
    private var bytes = 0
    private let progress: Bool
    private let started = monotonicMicros()
    private var lastProgress: UInt64 = 0

    init(columns: [[UInt8]], json: Bool, words: Bool, entries: [WalkEntry]) {
        self.columns = columns
        self.json = json
        self.words = words
        self.entries = entries
        self.total = entries.count
        self.slotOfFile = entries.indices.filter {
            if case .file = entries[$0] { return true }
            return false
        }
        self.files = entries.compactMap { entry in
            if case .file(let path) = entry { return path }
            return nil
        }
        self.progress = isatty(2) != 0
    }

    func fileFinished(index: Int, outcome: FileOutcome) {
        guard index < files.count else { return }
        monitor.withLock {
            pending.add(index, outcome) { i, ready in
                let slot = slotOfFile[i]
                emitWalkFailures(upTo: slot)
                emit(path: files[i], outcome: ready)
                nextSlot = slot + 1
            }
        }
    }

    func jobFinished(_ summary: CountSummary) {
        monitor.withLock {
            emitWalkFailures(upTo: entries.count)
            clearProgress()
            if !json { Self.writeOut(table(summary)) }
            finished = true
            monitor.broadcast()
        }
    }

    /// Directories the walk could not list, in their place among the files.
    private func emitWalkFailures(upTo slot: Int) {
        while nextSlot < slot {
            if case .failed(let path, let code, let message) = entries[nextSlot] {
                emit(path: path, outcome: .failed(code, message))
            }
            nextSlot += 1
        }
    }

    private func emit(path: [UInt8], outcome: FileOutcome) {
        seen += 1
        switch outcome {
        case .failed(let code, let message, _):
            failed += 1
            clearProgress()
            Self.writeErr("cryptcount count: \(TablePath.escape(path)): \(code.rawValue): \(message)\n")
        case .counted(let f):
            bytes += f.bytes
        }
        if json {
            Self.writeOut(jsonLine(path: path, outcome: outcome))
        } else {
            rows.append((path, outcome))
        }
        showProgress()
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

    private func jsonLine(path: [UInt8], outcome: FileOutcome) -> String {
        // A name that is not UTF-8 keeps its bytes, in the protocol's JSON Lines form.
        let jsonPath =
            String(validating: path, as: UTF8.self).map(Self.quote) ?? JSONLines.renderString(.binary(path))
        switch outcome {
        case .counted(let f):
            var s = "{\"path\":\(jsonPath),\"counts\":[\(f.result.counts.map(String.init).joined(separator: ","))]"
            s += ",\"bytes\":\(f.bytes)"
            if let w = f.result.words { s += ",\"words\":\(w)" }
            if let c = f.cipher { s += ",\"cipher\":\(Self.quote(c))" }
            return s + "}\n"
        case .failed(let code, let message, let cipher):
            var s =
                "{\"path\":\(jsonPath),\"error\":{\"code\":\"\(code.rawValue)\",\"message\":\(Self.quote(message))}"
            if let c = cipher { s += ",\"cipher\":\(Self.quote(c))" }
            return s + "}\n"
        }
    }

    private func table(_ summary: CountSummary) -> String {
        // With no terms, the table says how big each file is.
        let showBytes = columns.isEmpty
        // Escaped as paths are, so the header stays one row whatever a term holds.
        var header = ["path"] + columns.map(TablePath.escape)
        if showBytes { header.append("bytes") }
        if words { header.append("words") }
        var body: [[String]] = []
        for row in rows {
            let path = TablePath.escape(row.path)
            switch row.outcome {
            case .counted(let f):
                var cells = [path] + f.result.counts.map(String.init)
                if showBytes { cells.append(String(f.bytes)) }
                if words { cells.append(String(f.result.words ?? 0)) }
                body.append(cells)
            case .failed(let code, _, _):
                body.append(
                    [path] + Array(repeating: "-", count: header.count - 1) + ["(\(code.rawValue))"])
            }
        }
        var totalRow = ["TOTAL"] + summary.counts.map(String.init)
        if showBytes { totalRow.append(String(bytes)) }
        if words { totalRow.append(String(summary.words ?? 0)) }
        let all = [header] + body + [totalRow]
        let columns = all.map(\.count).max() ?? 1
        // Terminal columns of each cell (a CJK character takes two), measured once.
        let cellWidths = all.map { $0.map(DisplayWidth.of) }
        var widths = [Int](repeating: 0, count: columns)
        for r in cellWidths { for (i, w) in r.enumerated() { widths[i] = max(widths[i], w) } }
        var out = ""
        for (r, rowWidths) in zip(all, cellWidths) {
            var line = ""
            for (i, c) in r.enumerated() {
                let padding = String(repeating: " ", count: max(0, widths[i] - rowWidths[i]))
                if i == 0 || i >= header.count {
                    // The path, and a failed file's reason after the last column: left-aligned.
                    line += (i == 0 ? "" : "  ") + c + padding
                } else {
                    line += "  " + padding + c
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
                    let hex = Array("0123456789abcdef")
                    out += "\\u00" + String(hex[Int(u.value >> 4)]) + String(hex[Int(u.value & 15)])
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// Results that cannot be written (a full disk, a closed stdout) are lost: say so and end at
    /// once with status 2, as `frame` and `unframe` do (a closed pipe ends the process by SIGPIPE
    /// first). `_exit`, because this may run on a worker thread while the others run.
    static func writeOut(_ s: String) {
        do {
            try writeAll(fd: 1, Array(s.utf8))
        } catch {
            writeErr("cryptcount count: \((error as? IOFailure)?.message ?? "write error")\n")
            _exit(2)
        }
    }
    static func writeErr(_ s: String) { try? writeAll(fd: 2, Array(s.utf8)) }
}

/// A path (or a term) as one line of a table or message: control characters (C0, DEL, C1) as `\n`, `\r`,
/// `\t` or `\xHH` / `\u{HH}`, bytes that are not UTF-8 as `\xHH`, and `\` as `\\`, so each
/// name stays on its row and can be told apart (`ls -b` style). --json is the lossless form.
enum TablePath {
    static func escape(_ path: [UInt8]) -> String {
        var out = ""
        path.withUnsafeBufferPointer { buf in
            guard let p = buf.baseAddress else { return }
            var i = 0
            while i < buf.count {
                let (u, len) = decodeUnit(p, i, buf.count)
                defer { i += len }
                guard let u, let scalar = Unicode.Scalar(u) else {
                    out += hex(p[i])
                    continue
                }
                switch u {
                case 0x0A: out += "\\n"
                case 0x0D: out += "\\r"
                case 0x09: out += "\\t"
                case 0x5C: out += "\\\\"
                case 0..<0x20, 0x7F: out += hex(UInt8(u))
                case 0x80..<0xA0: out += "\\u{" + String(u, radix: 16, uppercase: true) + "}"
                default: out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    private static func hex(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "\\x" + String(digits[Int(b >> 4)]) + String(digits[Int(b & 15)])
    }

    /// The scalar at `i` and its length, or nil and 1 for a byte that does not start a
    /// well-formed UTF-8 sequence.
    private static func decodeUnit(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> (UInt32?, Int) {
        let b0 = p[i]
        if b0 < 0x80 { return (UInt32(b0), 1) }
        let need: Int
        switch b0 {
        case 0xC2...0xDF: need = 1
        case 0xE0...0xEF: need = 2
        case 0xF0...0xF4: need = 3
        default: return (nil, 1)
        }
        guard i + need < end else { return (nil, 1) }
        var bytes = [b0]
        for k in 1...need { bytes.append(p[i + k]) }
        guard let s = String(validating: bytes, as: UTF8.self), let scalar = s.unicodeScalars.first else {
            return (nil, 1)
        }
        return (scalar.value, need + 1)
    }
}
