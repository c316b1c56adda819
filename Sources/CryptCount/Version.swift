/// The release version, reported by `hello` and `--version`.
public enum CryptCountVersion {
    public static let string = "0.1.0"
    public static let protocolVersion = 1
}
