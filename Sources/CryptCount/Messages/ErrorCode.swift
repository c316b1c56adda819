/// Request-level error codes (protocol v1, "Request errors").
package enum RequestErrorCode: String, Sendable, CaseIterable {
    case badFrame = "bad_frame"
    case frameTooLarge = "frame_too_large"
    case badMsgpack = "bad_msgpack"
    case badRequest = "bad_request"
    case unknownOp = "unknown_op"
    case unknownCipher = "unknown_cipher"
    case unknownKey = "unknown_key"
    case badSecret = "bad_secret"
    case duplicateID = "duplicate_id"
    case busy = "busy"
}

/// Per-file error codes (protocol v1, `count`).
package enum FileErrorCode: String, Sendable, CaseIterable {
    case notFound = "not_found"
    case permissionDenied = "permission_denied"
    case notAFile = "not_a_file"
    case tooLarge = "too_large"
    case decryptFailed = "decrypt_failed"
    case badFormat = "bad_format"
    case ioError = "io_error"
    case outsideRoot = "outside_root"
}

/// A request that gets an `error` response instead of its normal one.
package struct RequestError: Error, Sendable, Equatable {
    package var id: RequestID?
    package var code: RequestErrorCode
    package var message: String

    package init(_ code: RequestErrorCode, _ message: String, id: RequestID? = nil) {
        self.id = id
        self.code = code
        self.message = message
    }
}
