extension SearchPlan {
    /// Fills pending snippets whose window is complete (all of them when `final`).
    func resolvePending(_ p: UnsafePointer<UInt8>, count: Int, base: Int, final: Bool, state: inout ScanState) {
        var kept = 0
        for i in state.pending.indices {
            let item = state.pending[i]
            let s = item.start - base
            let e = item.end - base
            if final || e + Self.snippetWindow < count {
                state.snippets[item.term][item.slot] = snippet(p, count: count, base: base, start: s, end: e)
            } else {
                state.pending[kept] = item
                kept += 1
            }
        }
        state.pending.removeLast(state.pending.count - kept)
    }

    /// The snippet for the match `s..<e`: `context` words either side of the words holding the
    /// match start and end, on the match's line(s), within `snippetWindow` bytes of the match.
    func snippet(_ p: UnsafePointer<UInt8>, count: Int, base: Int, start s: Int, end e: Int) -> String {
        let w = Self.snippetWindow
        let context = options.context
        let lo = max(0, s - w)
        let cutLeft = base + s - w > 0
        let hi = min(count, e + w)
        let cutRight = e + w < count
        let newline: UInt8 = 0x0A
        var a = s
        if s < e && !TextUnits.isSpace(p[s]) {
            while a > lo && !TextUnits.isSpace(p[a - 1]) { a -= 1 }
        }
        var n = 0
        while n < context {
            var b = a
            while b > lo && TextUnits.isSpace(p[b - 1]) && p[b - 1] != newline { b -= 1 }
            if b == lo || p[b - 1] == newline { break }
            while b > lo && !TextUnits.isSpace(p[b - 1]) { b -= 1 }
            a = b
            n += 1
        }
        var z = e
        if e > s && !TextUnits.isSpace(p[e - 1]) {
            while z < hi && !TextUnits.isSpace(p[z]) { z += 1 }
        }
        n = 0
        while n < context {
            var b = z
            while b < hi && TextUnits.isSpace(p[b]) && p[b] != newline { b += 1 }
            if b == hi || p[b] == newline { break }
            while b < hi && !TextUnits.isSpace(p[b]) { b += 1 }
            z = b
            n += 1
        }
        if cutLeft && a == lo {
            // Don't start inside a character the window cut: skip the bytes at its start that
            // continue a character begun before it (bytes that continue nothing stay: they are
            // the text's own invalid bytes, U+FFFD each).
            var k = 0
            while k < 3 && a + k < s && p[a + k] & 0xC0 == 0x80 { k += 1 }
            if lo > 0 {
                var j = 1  // back to the byte that starts the character holding lo - 1
                while j <= 3 && j <= lo && p[lo - j] & 0xC0 == 0x80 { j += 1 }
                k = j <= 3 && j <= lo ? min(k, max(0, Self.utf8Length(p[lo - j]) - j)) : 0
            }
            a += k
        }
        if cutRight && z == hi {
            // Drop a character the window cut: a lead byte whose character the text completes
            // past the window.
            var k = 1
            while k <= 3 && z - k > e {
                let b = p[z - k]
                if b & 0xC0 != 0x80 {
                    let end = z - k + Self.utf8Length(b)
                    if end > z && end <= count && (z..<end).allSatisfy({ p[$0] & 0xC0 == 0x80 }) { z -= k }
                    break
                }
                k += 1
            }
        }
        return String(decoding: UnsafeBufferPointer(start: p + a, count: z - a), as: UTF8.self)
    }

    /// The length of the UTF-8 sequence `lead` starts, 1 for a byte that starts none.
    static func utf8Length(_ lead: UInt8) -> Int {
        switch lead {
        case 0xC2...0xDF: 2
        case 0xE0...0xEF: 3
        case 0xF0...0xF4: 4
        default: 1
        }
    }
}
