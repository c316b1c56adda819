/// The release version, reported by `hello` and `--version`.
package enum CryptCountVersion {
    package static let string = "0.1.0"
    package static let protocolVersion = 1
}
