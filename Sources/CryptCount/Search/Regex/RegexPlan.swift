import CRE2Shim

/// Regular expressions compiled once per request (RE2 through `CRE2Shim`), shared read-only by the
/// worker threads (RE2's matching methods are thread-safe).
///
/// Like ripgrep, the literals a pattern requires (RE2's prefilter "atoms": `ing` for
/// `\b\w+ing\b`) are searched first, all patterns' atoms in one pass of the literal `SearchPlan`
/// (its SIMD prefilters); RE2 then runs only on the lines whose atoms can satisfy the pattern.
/// A pattern without a selective atom is run by RE2 over the whole text. Either way each pattern
/// costs at most one RE2 pass over each line: linear in the text.
package final class RegexPlan: @unchecked Sendable {
    /// One compiled `ccre_regex` per pattern; freed with the plan.
    let compiled: [OpaquePointer]
    /// The atoms of the patterns that have selective ones, as terms of a case-insensitive literal
    /// plan with offsets (nil when no pattern has any).
    let atomPlan: SearchPlan?
    /// Per pattern: the atom plan's term index of each of its atoms, in RE2's atom order; nil when
    /// the pattern is run over the whole text.
    let atomTerms: [[Int]?]
    /// Per pattern without atoms: the bytes every match starts with, when they are rare in text
    /// (`[A-Z]` for `[A-Z][a-z]+ [A-Z][a-z]+`); RE2 then runs only on lines holding one.
    let firstBytes: [ClosedRange<UInt8>?]

    init(patterns: [[UInt8]], ignoreCase: Bool, wholeWord: Bool, maxMemory: Int) throws(SearchPlanError) {
        var compiled: [OpaquePointer] = []
        var failure: SearchPlanError?
        for (i, pattern) in patterns.enumerated() {
            var kind: Int32 = 0
            var position = 0
            var message = [CChar](repeating: 0, count: 256)
            let re = pattern.withUnsafeBufferPointer { pb in
                message.withUnsafeMutableBufferPointer { mb in
                    pb.baseAddress.map { base in
                        base.withMemoryRebound(to: CChar.self, capacity: pb.count) { cp in
                            ccre_compile(
                                cp, pb.count, ignoreCase ? 1 : 0, wholeWord ? 1 : 0, Int64(maxMemory), &kind, &position,
                                mb.baseAddress, mb.count)
                        }
                    } ?? nil
                }
            }
            guard let re else {
                let text = message.withUnsafeBufferPointer { b in
                    String(decoding: b.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                }
                failure =
                    pattern.isEmpty || kind == CCRE_EMPTY_MATCH.rawValue
                    ? .emptyMatch(index: i)
                    : .badPattern(index: i, position: position, message: text.isEmpty ? "invalid pattern" : text)
                break
            }
            compiled.append(re)
        }
        if let failure {
            for re in compiled { ccre_free(re) }
            throw failure
        }
        self.compiled = compiled

        var atoms: [[UInt8]] = []
        var index: [[UInt8]: Int] = [:]
        var atomTerms: [[Int]?] = []
        for re in compiled {
            let n = ccre_atom_count(re)
            var list: [[UInt8]] = []
            for k in 0..<n {
                var bytes: UnsafePointer<CChar>? = nil
                let len = ccre_atom(re, k, &bytes)
                guard let bytes else { continue }
                list.append(
                    bytes.withMemoryRebound(to: UInt8.self, capacity: len) {
                        Array(UnsafeBufferPointer(start: $0, count: len))
                    })
            }
            guard n > 0, list.count == n, list.allSatisfy(Self.isSelective) else {
                atomTerms.append(nil)
                continue
            }
            atomTerms.append(
                list.map { atom in
                    if let t = index[atom] { return t }
                    index[atom] = atoms.count
                    atoms.append(atom)
                    return atoms.count - 1
                })
        }
        self.atomTerms = atomTerms
        firstBytes = compiled.map { re in
            var lo: UInt8 = 0
            var hi: UInt8 = 0
            guard ccre_first_byte_range(re, &lo, &hi) != 0, lo <= hi,
                (lo...hi).allSatisfy({ ByteScanning.frequency[Int($0)] <= 100 })
            else { return nil }
            return lo...hi
        }
        // RE2 lowercases atoms, so they are searched case-insensitively, unless no atom has a
        // byte that case folding could concern (then the plan may use memchr).
        let folds = atoms.contains { $0.contains { $0 >= 0x80 || (0x61...0x7A).contains($0) } }
        atomPlan =
            atoms.isEmpty
            ? nil
            : try SearchPlan(
                terms: atoms, options: SearchOptions(ignoreCase: folds, offsets: true, maxOffsets: Int(Int32.max)))
    }

    deinit {
        for re in compiled { ccre_free(re) }
    }

    /// An atom worth a prefilter pass: 3+ bytes, or a byte that is rare in text (an atom that is
    /// in nearly every line would only add work).
    static func isSelective(_ atom: [UInt8]) -> Bool {
        atom.count >= 3 || atom.contains { ByteScanning.frequency[Int($0)] <= 90 }
    }
}

extension SearchOptions {
    /// Default for `--regex-max-mem`: RE2's memory budget per pattern (program and DFA cache).
    package static let defaultRegexMaxMemory = 8 << 20
}

extension SearchPlanError {
    /// The `bad_request` message: which term, and for a pattern where and why.
    package var message: String {
        switch self {
        case .emptyTerm(let i): "\"terms\"[\(i)] is empty"
        case .badPattern(let i, let position, let why):
            "\"terms\"[\(i)] is not a valid regular expression: \(why) (at byte \(position) of the pattern)"
        case .emptyMatch(let i):
            "\"terms\"[\(i)] can match the empty string; such patterns are refused (they would match everywhere)"
        }
    }
}
