import CLibRNP
import Synchronization

/// `openpgp`: OpenPGP messages (RFC 4880, what `gpg -e`, `gpg -c`, `pass` and gopass write),
/// binary or ASCII-armored, decrypted by librnp in this process: no `gpg`, no gpg-agent, no
/// temporary files. Secret keys are unlocked once, when the key is made; plaintext streams from
/// librnp into the search in bounded memory (librnp pulls the file through `decrypt(pulling:)`).
///
/// librnp contexts are not thread-safe, so the key keeps a small pool of them, one per thread
/// that is decrypting; extra contexts are made on demand from the same secret.
package final class OpenPGPKey: CipherKey, PullingCipherKey {
    package static func make(_ kind: CipherKind, secret: SecretInput?, options: CipherOptions) throws(SecretError)
        -> OpenPGPKey
    {
        try OpenPGPKey(secret: secret)
    }

    package static func recognises(_ prefix: UnsafeRawBufferPointer) -> Bool {
        OpenPGPSniffer.isEncryptedMessage(prefix)
    }

    package var kind: CipherKind { .openpgp }
    package var mode: DecryptionMode { .streamed }

    /// What this key decrypts with: the fingerprints of its usable secret keys (an OpenPGP
    /// fingerprint names the key material) and the passphrase, tried on symmetric messages.
    package func fingerprint(into fingerprint: inout KeyFingerprint) {
        fingerprint.add(int: keyFingerprints.count)
        for fp in keyFingerprints { fingerprint.add(bytes: Array(fp.utf8)) }
        if let passphrase {
            fingerprint.add(int: 1)
            fingerprint.add(passphrase)
        } else {
            fingerprint.add(int: 0)
        }
    }

    /// `auto` and tests drive it like a whole-file cipher; the engine pulls (`decrypt(pulling:)`).
    package func makeStreamDecryptor() -> any StreamDecryptor { WholeFileStreamAdapter(key: self) }

    let source: OpenPGPKeySource
    let passphrase: SecretBytes?
    /// Fingerprints of the usable secret keys (sorted): what this key can decrypt with.
    package let keyFingerprints: [String]
    private let pool: Mutex<[RNPContext]>
    /// Small messages with AES and X25519 or a passphrase, and the session-key cache.
    let fastPath: OpenPGPFastPath

    package init(secret: SecretInput?) throws(SecretError) {
        var (source, pass) = try Self.parse(secret)
        if case .gnupgHome(let path) = source { source = .home(try RNPContext.snapshot(home: path, passphrase: pass)) }
        self.source = source
        passphrase = pass
        let first = try RNPContext(source: source, passphrase: pass)
        switch source {
        case .none:
            break
        case .keys, .gnupgHome, .home:
            var locked = 0
            if case .home(let home) = source { locked = home.lockedKeys }
            guard first.secretKeyCount + locked > 0 else { throw SecretError("no OpenPGP secret key found") }
            guard !first.usableKeys.isEmpty else {
                throw SecretError(
                    pass == nil
                        ? "the OpenPGP secret keys are protected and no passphrase was given"
                        : "the passphrase unlocks none of the OpenPGP secret keys")
            }
        }
        keyFingerprints = first.usableKeys
        // librnp tries no message passphrase longer than it accepts: neither does the fast path,
        // which may only make a count faster, never different.
        let messagePass = pass.flatMap { $0.count <= Self.maxMessagePassphrase ? $0 : nil }
        fastPath = OpenPGPFastPath(
            recipients: first.x25519Recipients(), rsaRecipients: first.rsaRecipients(), passphrase: messagePass)
        pool = Mutex([first])
    }

    /// The longest passphrase librnp tries on a message (SKESK).
    static let maxMessagePassphrase = 255

    /// The one place that reads the wire's secret shapes: a passphrase (`str`/`bin`), or a map
    /// with `keys` or `gnupg_home`, and `passphrase`.
    static func parse(_ secret: SecretInput?) throws(SecretError) -> (OpenPGPKeySource, SecretBytes?) {
        func passphrase(_ b: SecretBytes) throws(SecretError) -> SecretBytes {
            guard !b.isEmpty else { throw SecretError("the OpenPGP passphrase is empty") }
            guard !b.withBytes({ $0.contains(0) }) else {
                throw SecretError("the OpenPGP passphrase contains a NUL byte")
            }
            return b
        }
        // A passphrase for messages alone: librnp opens no message with a longer one.
        func messagePassphrase(_ b: SecretBytes) throws(SecretError) -> SecretBytes {
            guard b.count <= maxMessagePassphrase else {
                throw SecretError(
                    "an OpenPGP message passphrase has at most \(maxMessagePassphrase) bytes (librnp's limit)")
            }
            return try passphrase(b)
        }
        switch secret {
        case .none:
            throw SecretError("an OpenPGP passphrase, keys or GnuPG home is required")
        case .text(let b)?, .bytes(let b)?:
            return (.none, try messagePassphrase(b))
        case .list?:
            throw SecretError("an OpenPGP secret is a passphrase or a map")
        case .map(let m)?:
            if m.keys.contains(where: { !["keys", "gnupg_home", "passphrase"].contains($0) }) {
                throw SecretError("an OpenPGP secret map has only \"keys\", \"gnupg_home\" and \"passphrase\"")
            }
            var pass: SecretBytes? = nil
            switch m["passphrase"] {
            case .none: break
            case .text(let b)?, .bytes(let b)?: pass = try passphrase(b)
            default: throw SecretError("the OpenPGP passphrase must be a string or binary")
            }
            switch (m["keys"], m["gnupg_home"]) {
            case (.some, .some):
                throw SecretError("an OpenPGP secret map has \"keys\" or \"gnupg_home\", not both")
            case (.some(let keys), .none):
                guard let b = keys.scalar else { throw SecretError("the OpenPGP keys must be a string or binary") }
                guard !b.isEmpty else { throw SecretError("the OpenPGP keys are empty") }
                return (.keys(b), pass)
            case (.none, .some(let home)):
                guard case .text(let b) = home, !b.isEmpty,
                    let path = b.withBytes({ $0.contains(0) ? nil : String(validating: $0, as: UTF8.self) })
                else {
                    throw SecretError("gnupg_home must be a directory path")
                }
                return (.gnupgHome(path), pass)
            case (.none, .none):
                guard let pass else {
                    throw SecretError("an OpenPGP secret map needs \"keys\", \"gnupg_home\" or \"passphrase\"")
                }
                return (.none, try messagePassphrase(pass))
            }
        }
    }

    // MARK: Decrypting

    private func withContext<R>(_ body: (RNPContext) -> R) -> Result<R, CipherFailure> {
        var context = pool.withLock { $0.popLast() }
        if context == nil {
            do {
                context = try RNPContext(source: source, passphrase: passphrase)
            } catch {
                return .failure(.decryptFailed("the OpenPGP keys cannot be loaded again: \(error.message)"))
            }
        }
        guard let context else { return .failure(.decryptFailed("no OpenPGP context")) }
        let r = body(context)
        pool.withLock { $0.append(context) }
        return .success(r)
    }

    package func decrypt(
        pulling read: (UnsafeMutableRawBufferPointer) -> Int, emit: (UnsafeRawBufferPointer) -> Void
    ) throws(CipherFailure) {
        // A small file is read whole first, for the fast path; librnp then reads those bytes
        // again from memory, then the rest of the file.
        var buffered = [UInt8](repeating: 0, count: 16 << 10)
        var filled = 0
        var ended = false
        while filled <= OpenPGPFastPath.maxMessage {
            if filled == buffered.count { buffered.append(contentsOf: repeatElement(0, count: buffered.count)) }
            let n = buffered.withUnsafeMutableBytes { raw in
                read(UnsafeMutableRawBufferPointer(rebasing: raw[filled...]))
            }
            if n < 0 { throw .decryptFailed("the file cannot be read") }
            if n == 0 {
                ended = true
                break
            }
            filled += n
        }
        var hit = false
        defer { SessionKeyStats.record(hit: hit) }
        if ended, filled > 0, buffered[0] & 0x80 != 0 {
            let opened = buffered.withUnsafeBytes {
                fastPath.open(UnsafeRawBufferPointer(rebasing: $0[0..<filled]), hit: &hit)
            }
            switch opened {
            case .literal(var plain)?:
                defer { SecretBytes.wipe(&plain) }
                plain.withUnsafeBytes { emit($0) }
                return
            case .inner(var inner)?:
                defer { SecretBytes.wipe(&inner) }
                var offset = 0
                let outcome = withContext { context in
                    context.decrypt(
                        read: { buf in
                            let n = min(buf.count, inner.count - offset)
                            inner.withUnsafeBytes { src in
                                if n > 0, let d = buf.baseAddress, let s = src.baseAddress {
                                    d.copyMemory(from: s + offset, byteCount: n)
                                }
                            }
                            offset += n
                            return n
                        }, emit: emit)
                }
                try Self.checkInner(outcome, verified: true)
                return
            case nil:
                break
            }
        } else if filled > 0 {
            // Armored, or larger than the in-memory path takes: the streaming path, which
            // declines (having read only buffered bytes) or answers.
            let done = try withoutActuallyEscaping(read) { (read) throws(CipherFailure) -> Bool in
                let raw = OpenPGPStream.RawInput(buffered: buffered, filled: filled, ended: ended, pull: read)
                return try streamed(raw, hit: &hit, emit: emit)
            }
            if done { return }
        }
        // The first bytes decide between "not OpenPGP" and "OpenPGP that did not decrypt".
        let head = Array(buffered[0..<min(filled, 64)])
        let framing = OpenPGPFraming()
        let outcome = withoutActuallyEscaping(read) { read in
            // librnp gets the file from its first byte: the buffered bytes again, then the rest.
            let replay = OpenPGPStream.RawInput(buffered: buffered, filled: filled, ended: ended, pull: read)
            replay.committed = true
            // A binary message's framing is followed, and what librnp leaves unread is read,
            // to find data after the message (armor is checked by its END line).
            let binary = filled > 0 && buffered[0] & 0x80 != 0
            let input = binary ? framing.observing(replay.read) : replay.read
            let outcome = withContext { $0.decrypt(read: input, emit: emit) }
            if binary, case .success(let o) = outcome, o.result == rnpOK { framing.drain(input) }
            return outcome
        }
        // Bytes after a whole encrypted packet are the finding, whatever librnp made of them.
        if framing.trailing { throw .decryptFailed(OpenPGPFraming.trailingMessage) }
        switch outcome {
        case .failure(let f): throw f
        case .success(let o): try Self.check(o, looksLikeOpenPGP: OpenPGPSniffer.looksLikeOpenPGP(head))
        }
    }

    /// The streaming fast path (see `OpenPGPStream`): true if it answered, false if it declined
    /// before reading past the buffered bytes or emitting any.
    private func streamed(_ raw: OpenPGPStream.RawInput, hit: inout Bool, emit: (UnsafeRawBufferPointer) -> Void)
        throws(CipherFailure) -> Bool
    {
        // The message's framing is followed (binary, or what the armor holds), and what is
        // left after the encrypted packet is read, to find data after the message.
        let framing = OpenPGPFraming()
        let source: OpenPGPStream.Reader
        if raw.buffered.first.map({ $0 & 0x80 != 0 }) == true {
            source = framing.observing(raw.read)
        } else {
            source = framing.observing(OpenPGPStream.Dearmor(OpenPGPStream.ByteReader(raw.read)).read)
        }
        let reader = OpenPGPStream.ByteReader(source)
        guard
            case .committed(let seipd, let cacheKey, let sessionKey, let cached) = fastPath.beginStream(
                reader, raw: raw)
        else { return false }
        hit = cached
        let outcome = withContext { context in context.decrypt(read: seipd.read, emit: emit) }
        // librnp may stop at the end of the literal data: the MDC is checked all the same (not
        // after a failure, which stands anyway: no need to decrypt the rest of a large file).
        if case .success(let o) = outcome, o.result == rnpOK || Int(o.result) == RNP_ERROR_SIGNATURE_INVALID {
            seipd.drain()
            framing.drain(source)
        }
        try Self.checkInner(outcome, verified: seipd.verified)
        if framing.trailing { throw .decryptFailed(OpenPGPFraming.trailingMessage) }
        if !cached { fastPath.sessionKeys.insert(sessionKey, for: cacheKey) }
        return true
    }

    /// librnp's verdict on the packets inside a SEIPD packet this key decrypted and verified
    /// (`verified`: the MDC held). They are an unencrypted message: a signature librnp cannot
    /// check (no public key) is ignored, as on a whole message.
    static func checkInner(_ r: Result<RNPContext.Outcome, CipherFailure>, verified: Bool) throws(CipherFailure) {
        let o: RNPContext.Outcome
        switch r {
        case .failure(let f): throw f
        case .success(let v): o = v
        }
        guard verified else {
            throw .decryptFailed("the OpenPGP message is damaged or does not decrypt (integrity check failed)")
        }
        guard o.result == rnpOK || Int(o.result) == RNP_ERROR_SIGNATURE_INVALID else {
            switch Int(o.result) {
            case RNP_ERROR_NOT_SUPPORTED, RNP_ERROR_NOT_IMPLEMENTED:
                throw .decryptFailed("the message uses an OpenPGP feature that is not supported")
            default:
                throw .decryptFailed("the OpenPGP message is damaged or does not decrypt")
            }
        }
        guard o.mode == "none" || o.mode == nil else {
            throw .decryptFailed("the message uses an OpenPGP feature that is not supported (nested encryption)")
        }
    }

    package func decrypt(whole ciphertext: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(CipherFailure) {
        output.removeAll(keepingCapacity: true)
        var offset = 0
        var out = output
        defer { output = out }
        try decrypt(
            pulling: { buf in
                let n = min(buf.count, ciphertext.count - offset)
                if n > 0, let dst = buf.baseAddress, let src = ciphertext.baseAddress {
                    dst.copyMemory(from: src + offset, byteCount: n)
                }
                offset += n
                return n
            },
            emit: { out.append(contentsOf: $0) })
    }

    /// librnp's verdict as a cipher outcome.
    static func check(_ o: RNPContext.Outcome, looksLikeOpenPGP: Bool) throws(CipherFailure) {
        if o.result == rnpOK {
            switch o.mode {
            case "cfb":
                throw .decryptFailed(
                    "the message has no integrity protection (no MDC); refused, as modern gpg does")
            case "none", nil:
                throw .decryptFailed("the OpenPGP message is not encrypted")
            default:
                guard o.valid else { throw .decryptFailed("the message's integrity check failed") }
                return
            }
        }
        guard looksLikeOpenPGP else { throw .badFormat("not an OpenPGP message") }
        switch Int(o.result) {
        case RNP_ERROR_NO_SUITABLE_KEY, RNP_ERROR_KEY_NOT_FOUND:
            throw .decryptFailed("no key or passphrase given opens this message")
        case RNP_ERROR_BAD_PASSWORD:
            throw .decryptFailed("wrong passphrase")
        case RNP_ERROR_NOT_SUPPORTED, RNP_ERROR_NOT_IMPLEMENTED:
            throw .decryptFailed("the message uses an OpenPGP feature that is not supported")
        default:
            // Integrity failure, tampering, truncation, a malformed packet inside the message.
            throw .decryptFailed("the OpenPGP message is damaged or does not decrypt (integrity check failed)")
        }
    }
}
