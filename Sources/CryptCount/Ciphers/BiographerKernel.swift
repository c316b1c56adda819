import CBiographerKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif

/// The `biographer` decryption kernels, and the one place that chooses among them.
///
/// `sse2` is the portable Swift SIMD16 kernel (SSE2 on x86-64, NEON elsewhere), the baseline
/// every CPU runs; `avx2` and `avx512` are the C kernels in `Sources/CBiographerKernels`,
/// compiled with per-function target attributes and run only when cpuid and the operating system
/// say they can (`avx512` needs AVX-512 F, BW, VL and VBMI). The process uses the widest one,
/// unless `CRYPTCOUNT_KERNEL` names another (for tests and benchmarks).
package enum BiographerKernel: String, CaseIterable, Sendable {
    case sse2, avx2, avx512

    package static let environmentVariable = "CRYPTCOUNT_KERNEL"

    private var id: Int32 {
        switch self {
        case .sse2: Int32(CCBIO_SSE2)
        case .avx2: Int32(CCBIO_AVX2)
        case .avx512: Int32(CCBIO_AVX512)
        }
    }

    /// The kernels this CPU runs (cpuid is asked once: in a VM each call is a trap).
    private static let supportedSet: Set<BiographerKernel> = Set(allCases.filter { ccbio_supported($0.id) != 0 })

    package var isSupported: Bool { Self.supportedSet.contains(self) }

    /// The widest kernel this CPU runs.
    package static let widest: BiographerKernel = allCases.last { $0.isSupported } ?? .sse2

    /// The kernel `CRYPTCOUNT_KERNEL` asks for (nil when unset or empty), or why it cannot run.
    package static func requested(_ value: String?) -> Result<BiographerKernel?, KernelChoiceError> {
        guard let value, !value.isEmpty else { return .success(nil) }
        guard let kernel = BiographerKernel(rawValue: value) else {
            return .failure(KernelChoiceError(message: "\(environmentVariable)=\(value): use sse2, avx2 or avx512"))
        }
        guard kernel.isSupported else {
            return .failure(KernelChoiceError(message: "\(environmentVariable)=\(value): this CPU does not run it"))
        }
        return .success(kernel)
    }

    package static var environmentValue: String? {
        getenv(environmentVariable).map { String(cString: $0) }
    }

    /// The kernel the process uses: the one `CRYPTCOUNT_KERNEL` names, else the widest. The
    /// commands refuse to start on a name that is unknown or that this CPU cannot run
    /// (`requested`); here such a name falls back to the widest.
    package static let active: BiographerKernel = {
        if case .success(let kernel?) = requested(environmentValue) { return kernel }
        return widest
    }()
}

package struct KernelChoiceError: Error, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}
