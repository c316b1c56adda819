import CLibRNP
import CLibRNPLoader
import Crypto
import CryptoExtras

#if canImport(Glibc)
    import Glibc
#endif

/// librnp's success code, typed.
let rnpOK = rnp_result_t(RNP_SUCCESS)

/// Where an OpenPGP key's secret keys come from.
enum OpenPGPKeySource: Sendable {
    /// No secret keys: a passphrase for symmetrically encrypted messages only.
    case none
    /// Armored or binary transferable secret keys, as given in the secret.
    case keys(SecretBytes)
    /// A GnuPG home directory (`pubring.kbx` or `pubring.gpg`, `private-keys-v1.d`), as named.
    case gnupgHome(String)
    /// The same, read into memory at unlock (see `RNPContext.snapshot`).
    case home(GnuPGHome)
}

/// A GnuPG home's key rings, in memory.
struct GnuPGHome: Sendable {
    var pubFormat: String
    var secFormat: String
    var pub: SecretBytes
    var secretKeys: [SecretBytes]
    /// OCB-protected keys the passphrase did not open (left out).
    var lockedKeys: Int
}

/// One librnp context (`rnp_ffi_t`) with the key's secret keys loaded and unlocked. librnp
/// contexts are not thread-safe: an `OpenPGPKey` lends each context to one thread at a time.
/// The only layer that touches librnp.
final class RNPContext: @unchecked Sendable {
    let ffi: rnp_ffi_t
    let passphrase: SecretBytes?
    /// /dev/null, where librnp's diagnostics go (they would land on the server's stderr).
    private let logFD: Int32
    /// Fingerprints of the secret keys the passphrase unlocked (or that need none), sorted.
    private(set) var usableKeys: [String] = []
    /// How many secret keys were loaded.
    private(set) var secretKeyCount = 0
    /// Per operation: how often librnp asked for the symmetric passphrase.
    fileprivate var passphraseRequests = 0

    init(source: OpenPGPKeySource, passphrase: SecretBytes?) throws(SecretError) {
        self.passphrase = passphrase
        var handle: rnp_ffi_t? = nil
        var pubFormat = "GPG"
        var secFormat = "GPG"
        if case .home(let home) = source {
            pubFormat = home.pubFormat
            secFormat = home.secFormat
        }
        guard rnp_ffi_create(&handle, pubFormat, secFormat) == rnpOK, let handle else {
            // librnp is loaded on first use (Sources/CLibRNPLoader): say so when it could not be.
            if let why = cryptcount_rnp_load_error() { throw SecretError(String(cString: why)) }
            throw SecretError("cannot create an OpenPGP context")
        }
        ffi = handle
        logFD = open("/dev/null", O_WRONLY | O_CLOEXEC)
        if logFD >= 0 { _ = rnp_ffi_set_log_fd(ffi, logFD) }
        rnp_ffi_set_pass_provider(ffi, rnpPassProvider, Unmanaged.passUnretained(self).toOpaque())

        switch source {
        case .none:
            break
        case .gnupgHome:
            throw SecretError("the GnuPG home was not read")
        case .keys(let bytes):
            let flags = UInt32(RNP_LOAD_SAVE_PUBLIC_KEYS | RNP_LOAD_SAVE_SECRET_KEYS | RNP_LOAD_SAVE_PERMISSIVE)
            guard Self.load(ffi, bytes, import: true, format: "GPG", flags: flags) else {
                throw SecretError("the OpenPGP keys cannot be read")
            }
        case .home(let home):
            guard Self.load(ffi, home.pub, import: false, format: pubFormat, flags: UInt32(RNP_LOAD_SAVE_PUBLIC_KEYS))
            else {
                throw SecretError("the GnuPG home's public key ring cannot be read")
            }
            // A key whose public part is not in the public key ring is skipped by librnp.
            for key in home.secretKeys {
                _ = Self.load(ffi, key, import: false, format: secFormat, flags: UInt32(RNP_LOAD_SAVE_SECRET_KEYS))
            }
        }
        try unlockSecretKeys()
    }

    deinit {
        // Destroying the context frees (and librnp wipes) the unlocked key material.
        rnp_ffi_destroy(ffi)
        if logFD >= 0 { close(logFD) }
    }

    /// Loads keys from memory (`import`: OpenPGP transferable keys, armored or binary).
    private static func load(_ ffi: rnp_ffi_t, _ bytes: SecretBytes, import: Bool, format: String, flags: UInt32)
        -> Bool
    {
        bytes.withBytes { buf in
            var input: rnp_input_t? = nil
            guard rnp_input_from_memory(&input, buf.baseAddress, buf.count, false) == rnpOK else { return false }
            defer { rnp_input_destroy(input) }
            if `import` { return rnp_import_keys(ffi, input, flags, nil) == rnpOK }
            return rnp_load_keys(ffi, format, input, flags) == rnpOK
        }
    }

    /// Reads a GnuPG home once, at unlock: its public key ring, and its secret keys as librnp
    /// can load them. gpg-agent keys in the extended format are converted to canonical
    /// S-expressions, and OCB-protected ones that the passphrase opens are unprotected here
    /// (librnp 0.16 cannot open them; see `GnuPGProtectedKey`). Held in `SecretBytes` for the
    /// key's life, so further librnp contexts load from memory without redoing the S2K.
    static func snapshot(home: String, passphrase: SecretBytes?) throws(SecretError) -> GnuPGHome {
        var pf: UnsafeMutablePointer<CChar>? = nil
        var pp: UnsafeMutablePointer<CChar>? = nil
        var sf: UnsafeMutablePointer<CChar>? = nil
        var sp: UnsafeMutablePointer<CChar>? = nil
        let rc = rnp_detect_homedir_info(home, &pf, &pp, &sf, &sp)
        defer {
            for p in [pf, pp, sf, sp] { rnp_buffer_destroy(p) }
        }
        guard rc == rnpOK, let pf, let pp, let sf, let sp else {
            throw SecretError("the GnuPG home holds no key rings librnp can read")
        }
        let pubFormat = String(cString: pf)
        let secFormat = String(cString: sf)
        guard var pub = readFile(String(cString: pp), limit: 256 << 20) else {
            throw SecretError("the GnuPG home's public key ring cannot be read")
        }
        defer { SecretBytes.wipe(&pub) }
        var secrets: [SecretBytes] = []
        var lockedKeys = 0
        let secPath = String(cString: sp)
        if secFormat == "G10" {
            guard let dir = opendir(secPath) else {
                throw SecretError("the GnuPG home's private-keys-v1.d cannot be opened")
            }
            defer { closedir(dir) }
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name.hasSuffix(".key") { names.append(name) }
            }
            for name in names.sorted() {
                guard var file = readFile(secPath + "/" + name, limit: 1 << 20) else { continue }
                defer { SecretBytes.wipe(&file) }
                guard var key = GnuPGKeyFile.canonicalKey(file) else { continue }
                defer { SecretBytes.wipe(&key) }
                switch passphrase.map({ GnuPGProtectedKey.unprotect(key, passphrase: $0) }) {
                case .unprotected(let open)?:
                    secrets.append(open)
                case .wrongPassphrase?:
                    // Another passphrase's key: librnp could not open it either (it would only
                    // run the S2K again, and fail on GnuPG's OCB data).
                    lockedKeys += 1
                case .notOCB?, nil:
                    secrets.append(SecretBytes(key))
                }
            }
        } else if var sec = readFile(secPath, limit: 256 << 20) {
            secrets.append(SecretBytes(sec))
            SecretBytes.wipe(&sec)
        }
        return GnuPGHome(
            pubFormat: pubFormat, secFormat: secFormat, pub: SecretBytes(pub), secretKeys: secrets,
            lockedKeys: lockedKeys)
    }

    /// A regular file's bytes (at most `limit`), or nil.
    private static func readFile(_ path: String, limit: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_size <= limit else { return nil }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var total = 0
        while total < out.count {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress.map { $0 + total }, $0.count - total) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            total += n
        }
        return total == out.count ? out : nil
    }

    /// Unlocks every secret key (primary and subkeys) with the passphrase, once, so decryption
    /// never asks for it again.
    private func unlockSecretKeys() throws(SecretError) {
        var it: rnp_identifier_iterator_t? = nil
        guard rnp_identifier_iterator_create(ffi, &it, "fingerprint") == rnpOK, let it else { return }
        defer { rnp_identifier_iterator_destroy(it) }
        var fingerprints: [String] = []
        while true {
            var ident: UnsafePointer<CChar>? = nil
            guard rnp_identifier_iterator_next(it, &ident) == rnpOK, let ident else { break }
            fingerprints.append(String(cString: ident))
        }
        var usable: [String] = []
        for fp in fingerprints {
            var key: rnp_key_handle_t? = nil
            guard rnp_locate_key(ffi, "fingerprint", fp, &key) == rnpOK, let key else { continue }
            defer { rnp_key_handle_destroy(key) }
            var hasSecret = false
            guard rnp_key_have_secret(key, &hasSecret) == rnpOK, hasSecret else { continue }
            secretKeyCount += 1
            var locked = true
            if rnp_key_is_locked(key, &locked) == rnpOK, !locked {
                usable.append(fp)
                continue
            }
            guard let passphrase else { continue }
            let ok: Bool = passphrase.withBytes { p in
                var c = [CChar](repeating: 0, count: p.count + 1)
                defer { for i in c.indices { c[i] = 0 } }
                for i in 0..<p.count { c[i] = CChar(bitPattern: p[i]) }
                return rnp_key_unlock(key, c) == rnpOK
            }
            if ok { usable.append(fp) }
        }
        usableKeys = usable.sorted()
    }

    /// The unlocked X25519 (cv25519) encryption keys, for the fast path: read from librnp's
    /// JSON description of each key (its secret MPI included), whose buffer is wiped at once.
    func x25519Recipients() -> [OpenPGPFastPath.X25519Recipient] {
        eachUsableKeyJSON { text -> OpenPGPFastPath.X25519Recipient? in
            func field(_ name: String) -> [UInt8]? { Self.jsonString(text, name) }
            guard field("type") == Array("ECDH".utf8), field("curve") == Array("Curve25519".utf8),
                let fingerprint = field("fingerprint").flatMap(Self.hex), fingerprint.count == 20,
                let keyID = field("keyid").flatMap(Self.hex), keyID.count == 8,
                var xHex = field("x"), var x = Self.hex(xHex), x.count <= 32
            else { return nil }
            defer {
                SecretBytes.wipe(&xHex)
                SecretBytes.wipe(&x)
            }
            let kdf: UInt8
            switch field("kdf hash").map({ String(decoding: $0, as: UTF8.self) }) {
            case "SHA256": kdf = 8
            case "SHA384": kdf = 9
            case "SHA512": kdf = 10
            default: return nil
            }
            let wrap: UInt8
            switch field("key wrap cipher").map({ String(decoding: $0, as: UTF8.self) }) {
            case "AES128": wrap = 7
            case "AES192": wrap = 8
            case "AES256": wrap = 9
            default: return nil
            }
            // The MPI is the scalar big-endian; X25519 wants it little-endian.
            var native = Array((([UInt8](repeating: 0, count: 32 - x.count)) + x).reversed())
            defer { SecretBytes.wipe(&native) }
            guard let k = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: native) else { return nil }
            return .init(keyID: keyID, fingerprint: fingerprint, key: k, kdfHash: kdf, wrapAlgorithm: wrap)
        }
    }

    /// The unlocked RSA keys with encryption usage, for the fast path: their secret MPIs read
    /// from librnp's JSON description as for `x25519Recipients`. Keys below 2048 bits (which
    /// swift-crypto refuses) are left to librnp.
    func rsaRecipients() -> [OpenPGPFastPath.RSARecipient] {
        eachUsableKeyJSON { text -> OpenPGPFastPath.RSARecipient? in
            guard Self.jsonString(text, "type") == Array("RSA".utf8), Self.hasEncryptUsage(text),
                let keyID = Self.jsonString(text, "keyid").flatMap(Self.hex), keyID.count == 8,
                let n = Self.jsonString(text, "n").flatMap(Self.hex), n.count >= 256,
                let e = Self.jsonString(text, "e").flatMap(Self.hex)
            else { return nil }
            var fields: [[UInt8]] = []
            defer {
                for i in fields.indices { SecretBytes.wipe(&fields[i]) }
            }
            for name in ["d", "p", "q"] {
                guard var h = Self.jsonString(text, name) else { break }
                if let v = Self.hex(h) { fields.append(v) }
                SecretBytes.wipe(&h)
            }
            guard fields.count == 3,
                let k = try? _RSA.Encryption.PrivateKey(n: n, e: e, d: fields[0], p: fields[1], q: fields[2])
            else { return nil }
            let modulus = n.drop(while: { $0 == 0 }).count
            return .init(keyID: keyID, key: k, modulusBytes: modulus)
        }
    }

    /// `body`'s non-nil answers for librnp's JSON description of each usable key, secret MPIs
    /// included; the JSON buffer is wiped as soon as `body` returns.
    private func eachUsableKeyJSON<T>(_ body: (UnsafeRawBufferPointer) -> T?) -> [T] {
        var out: [T] = []
        for fp in usableKeys {
            var key: rnp_key_handle_t? = nil
            guard rnp_locate_key(ffi, "fingerprint", fp, &key) == rnpOK, let key else { continue }
            defer { rnp_key_handle_destroy(key) }
            var json: UnsafeMutablePointer<CChar>? = nil
            guard rnp_key_to_json(key, UInt32(RNP_JSON_PUBLIC_MPIS | RNP_JSON_SECRET_MPIS), &json) == rnpOK, let json
            else { continue }
            let length = strlen(json)
            defer {
                rnp_buffer_clear(json, length)
                rnp_buffer_destroy(json)
            }
            if let value = body(UnsafeRawBufferPointer(start: json, count: length)) { out.append(value) }
        }
        return out
    }

    /// Whether librnp's JSON lists "encrypt" in the key's `usage` array.
    private static func hasEncryptUsage(_ text: UnsafeRawBufferPointer) -> Bool {
        let needle = Array("\"usage\":[".utf8)
        var i = 0
        while i + needle.count <= text.count {
            if text[i..<(i + needle.count)].elementsEqual(needle) {
                var j = i + needle.count
                while j < text.count, text[j] != UInt8(ascii: "]") { j += 1 }
                let list = Array(text[(i + needle.count)..<j])
                let word = Array("\"encrypt\"".utf8)
                guard list.count >= word.count else { return false }
                return (0...(list.count - word.count)).contains { list[$0..<($0 + word.count)].elementsEqual(word) }
            }
            i += 1
        }
        return false
    }

    /// The string value of `"name":"..."` in librnp's JSON (its values are plain ASCII).
    private static func jsonString(_ text: UnsafeRawBufferPointer, _ name: String) -> [UInt8]? {
        let needle = Array("\"\(name)\":\"".utf8)
        guard text.count >= needle.count else { return nil }
        var i = 0
        while i + needle.count <= text.count {
            if text[i] == needle[0] && text[i..<(i + needle.count)].elementsEqual(needle) {
                var j = i + needle.count
                let start = j
                while j < text.count, text[j] != UInt8(ascii: "\"") { j += 1 }
                return Array(text[start..<j])
            }
            i += 1
        }
        return nil
    }

    private static func hex(_ s: [UInt8]) -> [UInt8]? {
        guard s.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            guard let hi = nibble(s[i]), let lo = nibble(s[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// What one decryption found out.
    struct Outcome {
        var result: rnp_result_t
        var mode: String?
        var valid: Bool
    }

    /// Decrypts one message: librnp pulls the ciphertext through `read` (bytes read, 0 at the
    /// end, -1 on error) and pushes plaintext to `emit` as it goes, in bounded memory.
    func decrypt(
        read: (UnsafeMutableRawBufferPointer) -> Int, emit: (UnsafeRawBufferPointer) -> Void
    ) -> Outcome {
        passphraseRequests = 0
        return withoutActuallyEscaping(read) { read in
            withoutActuallyEscaping(emit) { emit in
                let io = RNPStreams(read: read, emit: emit)
                let ctx = Unmanaged.passUnretained(io).toOpaque()
                var input: rnp_input_t? = nil
                var output: rnp_output_t? = nil
                guard rnp_input_from_callback(&input, rnpReader, nil, ctx) == rnpOK else {
                    return Outcome(result: rnp_result_t(RNP_ERROR_GENERIC), mode: nil, valid: false)
                }
                defer { rnp_input_destroy(input) }
                guard rnp_output_to_callback(&output, rnpWriter, nil, ctx) == rnpOK else {
                    return Outcome(result: rnp_result_t(RNP_ERROR_GENERIC), mode: nil, valid: false)
                }
                defer { rnp_output_destroy(output) }
                var op: rnp_op_verify_t? = nil
                guard rnp_op_verify_create(&op, ffi, input, output) == rnpOK else {
                    return Outcome(result: rnp_result_t(RNP_ERROR_GENERIC), mode: nil, valid: false)
                }
                defer { rnp_op_verify_destroy(op) }
                // Signatures are not verified: the signer's public key is usually not at hand.
                rnp_op_verify_set_flags(op, UInt32(RNP_VERIFY_IGNORE_SIGS_ON_DECRYPT))
                let rc = rnp_op_verify_execute(op)
                var mode: UnsafeMutablePointer<CChar>? = nil
                var valid = false
                var modeString: String? = nil
                if rnp_op_verify_get_protection_info(op, &mode, nil, &valid) == rnpOK, let mode {
                    modeString = String(cString: mode)
                }
                rnp_buffer_destroy(mode)
                return Outcome(result: rc, mode: modeString, valid: valid)
            }
        }
    }

    /// The passphrase for a symmetrically encrypted message, once per message (librnp asks
    /// again after a wrong one; the answer would not change).
    fileprivate func providePassphrase(
        context: String, isKey: Bool, into buf: UnsafeMutablePointer<CChar>, capacity: Int
    )
        -> Bool
    {
        // Secret keys were unlocked up front; a key still locked stays locked.
        guard !isKey, context == "decrypt (symmetric)", let passphrase, passphraseRequests == 0 else { return false }
        passphraseRequests += 1
        return passphrase.withBytes { p in
            guard p.count < capacity else { return false }
            for i in 0..<p.count { buf[i] = CChar(bitPattern: p[i]) }
            buf[p.count] = 0
            return true
        }
    }
}

/// The current operation's input and output, reached from librnp's C callbacks.
private final class RNPStreams {
    let read: (UnsafeMutableRawBufferPointer) -> Int
    let emit: (UnsafeRawBufferPointer) -> Void

    init(read: @escaping (UnsafeMutableRawBufferPointer) -> Int, emit: @escaping (UnsafeRawBufferPointer) -> Void) {
        self.read = read
        self.emit = emit
    }
}

private func rnpReader(
    _ ctx: UnsafeMutableRawPointer?, _ buf: UnsafeMutableRawPointer?, _ len: Int, _ read: UnsafeMutablePointer<Int>?
) -> Bool {
    guard let ctx, let buf, let read else { return false }
    let io = Unmanaged<RNPStreams>.fromOpaque(ctx).takeUnretainedValue()
    let n = io.read(UnsafeMutableRawBufferPointer(start: buf, count: len))
    if n < 0 { return false }
    read.pointee = n
    return true
}

private func rnpWriter(_ ctx: UnsafeMutableRawPointer?, _ buf: UnsafeRawPointer?, _ len: Int) -> Bool {
    guard let ctx else { return false }
    let io = Unmanaged<RNPStreams>.fromOpaque(ctx).takeUnretainedValue()
    if len > 0, let buf { io.emit(UnsafeRawBufferPointer(start: buf, count: len)) }
    return true
}

private func rnpPassProvider(
    _ ffi: rnp_ffi_t?, _ ctx: UnsafeMutableRawPointer?, _ key: rnp_key_handle_t?, _ context: UnsafePointer<CChar>?,
    _ buf: UnsafeMutablePointer<CChar>?, _ len: Int
) -> Bool {
    guard let ctx, let buf, let context, len > 0 else { return false }
    let owner = Unmanaged<RNPContext>.fromOpaque(ctx).takeUnretainedValue()
    return owner.providePassphrase(context: String(cString: context), isKey: key != nil, into: buf, capacity: len)
}

/// librnp's own diagnostics, which it prints to stdio's stderr for every damaged message
/// (`[func() file.cpp:N] mdc header check failed`): `serve` turns them off below
/// `--log-level debug`, `count` always. See CLibRNPLoader.h.
package enum LibRNPDiagnostics {
    /// Once, before any thread starts.
    package static func silence() { cryptcount_rnp_silence_diagnostics() }
}
