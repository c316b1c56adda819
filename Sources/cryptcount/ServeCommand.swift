import ArgumentParser
import CryptCount
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run as a coprocess: length-prefixed MessagePack requests on stdin, responses on stdout.",
        discussion: """
            Protocol: protocol/PROTOCOL.md. stdout carries frames only; logs go to stderr.
            Exit status: 0 after end of input or shutdown, 1 when input ends inside a frame or cannot \
            be read, 3 when stdout is closed, 64 when an option cannot be honoured at startup (the \
            reason on stderr), 128+N on signal N.
            """
    )

    @Option(help: "Worker threads (default: the number of cores).")
    var workers: Int?

    @Option(name: .customLong("max-frame"), help: "Largest frame accepted, in bytes.")
    var maxFrame: Int = 16 << 20

    @Option(name: .customLong("cache-mb"), help: "Plaintext cache budget in MiB (0 turns the cache off).")
    var cacheMB: Int = 256

    @Option(
        name: .customLong("max-file-size"), help: "Largest file of a format read whole, in bytes (larger: too_large).")
    var maxFileSize: Int = 1 << 30

    @Option(name: .customLong("max-files"), help: "Most files in one request.")
    var maxFiles: Int = 1_000_000

    @Option(name: .customLong("max-terms"), help: "Most terms in one request.")
    var maxTerms: Int = 1_000

    @Option(name: .customLong("max-term-bytes"), help: "Longest term, in bytes.")
    var maxTermBytes: Int = 4096

    @Option(
        name: .customLong("regex-max-mem"),
        help: "Memory for each regular expression (RE2 program and DFA cache), in MiB; a bigger pattern is refused.")
    var regexMaxMB: Int = SearchOptions.defaultRegexMaxMemory >> 20

    @Option(name: .customLong("max-in-flight"), help: "Most count requests in flight at once (more: busy).")
    var maxInFlight: Int = 256

    @Option(
        name: .customLong("max-queued-mb"),
        help: "Responses that may wait for the parent to read, in MiB; beyond it workers pause.")
    var maxQueuedMB: Int = 8

    @Option(
        name: .customLong("spin-us"),
        help:
            "After answering a request itself, poll stdin this many microseconds before blocking (0: block at once); cuts a request-reply loop's latency."
    )
    var spinMicros: Int = ServerConfig.defaultSpinMicros

    @Option(name: .customLong("allow-root"), help: "Only read files that resolve under this directory (repeatable).")
    var allowRoots: [String] = []

    @Option(name: .customLong("log-level"), help: "error, warn, info or debug.")
    var logLevel: String = "warn"

    @Flag(
        name: .customLong("lock-memory"),
        help: "Lock keys and the plaintext cache in RAM (never swapped); RLIMIT_MEMLOCK must hold --cache-mb + 1 MiB.")
    var lockMemory = false

    @Flag(
        name: .customLong("allow-dumps"),
        help: "Stay dumpable and ptrace-able by the same user, for debugging (keys and cache stay out of dumps).")
    var allowDumps = false

    func validate() throws {
        if let workers, workers < 1 || workers > 1024 { throw ValidationError("--workers must be between 1 and 1024") }
        if maxFrame < 16 || maxFrame > Int(UInt32.max) {
            throw ValidationError("--max-frame must be between 16 and 4294967295")
        }
        if cacheMB < 0 || cacheMB > 1 << 20 { throw ValidationError("--cache-mb must be between 0 and 1048576") }
        if maxFileSize < 0 { throw ValidationError("--max-file-size must not be negative") }
        if maxFiles < 0 || maxTerms < 0 || maxTermBytes < 1 || maxInFlight < 1 {
            throw ValidationError("limits must be positive")
        }
        if regexMaxMB < 1 || regexMaxMB > 4096 { throw ValidationError("--regex-max-mem must be between 1 and 4096") }
        if maxQueuedMB < 1 || maxQueuedMB > 4096 { throw ValidationError("--max-queued-mb must be between 1 and 4096") }
        if spinMicros < 0 || spinMicros > 1_000_000 { throw ValidationError("--spin-us must be between 0 and 1000000") }
        if Log.Level(name: logLevel) == nil { throw ValidationError("--log-level must be error, warn, info or debug") }
        if case .failure(let error) = BiographerKernel.requested(BiographerKernel.environmentValue) {
            throw ValidationError(error.message)
        }
    }

    func run() throws {
        let level = Log.Level(name: logLevel) ?? .warn
        Log.setLevel(level)
        // librnp's own lines for each damaged OpenPGP file say nothing the file's error does not.
        if level < .debug { LibRNPDiagnostics.silence() }
        // Refusals from here on are about the machine, not the command line: no usage text.
        func refuse(_ message: String) -> ExitCode {
            printError("serve", message)
            return ExitCode(64)
        }
        do {
            try harden(allowDumps: allowDumps, lockMemory: lockMemory, cacheBytes: cacheMB << 20)
        } catch let error as ValidationError {
            throw refuse(error.message)
        }
        var config = ServerConfig()
        config.engine.workers = workers ?? ProcessInfo.processInfo.activeProcessorCount
        config.engine.cacheBytes = cacheMB << 20
        config.engine.maxFileSize = maxFileSize
        config.maxFrame = maxFrame
        config.limits.maxFiles = maxFiles
        config.limits.maxTerms = maxTerms
        config.limits.maxTermBytes = maxTermBytes
        config.limits.regexMaxMemory = regexMaxMB << 20
        config.maxInFlight = maxInFlight
        config.spinMicros = spinMicros
        config.engine.outputHighWater = maxQueuedMB << 20
        for root in allowRoots {
            guard let real = realpath(root, nil) else {
                throw refuse("--allow-root \(root): \(String(cString: strerror(errno)))")
            }
            config.engine.allowedRoots.append(Array(String(cString: real).utf8))
            free(real)
        }
        Signals.install()
        let server = Server(config: config)
        let status = server.run()
        server.forgetAllKeys()  // zeroes their bytes once no request holds them
        // _exit: worker threads are parked; there is nothing to tear down or flush.
        _exit(status.rawValue)
    }
}

/// Before any secret arrives: no core dumps, no ptrace by the same user (unless --allow-dumps),
/// and --lock-memory checked against RLIMIT_MEMLOCK (a startup error when it does not fit).
func harden(allowDumps: Bool, lockMemory: Bool, cacheBytes: Int) throws {
    if !allowDumps {
        for failure in ProcessHardening.forbidDumps() { Log.warn("cannot keep memory out of dumps: \(failure)") }
    }
    if lockMemory, let problem = ProcessHardening.lockMemory(cacheBytes: cacheBytes) {
        throw ValidationError(problem)
    }
}

/// Signal handling: a broken pipe is an error return, not a death; SIGTERM and SIGINT are taken
/// by a dedicated thread that ends the process at once (within a second, as the protocol asks).
enum Signals {
    static func install() {
        signal(SIGPIPE, SIG_IGN)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGHUP)
        // Blocked here, before any other thread exists, so every thread inherits the mask and
        // only the waiter below receives them.
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waiter = Thread {
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGTERM)
            sigaddset(&set, SIGINT)
            sigaddset(&set, SIGHUP)
            var sig: Int32 = 0
            while sigwait(&set, &sig) != 0 {}
            Log.info("signal \(sig): exiting")
            _exit(128 + sig)
        }
        waiter.name = "cryptcount-signals"
        waiter.start()
    }
}
