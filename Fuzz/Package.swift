// swift-tools-version:6.1
// libFuzzer targets over cryptcount's decoders (`make fuzz`). A package of its own, so the
// sanitizer build never slows `swift build` or `make test` of the main package.
import PackageDescription

let package = Package(
    name: "cryptcount-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "cryptcount", path: "..")],
    targets: [
        .executableTarget(
            name: "FuzzTarget",
            dependencies: [.product(name: "CryptCountFuzzSupport", package: "cryptcount")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    ],
    swiftLanguageModes: [.v6]
)
