/// A decoded MessagePack value. Strings keep their raw bytes: the protocol echoes paths back
/// byte for byte, and a `str` that is not valid UTF-8 must survive the round trip.
package enum MessagePackValue: Sendable, Hashable {
    case `nil`
    case bool(Bool)
    case int(Int64)  // negative integers only; non-negative ones decode as .uint
    case uint(UInt64)
    case float(Double)
    case string([UInt8])
    case binary([UInt8])
    case array([MessagePackValue])
    case map([MessagePackPair])
    case ext(type: Int8, data: [UInt8])
}

package struct MessagePackPair: Sendable, Hashable {
    package var key: MessagePackValue
    package var value: MessagePackValue

    package init(_ key: MessagePackValue, _ value: MessagePackValue) {
        self.key = key
        self.value = value
    }
}

extension MessagePackValue {
    /// A `str` value from Swift text.
    package static func text(_ s: String) -> MessagePackValue { .string(Array(s.utf8)) }

    /// The UTF-8 text of a `str` value, if it is one and is valid UTF-8.
    package var stringValue: String? {
        guard case .string(let bytes) = self else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Looks a key up in a map with string keys (first match wins).
    package subscript(key: String) -> MessagePackValue? {
        guard case .map(let pairs) = self else { return nil }
        let wanted = Array(key.utf8)
        for pair in pairs {
            if case .string(let k) = pair.key, k == wanted { return pair.value }
        }
        return nil
    }
}
