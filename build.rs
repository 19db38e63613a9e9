//! Builds the BPF objects (one skeleton per `bpf/*.bpf.c`) and the pprof protobuf types.
//!
//! Every BPF program is compiled for the target architecture, which the skeleton embeds, and
//! also for the other supported architecture, so a portability slip breaks the build on x86
//! before it breaks a user on arm64.

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use libbpf_cargo::SkeletonBuilder;

/// The BPF programs, by stem: `bpf/<stem>.bpf.c` becomes the `<stem>` skeleton.
const BPF_PROGRAMS: &[&str] = &[
    "cpu",
    "offcpu",
    "threads",
    "alloc",
    "lock",
    "kernel_symbols",
];

/// `__TARGET_ARCH_*` names as libbpf's `bpf_tracing.h` spells them.
const BPF_ARCHES: &[&str] = &["x86", "arm64"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => panic!("rprof-bpf supports x86_64 and aarch64, not {other}"),
        Err(e) => panic!("CARGO_CFG_TARGET_ARCH: {e}"),
    };

    println!("cargo:rerun-if-changed=bpf");
    for stem in BPF_PROGRAMS {
        let src = PathBuf::from(format!("bpf/{stem}.bpf.c"));
        for arch in BPF_ARCHES {
            let obj = out.join(format!("{stem}.{arch}.bpf.o"));
            let mut builder = SkeletonBuilder::new();
            builder.source(&src).obj(&obj).clang_args(clang_args(arch));
            if *arch == target_arch {
                builder
                    .build_and_generate(out.join(format!("{stem}.skel.rs")))
                    .unwrap_or_else(|e| panic!("building {} for {arch}: {e:#}", src.display()));
            } else {
                builder
                    .build()
                    .unwrap_or_else(|e| panic!("building {} for {arch}: {e:#}", src.display()));
            }
        }
    }

    compile_proto(&out, Path::new("proto/profile.proto"));
}

fn clang_args(arch: &str) -> Vec<String> {
    vec![
        format!("-D__TARGET_ARCH_{arch}"),
        "-Ibpf".into(),
        "-Ibpf/vmlinux".into(),
        "-Wall".into(),
        "-Werror".into(),
    ]
}

/// Compiles the pprof schema with protox, so building needs no `protoc`.
fn compile_proto(out: &Path, proto: &Path) {
    println!("cargo:rerun-if-changed={}", proto.display());
    let include = proto.parent().unwrap_or(Path::new("."));
    let fds = protox::compile([proto], [include]).expect("compiling proto/profile.proto");
    prost_build::Config::new()
        .out_dir(out)
        .compile_fds(fds)
        .expect("generating Rust types for proto/profile.proto");
    debug_assert!(out.join("perftools.profiles.rs").exists() || OsStr::new("").is_empty());
}
