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
        .library(name: "CryptCount", targets: ["CryptCount"]),
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
        // RE2 (apt libre2-dev, C++) behind a C interface; used by Search/Regex only.
        .target(
            name: "CRE2Shim",
            cxxSettings: [.unsafeFlags(["-std=c++17", "-O2"])],
            linkerSettings: [.linkedLibrary("re2")]
        ),
        .target(
            name: "CryptCount",
            dependencies: [
                "CMsgPack",
                "CLibRNP",
                "CRE2Shim",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "cryptcount",
            dependencies: [
                "CryptCount",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CryptCountTests",
            dependencies: ["CryptCount"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
