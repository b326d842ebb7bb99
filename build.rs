//! Link flags for libtorch and the git revision for run manifests.
//!
//! torch-sys exports the libtorch library folder as `DEP_TCH_LIBTORCH_LIB` (Cargo passes `links`
//! metadata only to direct dependents, hence the direct `torch-sys` dependency). We bake it into the
//! binary's rpath, resolved through symlinks, so the binary runs without `LD_LIBRARY_PATH`, and force
//! `-ltorch` with `--no-as-needed` so that a CUDA libtorch keeps `libtorch_cuda` linked.
use std::process::Command;

fn main() {
    for var in ["LIBTORCH", "LIBTORCH_USE_PYTORCH", "LIBTORCH_LIB", "DEP_TCH_LIBTORCH_LIB"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        match std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
            Some(lib) => {
                let lib = std::fs::canonicalize(&lib).unwrap_or_else(|_| lib.into());
                println!("cargo:rustc-link-arg=-Wl,-rpath={}", lib.display());
                // torch-sys has already checked that this is the version tch pins.
                let version = std::fs::read_to_string(lib.join("../build-version"));
                let version = version.as_deref().map(str::trim).unwrap_or("2.13.0");
                println!("cargo:rustc-env=PRUNELAB_LIBTORCH_VERSION={version}");
            }
            None => {
                println!("cargo:warning=DEP_TCH_LIBTORCH_LIB is not set: no rpath for libtorch");
                println!("cargo:rustc-env=PRUNELAB_LIBTORCH_VERSION=2.13.0");
            }
        }
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    } else {
        println!("cargo:rustc-env=PRUNELAB_LIBTORCH_VERSION=2.13.0");
    }

    let hash = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=PRUNELAB_GIT_HASH={hash}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
