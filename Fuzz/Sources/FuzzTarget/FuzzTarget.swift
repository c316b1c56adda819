import CryptCountFuzzSupport

#if canImport(Glibc)
    import Glibc
#endif

/// One libFuzzer executable for every target: `CRYPTCOUNT_FUZZ_TARGET` names the code path
/// (see `FuzzHarness.targets`). A broken invariant traps, so libFuzzer keeps the input.
nonisolated(unsafe) private var target = ""

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> Int32 {
    guard let name = getenv("CRYPTCOUNT_FUZZ_TARGET").map({ String(cString: $0) }), FuzzHarness.targets.contains(name)
    else {
        say("set CRYPTCOUNT_FUZZ_TARGET to one of: \(FuzzHarness.targets.joined(separator: " "))")
        exit(2)
    }
    target = name
    // With CRYPTCOUNT_FUZZ_SEED_DIR, the target's built-in seeds are written there first.
    if let dir = getenv("CRYPTCOUNT_FUZZ_SEED_DIR").map({ String(cString: $0) }) {
        for (i, seed) in FuzzHarness.seeds(name).enumerated() {
            guard let f = fopen("\(dir)/seed-\(i)", "wb") else { continue }
            _ = seed.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
            fclose(f)
        }
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let broken = FuzzHarness.run(target, bytes) {
        say("invariant broken: \(broken)")
        abort()
    }
    return 0
}

private func say(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
