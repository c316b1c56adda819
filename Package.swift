// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .unsafeFlags(["-warnings-as-errors"], .when(configuration: .debug))
]

let package = Package(
    name: "cryptcount",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cryptcount", targets: ["cryptcount"]),
        // The fuzz harness, for the libFuzzer package under Fuzz/ (with test-only fixture secrets:
        // kept out of the library the command ships).
        .library(name: "CryptCountFuzzSupport", targets: ["CryptCountFuzzSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CMsgPack",
            pkgConfig: "msgpack",
            providers: [.apt(["libmsgpack-dev"])]
        ),
        .systemLibrary(
            name: "CLibRNP",
            pkgConfig: "librnp",
            providers: [.apt(["librnp-dev"])]
        ),
        // librnp's functions, forwarded to librnp loaded with dlopen on first use (see
        // include/CLibRNPLoader.h); the Makefile's builds link librnp AS_NEEDED, so not at all.
        .target(name: "CLibRNPLoader", dependencies: ["CLibRNP"], linkerSettings: [.linkedLibrary("dl")]),
        // RE2 (apt libre2-dev, C++) behind a C interface; used by Search/Regex only.
        .target(
            name: "CRE2Shim",
            cxxSettings: [.unsafeFlags(["-std=c++17", "-O2"])],
            linkerSettings: [.linkedLibrary("re2")]
        ),
        // Vectorised base64 decoding (AVX2, chosen at run time); used by Ciphers/Base64 only.
        .target(name: "CFastBase64", cSettings: [.unsafeFlags(["-O2"])]),
        // SIMD search kernels (Teddy, short-term counting), each behind a runtime CPU check.
        .target(
            name: "CSearchKernels",
            cSettings: [.unsafeFlags(["-O2"])]
        ),
        // The biographer cipher's AVX2 and AVX-512 kernels: per-function target attributes, no
        // -march, so the binary runs on any x86-64 (BiographerKernel picks one at run time).
        .target(name: "CBiographerKernels"),
        // X25519 of one scalar with 8 points in AVX-512 IFMA lanes (age cold, issue 14): a
        // per-function target attribute and a runtime CPU check, like CSearchKernels; -O2 so the
        // debug build's tests do not run the kernel unoptimised.
        .target(name: "CX25519Lanes", cSettings: [.unsafeFlags(["-O2"])]),
        .target(
            name: "CryptCount",
            dependencies: [
                "CSearchKernels",
                "CMsgPack",
                "CBiographerKernels",
                "CX25519Lanes",
                "CLibRNP",
                "CLibRNPLoader",
                "CRE2Shim",
                "CFastBase64",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // MessagePack <-> JSON Lines, for `frame`/`unframe` and the golden tests.
        .target(
            name: "CryptCountJSONLines",
            dependencies: ["CryptCount"],
            swiftSettings: strict
        ),
        .target(
            name: "CryptCountFuzzSupport",
            dependencies: ["CryptCount", "CryptCountJSONLines"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "cryptcount",
            dependencies: [
                "CryptCount",
                "CryptCountJSONLines",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CryptCountTests",
            dependencies: ["CryptCount", "CryptCountJSONLines", "CryptCountFuzzSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
