//! Tests against real binaries: a Go program built at test time by every local toolchain
//! (`go` on PATH and Debian's `/usr/lib/go-*`), checked against what the Go runtime itself,
//! `go tool objdump`, the ELF symbol table and binutils say about the same pcs.
//!
//! Without a Go toolchain these tests print a loud notice and pass. Set
//! `GOPCLNTAB_EXTRA_BINARIES=/path/a:/path/b` to also check Go binaries built elsewhere
//! (other Go versions).

use super::*;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The test program. `leaf` and `mid` are small enough to inline, so the `dump()` call is
/// leaf inlined into mid inlined into outer; `// LINE:` markers name the lines tests expect.
const PROGRAM: &str = r#"package main

import (
	"fmt"
	"os"
	"runtime"
)

var (
	sink   int
	dumped bool
)

func leaf(x int) int {
	if x == 3 {
		dump() // LINE:leaf_call
	}
	return x + 1
}

func mid(x int) int {
	return leaf(x) * 2 // LINE:mid_call
}

//go:noinline
func outer(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += mid(i) // LINE:outer_call
	}
	return s
}

//go:noinline
func frameful(n int) int {
	var buf [32]int
	for i := range buf {
		buf[i] = outer(n + i)
	}
	return buf[n%32]
}

// dump prints, once, each pc runtime.Callers reports and the frame the runtime gives it:
// pc, physical entry, function, file, line.
//
//go:noinline
func dump() {
	if dumped {
		return
	}
	dumped = true
	pcs := make([]uintptr, 64)
	n := runtime.Callers(1, pcs)
	for _, pc := range pcs[:n] {
		f, _ := runtime.CallersFrames([]uintptr{pc}).Next()
		fmt.Printf("%x\t%x\t%s\t%s\t%d\n", pc, f.Entry, f.Function, f.File, f.Line)
	}
}

func main() {
	sink = frameful(len(os.Args))
	fmt.Println(sink)
}
"#;

/// A cgo program, linked by the system linker, which merges the table into `.data.rel.ro`.
const CGO_PROGRAM: &str = r#"package main

/*
static int twice(int x) { return 2 * x; }
*/
import "C"
import "fmt"

func main() { fmt.Println(C.twice(21)) }
"#;

fn line_of(marker: &str) -> u32 {
    let tag = format!("// LINE:{marker}");
    let i = PROGRAM
        .lines()
        .position(|l| l.trim_end().ends_with(&tag))
        .expect("marker");
    i as u32 + 1
}

/// One toolchain's builds of [`PROGRAM`].
struct Build {
    version: String,
    go: PathBuf,
    dir: PathBuf,
    normal: Vec<u8>,
    stripped: Vec<u8>,
    pie: Vec<u8>,
    pie_stripped: Vec<u8>,
}

impl Build {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn work_root() -> PathBuf {
    std::env::temp_dir().join("rprof-gopclntab-tests")
}

fn go_command(go: &Path, dir: &Path) -> Command {
    let root = work_root();
    let mut c = Command::new(go);
    c.current_dir(dir)
        .env("GOCACHE", root.join("gocache"))
        .env("GOPATH", root.join("gopath"))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .env("GO111MODULE", "on")
        .env("GOPROXY", "off")
        .env("GOWORK", "off");
    c
}

/// Each distinct Go toolchain here, with its version.
fn toolchains() -> Vec<(PathBuf, String)> {
    let mut candidates = vec![PathBuf::from("go")];
    if let Ok(dir) = std::fs::read_dir("/usr/lib") {
        let mut more: Vec<PathBuf> = dir
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("go-"))
            .map(|e| e.path().join("bin/go"))
            .filter(|p| p.exists())
            .collect();
        more.sort();
        candidates.extend(more);
    }
    let mut out: Vec<(PathBuf, String)> = Vec::new();
    for go in candidates {
        let Ok(o) = Command::new(&go)
            .arg("version")
            .env("GOTOOLCHAIN", "local")
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&o.stdout);
        let Some(version) = text.split_whitespace().nth(2).map(str::to_owned) else {
            continue;
        };
        if o.status.success() && !out.iter().any(|(_, v)| *v == version) {
            out.push((go, version));
        }
    }
    out
}

/// Writes `content` to `path` unless it is already there (atomically, so concurrent test
/// processes sharing the directory never see half a file).
fn write_if_changed(path: &Path, content: &[u8]) {
    if std::fs::read(path).is_ok_and(|c| c == content) {
        return;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Runs `go build` with `args` in `dir`, output to `dir/name`; the bytes, or `None` on failure.
fn go_build(
    go: &Path,
    dir: &Path,
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Option<Vec<u8>> {
    let tmp = format!("{name}.tmp{}", std::process::id());
    let mut c = go_command(go, dir);
    c.arg("build").arg("-o").arg(&tmp).args(args).arg(".");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().ok()?;
    if !out.status.success() {
        eprintln!(
            "go build {args:?} in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    std::fs::rename(dir.join(&tmp), dir.join(name)).ok()?;
    std::fs::read(dir.join(name)).ok()
}

fn source_dir(version: &str, what: &str, main_go: &str) -> PathBuf {
    let dir = work_root().join(version).join(what);
    std::fs::create_dir_all(&dir).unwrap();
    write_if_changed(&dir.join("go.mod"), b"module gopclntabtest\n\ngo 1.16\n");
    write_if_changed(&dir.join("main.go"), main_go.as_bytes());
    dir
}

fn builds() -> &'static [Build] {
    static BUILDS: OnceLock<Vec<Build>> = OnceLock::new();
    BUILDS.get_or_init(|| {
        let chains = toolchains();
        if chains.is_empty() {
            eprintln!("\n!!!!!!!! gopclntab tests: no `go` toolchain found; Go binary checks SKIPPED !!!!!!!!\n");
        }
        chains
            .into_iter()
            .map(|(go, version)| {
                let dir = source_dir(&version, "basic", PROGRAM);
                // A toolchain that is there but cannot build is a failure, not a skip.
                let build = |name: &str, args: &[&str]| {
                    go_build(&go, &dir, name, args, &[])
                        .unwrap_or_else(|| panic!("{version}: go build {args:?} failed"))
                };
                Build {
                    normal: build("normal", &[]),
                    stripped: build("stripped", &["-ldflags=-s -w"]),
                    pie: build("pie", &["-buildmode=pie"]),
                    pie_stripped: build("pie_stripped", &["-buildmode=pie", "-ldflags=-s -w"]),
                    version,
                    go,
                    dir,
                }
            })
            .collect()
    })
}

#[test]
fn tables_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<GoTable>();
    send_sync::<GoTableError>();
}

#[test]
fn non_go_files() {
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(
        GoTable::from_elf(&me).unwrap().is_none(),
        "a Rust test binary is not Go"
    );
    assert!(GoTable::from_elf(b"not an ELF file").is_err());
}

fn table(data: &[u8]) -> GoTable {
    GoTable::from_elf(data)
        .expect("readable")
        .expect("a Go table")
}

fn function<'a>(fns: &'a [GoFunction], name: &str) -> &'a GoFunction {
    fns.iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no function {name}"))
}

fn positions(frames: &[GoFrame]) -> Vec<(String, String, u32)> {
    frames
        .iter()
        .map(|f| (f.name.clone(), f.file.clone(), f.line))
        .collect()
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The runtime's own answer: run the program and compare each physical frame it reports
/// (its logical frames grouped by physical entry) with `frames` at that return address.
#[test]
fn frames_match_the_go_runtime() {
    for b in builds() {
        let t = table(&b.normal);
        let out = Command::new(b.path("normal"))
            .output()
            .expect("run the test program");
        assert!(out.status.success(), "{}", b.version);
        let text = String::from_utf8_lossy(&out.stdout);
        let rows: Vec<(u64, u64, String, String, u32)> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f.len() == 5).then(|| {
                    let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
                    (
                        hex(f[0]),
                        hex(f[1]),
                        f[2].to_owned(),
                        f[3].to_owned(),
                        f[4].parse().unwrap(),
                    )
                })
            })
            .collect();
        assert!(rows.len() >= 6, "{}: runtime printed {text}", b.version);
        let mut checked_inline = false;
        let mut i = 0;
        while i < rows.len() {
            let entry = rows[i].1;
            let group: Vec<_> = rows[i..].iter().take_while(|r| r.1 == entry).collect();
            i += group.len();
            let pc = group[0].0;
            // A return address: look up the call instruction, as the runtime does.
            let lookup = if pc > entry { pc - 1 } else { pc };
            let ours = t.frames(lookup);
            let theirs: Vec<_> = group
                .iter()
                .map(|r| (r.2.clone(), r.3.clone(), r.4))
                .collect();
            assert_eq!(positions(&ours), theirs, "{} at {pc:#x}", b.version);
            if theirs[0].0 == "main.leaf" {
                checked_inline = true;
                let lines: Vec<u32> = ours.iter().map(|f| f.line).collect();
                assert_eq!(
                    lines,
                    [
                        line_of("leaf_call"),
                        line_of("mid_call"),
                        line_of("outer_call")
                    ]
                );
                let inlined: Vec<bool> = ours.iter().map(|f| f.inlined).collect();
                assert_eq!(inlined, [true, true, false]);
            }
        }
        assert!(
            checked_inline,
            "{}: the runtime did not report the inlined chain",
            b.version
        );
        eprintln!("{}: {} runtime frames agree", b.version, rows.len());
    }
}

/// `go tool objdump` prints the physical function and the innermost file:line of every
/// instruction: compare them over main and a few runtime functions.
#[test]
fn frames_match_go_objdump() {
    for b in builds() {
        let t = table(&b.normal);
        let out = go_command(&b.go, &b.dir)
            .args([
                "tool",
                "objdump",
                "-s",
                r"^(main\.|runtime\.(main|goexit|mallocgc|schedule|newobject)$)",
            ])
            .arg(b.path("normal"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", b.version);
        let text = String::from_utf8_lossy(&out.stdout);
        let (mut func, mut checked) = (String::new(), 0);
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("TEXT ") {
                func = rest.split("(SB)").next().unwrap().to_owned();
                continue;
            }
            let mut tok = l.split_whitespace();
            let (Some(pos), Some(pc)) = (tok.next(), tok.next()) else {
                continue;
            };
            let (Some((file, line)), Some(pc)) = (
                pos.rsplit_once(':'),
                pc.strip_prefix("0x")
                    .and_then(|p| u64::from_str_radix(p, 16).ok()),
            ) else {
                continue;
            };
            let frames = t.frames(pc);
            assert_eq!(
                frames.last().map(|f| f.name.as_str()),
                Some(func.as_str()),
                "{} at {pc:#x}",
                b.version
            );
            assert_eq!(base_name(&frames[0].file), file, "{} at {pc:#x}", b.version);
            assert_eq!(frames[0].line.to_string(), line, "{} at {pc:#x}", b.version);
            checked += 1;
        }
        assert!(checked > 500, "{}: only {checked} instructions", b.version);
        eprintln!(
            "{}: {checked} instructions agree with go tool objdump",
            b.version
        );
    }
}

/// Every function of the table is a symbol of the same name at the same address.
#[test]
fn functions_match_the_symbol_table() {
    for b in builds() {
        check_against_symbols(&table(&b.normal), &b.normal, &b.version);
        check_against_symbols(&table(&b.pie), &b.pie, &b.version);
    }
}

fn check_against_symbols(t: &GoTable, data: &[u8], what: &str) {
    use object::{Object, ObjectSymbol};
    let file = object::File::parse(data).unwrap();
    let mut by_addr: HashMap<u64, Vec<String>> = HashMap::new();
    for s in file.symbols() {
        if let Ok(name) = s.name() {
            // Assembly functions' symbols carry their ABI (Go 1.17+); the table's names do not.
            let name = name.strip_suffix(".abi0").unwrap_or(name);
            by_addr
                .entry(s.address())
                .or_default()
                .push(display_name(name.as_bytes()));
        }
    }
    let fns: Vec<GoFunction> = t.functions().collect();
    assert!(fns.len() > 1000, "{what}");
    for f in &fns {
        let names = by_addr.get(&f.entry).map(Vec::as_slice).unwrap_or_default();
        // The linker writes a name's middle dots as dots in ELF symbols (seen in Go 1.24).
        let dotted = f.name.replace('\u{b7}', ".");
        assert!(
            names.contains(&f.name) || names.contains(&dotted),
            "{what}: {} at {:#x}; symbols there: {names:?}",
            f.name,
            f.entry
        );
    }
    let (start, end) = t.text_range();
    assert_eq!(start, fns[0].entry);
    assert_eq!(end, fns.last().unwrap().end);
    if let Some(etext) = file.symbols().find(|s| s.name() == Ok("runtime.etext")) {
        // The last function's end, which some linkers (Go 1.24 external links) leave
        // short of the aligned runtime.etext.
        assert!(
            end <= etext.address() && etext.address() - end < 64,
            "{what}: text end {end:#x}"
        );
    }
}

/// Stripped and PIE builds have no symbols to lean on (the stripped PIE even finds the
/// module data by relocation); they must name the same functions the normal build does.
#[test]
fn stripped_and_pie_builds_agree_with_normal() {
    for b in builds() {
        let normal = table(&b.normal);
        let stripped = table(&b.stripped);
        let n_fns: Vec<_> = normal.functions().collect();
        assert_eq!(
            n_fns,
            stripped.functions().collect::<Vec<_>>(),
            "{}: stripped functions",
            b.version
        );
        let (start, end) = normal.text_range();
        for pc in (start..end).step_by(7) {
            assert_eq!(
                normal.frames(pc),
                stripped.frames(pc),
                "{} stripped at {pc:#x}",
                b.version
            );
            assert_eq!(
                normal.unwind_at(pc),
                stripped.unwind_at(pc),
                "{} stripped at {pc:#x}",
                b.version
            );
        }

        let pie = table(&b.pie);
        let pie_stripped = table(&b.pie_stripped);
        let p_fns: Vec<_> = pie.functions().collect();
        assert_eq!(
            p_fns,
            pie_stripped.functions().collect::<Vec<_>>(),
            "{}: stripped PIE functions",
            b.version
        );
        let (start, end) = pie.text_range();
        for pc in (start..end).step_by(7) {
            assert_eq!(
                pie.frames(pc),
                pie_stripped.frames(pc),
                "{} stripped PIE at {pc:#x}",
                b.version
            );
        }
        // PIE code differs, but the program's functions and their inlining do not.
        let mains = |fns: &[GoFunction]| -> Vec<String> {
            fns.iter()
                .filter(|f| f.name.starts_with("main."))
                .map(|f| f.name.clone())
                .collect()
        };
        assert_eq!(mains(&n_fns), mains(&p_fns), "{}", b.version);
        for name in mains(&n_fns) {
            let (n, p) = (function(&n_fns, &name), function(&p_fns, &name));
            assert_eq!(
                normal.frames(n.entry),
                pie.frames(p.entry),
                "{} {name}",
                b.version
            );
        }
        let chains = |t: &GoTable, f: &GoFunction| -> Vec<Vec<(String, String, u32)>> {
            let mut v: Vec<_> = (f.entry..f.end)
                .map(|pc| positions(&t.frames(pc)))
                .filter(|c| c.len() == 3)
                .collect();
            v.dedup();
            v
        };
        let outer = chains(&normal, function(&n_fns, "main.outer"));
        assert!(
            !outer.is_empty(),
            "{}: no inlined chain in main.outer",
            b.version
        );
        assert_eq!(
            outer,
            chains(&pie, function(&p_fns, "main.outer")),
            "{}",
            b.version
        );
        assert_eq!(
            outer,
            chains(&pie_stripped, function(&p_fns, "main.outer")),
            "{}",
            b.version
        );
    }
}

/// sp_delta follows the prologue `go tool objdump` shows for two known functions: 0 at
/// entry, then each PUSHQ/SUBQ (and the epilogue's ADDQ/POPQ) as it happens.
#[test]
fn unwind_follows_the_prologue() {
    for b in builds() {
        let t = table(&b.normal);
        let out = go_command(&b.go, &b.dir)
            .args(["tool", "objdump", "-s", r"^main\.(frameful|outer)$"])
            .arg(b.path("normal"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut funcs: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
        let mut cur = String::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("TEXT ") {
                cur = rest.split("(SB)").next().unwrap().to_owned();
            } else {
                // position, pc, encoding, instruction: tab-separated, with runs of tabs.
                let cols: Vec<&str> = l
                    .split('\t')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect();
                if let [_, pc, _, asm, ..] = cols[..] {
                    let pc = u64::from_str_radix(pc.trim_start_matches("0x"), 16).unwrap();
                    funcs
                        .entry(cur.clone())
                        .or_default()
                        .push((pc, asm.to_owned()));
                }
            }
        }
        assert_eq!(funcs.len(), 2, "{}: {text}", b.version);
        for (name, insns) in &funcs {
            let entry = insns[0].0;
            let u = t.unwind_at(entry).unwrap();
            assert_eq!(
                (u.entry, u.sp_delta, u.outermost),
                (entry, 0, false),
                "{} {name}",
                b.version
            );
            let (mut sp, mut frame) = (0i64, 0i64);
            for (pc, asm) in insns {
                assert_eq!(
                    i64::from(t.unwind_at(*pc).unwrap().sp_delta),
                    sp,
                    "{} {name} at {pc:#x} {asm}",
                    b.version
                );
                let imm = |s: &str| {
                    i64::from_str_radix(s.trim_start_matches("$0x").trim_end_matches(", SP"), 16)
                        .ok()
                };
                match asm.split_once(' ') {
                    Some(("PUSHQ", _)) => sp += 8,
                    Some(("POPQ", _)) => sp -= 8,
                    Some(("SUBQ", ops)) if ops.ends_with(", SP") => sp += imm(ops).unwrap(),
                    Some(("ADDQ", ops)) if ops.ends_with(", SP") => sp -= imm(ops).unwrap(),
                    Some(("CALL", callee)) if callee.starts_with("main.") => {
                        assert!(sp > 0, "{} {name}: frameless at a call", b.version);
                        frame = sp;
                    }
                    _ if asm == "RET" => break,
                    _ => {}
                }
            }
            if name == "main.frameful" {
                assert!(
                    frame >= 32 * 8,
                    "{}: frameful's frame {frame} holds its [32]int",
                    b.version
                );
            }
        }
        let fns: Vec<_> = t.functions().collect();
        for (name, outermost) in [
            ("runtime.goexit", true),
            ("runtime.mstart", true),
            ("runtime.main", false),
        ] {
            let u = t.unwind_at(function(&fns, name).entry).unwrap();
            assert_eq!(u.outermost, outermost, "{} {name}", b.version);
        }
        assert!(
            t.unwind_at(function(&fns, "runtime.mcall").entry)
                .unwrap()
                .sp_write,
            "{}",
            b.version
        );
    }
}

/// binutils' disassembly of every function: from entry to the first unconditional jump or
/// return, pushes, pops and immediate SP adjustments must match sp_delta at each
/// instruction. `None` when objdump is missing or the machine is not x86-64.
fn check_sp_deltas_with_binutils(
    t: &GoTable,
    path: &Path,
    range: (u64, u64),
) -> Option<(usize, Vec<String>)> {
    let data = std::fs::read(path).ok()?;
    if object::File::parse(&*data)
        .ok()
        .map(|f| object::Object::architecture(&f))
        != Some(object::Architecture::X86_64)
    {
        return None;
    }
    let out = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn", "-M", "att"])
        .arg(format!("--start-address={:#x}", range.0))
        .arg(format!("--stop-address={:#x}", range.1))
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let entries: std::collections::HashSet<u64> = t.functions().map(|f| f.entry).collect();
    let (mut sp, mut active, mut checked, mut bad) = (0i64, false, 0usize, Vec::new());
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((addr, insn)) = l.trim_start().split_once(":\t") else {
            continue;
        };
        let Ok(pc) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        if entries.contains(&pc) {
            // Functions that write SP have no pcsp to check against.
            active = t.unwind_at(pc).is_some_and(|u| !u.sp_write);
            sp = 0;
        }
        if !active {
            continue;
        }
        let (op, args) = insn
            .trim()
            .split_once(char::is_whitespace)
            .map_or((insn.trim(), ""), |(o, a)| (o, a.trim()));
        if op == "int3" {
            active = false; // padding after the last instruction: no pcsp there
            continue;
        }
        match t.unwind_at(pc) {
            Some(u) if i64::from(u.sp_delta) == sp => checked += 1,
            // Above the entry SP (vfork pops its return address): no delta to give.
            None if sp < 0 => checked += 1,
            other => bad.push(format!("{pc:#x} {insn}: expected {sp}, got {other:?}")),
        }
        let imm =
            |a: &str| i64::from_str_radix(a.strip_prefix("$0x")?.strip_suffix(",%rsp")?, 16).ok();
        match op {
            o if o.starts_with("push") => sp += 8,
            o if o.starts_with("pop") => sp -= 8,
            "sub" if imm(args).is_some() => sp += imm(args).unwrap(),
            "add" if imm(args).is_some() => sp -= imm(args).unwrap(),
            o if o.starts_with("ret") || o.starts_with("jmp") || o == "ud2" => active = false,
            // Code after a call that does not return is reached another way (often the
            // morestack block, at SP delta 0); an unnamed callee might be one.
            o if o.starts_with("call") => {
                let noreturn = [
                    "throw",
                    "panic",
                    "Panic",
                    "morestack",
                    "fatal",
                    "abort",
                    "Goexit",
                    "exit",
                ];
                let callee = args.split_once('<').map(|(_, c)| c);
                if callee.is_none_or(|c| noreturn.iter().any(|n| c.contains(n))) {
                    active = false;
                }
            }
            _ if args.ends_with(",%rsp") || op == "leave" => active = false,
            _ => {}
        }
    }
    Some((checked, bad))
}

#[test]
fn unwind_matches_binutils_disassembly() {
    for b in builds() {
        for (name, data) in [("normal", &b.normal), ("pie", &b.pie)] {
            let t = table(data);
            let Some((checked, bad)) =
                check_sp_deltas_with_binutils(&t, &b.path(name), t.text_range())
            else {
                eprintln!("no binutils objdump (or not x86-64): skipping the disassembly check");
                return;
            };
            assert!(
                bad.is_empty(),
                "{} {name}: {} of {} differ: {:#?}",
                b.version,
                bad.len(),
                checked,
                &bad[..bad.len().min(20)]
            );
            assert!(checked > 10_000, "{} {name}: only {checked}", b.version);
            eprintln!(
                "{} {name}: sp_delta agrees with binutils at {checked} instructions",
                b.version
            );
        }
    }
}

/// The system linker (cgo, external linking) merges the table into `.data.rel.ro` under
/// no name of its own; stripped, only the magic scan finds it.
#[test]
fn externally_linked_pie_is_found_by_scanning() {
    let Some(b) = builds().first() else { return };
    let dir = source_dir(&b.version, "cgo", CGO_PROGRAM);
    let cgo = [("CGO_ENABLED", "1")];
    let ext = |name, ldflags| go_build(&b.go, &dir, name, &["-buildmode=pie", ldflags], &cgo);
    let (Some(with_syms), Some(stripped)) = (
        ext("ext", "-ldflags=-linkmode=external"),
        ext("ext_stripped", "-ldflags=-linkmode=external -s -w"),
    ) else {
        eprintln!("\n!!!!!!!! cgo/external linking unavailable (no C compiler?): external-link test SKIPPED !!!!!!!!\n");
        return;
    };
    {
        use object::{Object, ObjectSection};
        let f = object::File::parse(&*stripped).unwrap();
        assert!(
            f.sections()
                .all(|s| !s.name().unwrap_or("").contains("pclntab")),
            "expected no table section"
        );
        assert!(f.symbols().next().is_none(), "expected no symbols");
    }
    let (a, s) = (table(&with_syms), table(&stripped));
    let fns: Vec<_> = a.functions().collect();
    assert_eq!(fns, s.functions().collect::<Vec<_>>());
    assert!(fns.iter().any(|f| f.name == "main.main"));
    assert!(
        s.inline.is_some(),
        "stripped external link: inline trees not found"
    );
    let (start, end) = a.text_range();
    let mut inlined = 0;
    for pc in (start..end).step_by(5) {
        let f = a.frames(pc);
        inlined += usize::from(f.len() > 1);
        assert_eq!(f, s.frames(pc), "at {pc:#x}");
    }
    assert!(inlined > 100);
    check_against_symbols(&a, &with_syms, "external link");
}

/// lld and aarch64 GNU ld leave a PIE's relocated words zero in the file, the value only in
/// the relocation: zero them and expect the same answers.
#[test]
fn pie_with_zeroed_relocated_words() {
    use object::{Object, ObjectSegment};
    for b in builds() {
        for data in [&b.pie, &b.pie_stripped] {
            let file = object::File::parse(&**data).unwrap();
            let file_offset = |addr: u64| {
                file.segments().find_map(|s| {
                    let (off, size) = s.file_range();
                    let d = addr.checked_sub(s.address())?;
                    (d < size).then_some((off + d) as usize)
                })
            };
            let mut zeroed = (*data).clone();
            let mut n = 0;
            for (place, r) in file.dynamic_relocations().into_iter().flatten() {
                if r.flags()
                    == (object::RelocationFlags::Elf {
                        r_type: object::elf::R_X86_64_RELATIVE,
                    })
                {
                    if let Some(off) = file_offset(place) {
                        zeroed[off..off + 8].fill(0);
                        n += 1;
                    }
                }
            }
            if n == 0 {
                continue; // not x86-64
            }
            let (t, z) = (table(data), table(&zeroed));
            assert_eq!(t.text_range(), z.text_range());
            assert_eq!(
                t.functions().collect::<Vec<_>>(),
                z.functions().collect::<Vec<_>>()
            );
            let (start, end) = t.text_range();
            for pc in (start..end).step_by(11) {
                assert_eq!(t.frames(pc), z.frames(pc), "{} at {pc:#x}", b.version);
            }
        }
    }
}

/// A small fixed-seed PRNG (xorshift64*), so damage is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Loads damaged bytes and queries whatever loads: no panic, no hang, bounded memory.
fn exercise(data: &[u8], probes: &[u64]) -> bool {
    let Ok(Some(t)) = GoTable::from_elf(data) else {
        return false;
    };
    assert!(
        t.bytes() <= 2 * data.len() + 4096,
        "{} bytes held for a {} byte file",
        t.bytes(),
        data.len()
    );
    let (start, end) = t.text_range();
    for &pc in probes
        .iter()
        .chain(&[start, end, start.wrapping_add(end) / 2])
    {
        let _ = t.unwind_at(pc);
        assert!(t.frames(pc).len() <= inline::MAX_DEPTH + 1);
    }
    let _ = t.functions().take(50_000).count();
    true
}

#[test]
fn damaged_tables_never_panic() {
    use object::{Object, ObjectSection, ObjectSegment};
    let Some(b) = builds().first() else { return };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for data in [&b.normal, &b.pie_stripped] {
        let good = table(data);
        let (start, end) = good.text_range();
        let mut probes: Vec<u64> = (0..200).map(|i| start + (end - start) * i / 200).collect();
        probes.extend([0, start - 1, end, end + 1, u64::MAX]);
        let file = object::File::parse(&**data).unwrap();
        let sec = file
            .sections()
            .find(|s| s.name().is_ok_and(|n| n.ends_with("gopclntab")))
            .unwrap();
        let (tab_off, tab_len) = sec
            .file_range()
            .map(|(o, l)| (o as usize, l as usize))
            .unwrap();
        // Byte offset of this section's sh_size in the section header table (ELF64, LE).
        let shoff = u64::from_le_bytes(data[0x28..0x30].try_into().unwrap()) as usize;
        let shentsize = u16::from_le_bytes(data[0x3a..0x3c].try_into().unwrap()) as usize;
        let sh_size_at = shoff + sec.index().0 * shentsize + 32;
        let inline = good.inline.as_ref().unwrap();
        let inline_off = file
            .segments()
            .find_map(|s| {
                let d = inline.addr.checked_sub(s.address())?;
                (d < s.file_range().1).then_some((s.file_range().0 + d) as usize)
            })
            .unwrap();
        let inline_len = inline.data.len();
        let mut loaded = 0;

        // Truncated tables: the section claims fewer bytes.
        for k in (0..64).chain((0..64).map(|i| i * tab_len / 64)) {
            let mut d = data.clone();
            d[sh_size_at..sh_size_at + 8].copy_from_slice(&(k as u64).to_le_bytes());
            loaded += usize::from(exercise(&d, &probes));
        }
        // Random bytes anywhere in the table, then in the inline trees, then in the file.
        for (region, len, rounds) in [
            (tab_off, tab_len, 400),
            (inline_off, inline_len, 150),
            (0, data.len(), 150),
        ] {
            for _ in 0..rounds {
                let mut d = data.clone();
                for _ in 0..1 + rng.below(16) {
                    let at = region + rng.below(len);
                    d[at] = if rng.next() & 1 == 0 {
                        d[at] ^ (1 << rng.below(8))
                    } else {
                        rng.next() as u8
                    };
                }
                loaded += usize::from(exercise(&d, &probes));
            }
        }
        // Extreme header words: counts and offsets.
        for word in 0..8 {
            for v in [
                0u64,
                1,
                0x7fff_ffff,
                0xffff_ffff,
                tab_len as u64 - 1,
                u64::MAX,
                1 << 62,
            ] {
                let mut d = data.clone();
                let at = tab_off + 8 + 8 * word;
                d[at..at + 8].copy_from_slice(&v.to_le_bytes());
                loaded += usize::from(exercise(&d, &probes));
            }
        }
        // Function records overwritten with 0xff: huge counts and offsets everywhere.
        for i in (0..good.header.nfunc).step_by(7) {
            let Some(rec) = good.functab().record_offset(i) else {
                continue;
            };
            let mut d = data.clone();
            let at = tab_off + rec.min(tab_len - 1);
            let end = (at + 48).min(tab_off + tab_len);
            d[at..end].fill(0xff);
            loaded += usize::from(exercise(&d, &probes));
        }
        assert!(
            loaded > 100,
            "most damage should still load something: {loaded}"
        );

        // Many more rounds on the table bytes alone, skipping the ELF parse.
        let img = elf::Image::parse(data).unwrap();
        let cand = elf::Candidate {
            addr: good.tab_addr,
            len: Some(good.tab.len()),
            named: true,
        };
        for round in 0..3000 {
            let mut tab = good.tab.clone();
            match round % 3 {
                0 => tab.truncate(rng.below(tab.len())),
                1 => {
                    for _ in 0..1 + rng.below(32) {
                        let at = rng.below(tab.len());
                        tab[at] = rng.next() as u8;
                    }
                }
                _ => {
                    // A run of 0xff or 0x00 somewhere: huge or zero counts and offsets.
                    let at = rng.below(tab.len());
                    let end = (at + 1 + rng.below(64)).min(tab.len());
                    tab[at..end].fill(if rng.next() & 1 == 0 { 0xff } else { 0 });
                }
            }
            if let Ok(t) = load::build(&img, tab, &cand) {
                for &pc in &probes {
                    let _ = t.unwind_at(pc);
                    assert!(t.frames(pc).len() <= inline::MAX_DEPTH + 1);
                }
                let _ = t.functions().take(50_000).count();
            }
        }
    }
}

/// Binaries built elsewhere, by other Go versions: `GOPCLNTAB_EXTRA_BINARIES=a:b`.
/// Checks functions against symbols when present, inline file:line chains against
/// `addr2line -i` when DWARF is present, and sp_delta against binutils' disassembly.
#[test]
fn extra_binaries() {
    let Ok(list) = std::env::var("GOPCLNTAB_EXTRA_BINARIES") else {
        return;
    };
    for path in list.split(':').filter(|p| !p.is_empty()) {
        let data = std::fs::read(path).unwrap();
        let t0 = std::time::Instant::now();
        let t = table(&data);
        let load = t0.elapsed();
        let fns: Vec<_> = t.functions().collect();
        assert!(fns.windows(2).all(|w| w[0].end <= w[1].entry), "{path}");
        for f in &fns {
            assert_eq!(
                t.frames(f.entry).last().map(|fr| &fr.name),
                Some(&f.name),
                "{path}"
            );
        }
        let goexit = t.unwind_at(function(&fns, "runtime.goexit").entry).unwrap();
        assert!(goexit.outermost, "{path}");
        assert!(t.inline.is_some(), "{path}: no inline trees");
        use object::Object;
        let file = object::File::parse(&*data).unwrap();
        if file.symbols().next().is_some() {
            check_against_symbols(&t, &data, path);
        }
        // Sample pcs across the text; compare inline chains with DWARF via addr2line.
        let (start, end) = t.text_range();
        let pcs: Vec<u64> = (0..3000u64)
            .map(|i| start + (end - start) / 3000 * i)
            .collect();
        let mut dwarf = "no DWARF".to_owned();
        if file.section_by_name(".debug_line").is_some() {
            let out = Command::new("addr2line")
                .args(["-a", "-i", "-e", path])
                .args(pcs.iter().map(|pc| format!("{pc:#x}")))
                .output();
            if let Ok(out) = out {
                // `-a` heads each pc's frames with the pc itself.
                let mut theirs: HashMap<u64, Vec<String>> = HashMap::new();
                let mut cur = 0;
                for l in String::from_utf8_lossy(&out.stdout).lines() {
                    match l.strip_prefix("0x").map(|h| u64::from_str_radix(h, 16)) {
                        Some(Ok(pc)) => cur = pc,
                        _ => theirs.entry(cur).or_default().push(l.to_owned()),
                    }
                }
                let (mut same, mut inlined, mut differ) = (0, 0, Vec::new());
                for &pc in &pcs {
                    let ours: Vec<String> = t
                        .frames(pc)
                        .iter()
                        .map(|f| format!("{}:{}", f.file, f.line))
                        .collect();
                    // DWARF spells "no line" `file:?` and prefixes `<autogenerated>` with `./`.
                    let dwarf: Vec<String> = theirs
                        .get(&pc)
                        .into_iter()
                        .flatten()
                        .map(|l| {
                            if l.ends_with(":?") {
                                "?:0".to_owned()
                            } else {
                                l.trim_start_matches("./").to_owned()
                            }
                        })
                        .collect();
                    if dwarf.iter().all(|l| l == "?:0" || l.starts_with("??")) {
                        continue; // DWARF has no line here (autogenerated code, padding)
                    }
                    if ours == dwarf {
                        same += 1;
                        inlined += usize::from(ours.len() > 1);
                    } else {
                        differ.push(format!("{pc:#x}: ours {ours:?}, DWARF {dwarf:?}"));
                    }
                }
                assert!(
                    differ.is_empty(),
                    "{path}: {} agree, {} differ: {:#?}",
                    same,
                    differ.len(),
                    &differ[..differ.len().min(20)]
                );
                assert!(same > 1000, "{path}: {same}");
                dwarf = format!(
                    "file:line chains at {same} pcs ({inlined} in inlined code) agree with DWARF"
                );
            }
        }
        // A slice of text keeps the disassembly quick on large binaries.
        let mid = fns[fns.len() / 2].entry;
        let sp = match check_sp_deltas_with_binutils(
            &t,
            Path::new(path),
            (start, (start + (1 << 20)).min(mid)),
        ) {
            Some((checked, bad)) => {
                assert!(bad.is_empty(), "{path}: {:#?}", &bad[..bad.len().min(20)]);
                format!("sp_delta agrees with binutils at {checked} instructions")
            }
            None => "no disassembly check".to_owned(),
        };
        eprintln!(
            "{path}: {:?}, {} functions, loaded in {load:?}, {} bytes; {dwarf}; {sp}",
            t.header.version,
            fns.len(),
            t.bytes()
        );
    }
}

/// Rewrites a Go 1.18+ table (64-bit, little-endian) in the Go 1.16–1.17 layout: no
/// `textStart`, pointer-sized entries in the function table and records, funcdata as
/// addresses. `keep_flags` keeps the 1.17 flag byte; without it the byte is padding, as in
/// Go 1.16. The name, CU, file and pc-value tables keep their offsets.
fn as_go116(t: &GoTable, keep_flags: bool) -> Vec<u8> {
    let (h, o) = (&t.header, &t.tab);
    let word_size = if h.version == header::Version::Go120 {
        4 * 10
    } else {
        4 * 9
    };
    let mut out = Vec::new();
    out.extend_from_slice(&0xffff_fffau32.to_le_bytes());
    out.extend_from_slice(&o[4..8]);
    let nfiles = u64::from_le_bytes(o[16..24].try_into().unwrap());
    for w in [
        h.nfunc as u64,
        nfiles,
        h.funcnames as u64,
        h.cutab as u64,
        h.filetab as u64,
        h.pctab as u64,
        h.functab as u64,
    ] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.resize(h.funcnames, 0);
    out.extend_from_slice(&o[h.funcnames..h.functab]);
    let pcln = h.functab;
    out.resize(pcln + (h.nfunc + 1) * 16, 0);
    let ft = t.functab();
    let mut pairs = Vec::new();
    for i in 0..h.nfunc {
        let f = ft.func(i).unwrap();
        let rec = ft.record_offset(i).unwrap();
        out.resize(out.len().next_multiple_of(8), 0);
        pairs.push((f.entry, (out.len() - pcln) as u64));
        out.extend_from_slice(&f.entry.to_le_bytes());
        // nameoff, args, deferreturn, pcsp, pcfile, pcln, npcdata, cuOffset (no startLine).
        out.extend_from_slice(&o[rec + 4..rec + 36]);
        let tail = rec + 4 + word_size - 4;
        let mut last = o[tail..tail + 4].to_vec(); // funcID, flag, pad, nfuncdata
        if !keep_flags {
            last[1] = 0;
        }
        out.extend_from_slice(&last);
        let pcdata = tail + 4;
        out.extend_from_slice(&o[pcdata..pcdata + 4 * f.npcdata as usize]);
        if (t.tab_addr + out.len() as u64) & 4 != 0 {
            out.extend_from_slice(&[0; 4]);
        }
        for k in 0..f.nfuncdata as usize {
            let at = pcdata + 4 * f.npcdata as usize + 4 * k;
            let off = u32::from_le_bytes(o[at..at + 4].try_into().unwrap());
            let ptr = if off == u32::MAX {
                0
            } else {
                t.gofunc.unwrap() + u64::from(off)
            };
            out.extend_from_slice(&ptr.to_le_bytes());
        }
    }
    pairs.push((t.text_range().1, 0));
    for (i, (entry, off)) in pairs.into_iter().enumerate() {
        let at = pcln + 16 * i;
        out[at..at + 8].copy_from_slice(&entry.to_le_bytes());
        out[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
    }
    out
}

/// No Go 1.16/1.17 toolchain is at hand, so rewrite a newer build's table in their layout
/// and expect the same answers; with the flag byte zeroed (Go 1.16), names find the
/// stack-ending functions.
#[test]
fn go116_layout_rewritten_from_a_newer_table() {
    for b in builds() {
        let t = table(&b.normal);
        if t.header.version == header::Version::Go120 {
            // 1.20+ trees have no parent links, which the 1.16 layout needs.
            continue;
        }
        let img = elf::Image::parse(&b.normal).unwrap();
        let fns: Vec<_> = t.functions().collect();
        for keep_flags in [true, false] {
            let tab = as_go116(&t, keep_flags);
            let cand = elf::Candidate {
                addr: t.tab_addr,
                len: Some(tab.len()),
                named: true,
            };
            let old = load::build(&img, tab, &cand).expect("the rewritten table loads");
            assert_eq!(old.header.version, header::Version::Go116);
            assert!(old.inline.is_some());
            assert_eq!(old.text_range(), t.text_range());
            assert_eq!(fns, old.functions().collect::<Vec<_>>());
            let (start, end) = t.text_range();
            for pc in (start..end).step_by(3) {
                assert_eq!(t.frames(pc), old.frames(pc), "{} at {pc:#x}", b.version);
                let (a, o) = (t.unwind_at(pc), old.unwind_at(pc));
                if keep_flags {
                    assert_eq!(a, o, "{} at {pc:#x}", b.version);
                } else {
                    assert_eq!(
                        a.map(|u| (u.entry, u.sp_delta)),
                        o.map(|u| (u.entry, u.sp_delta))
                    );
                }
            }
            for (name, outermost, sp_write) in [
                ("runtime.goexit", true, false),
                ("runtime.mcall", true, true),
                ("runtime.main", false, false),
            ] {
                let u = old.unwind_at(function(&fns, name).entry).unwrap();
                assert_eq!(
                    (u.outermost, u.sp_write),
                    (outermost, sp_write),
                    "{name}, flags kept: {keep_flags}"
                );
            }
            assert_eq!(old.stack_end_by_name.is_empty(), keep_flags);
        }
    }
}

/// Rewrites a Go 1.16+ table (64-bit, little-endian) in the Go 1.2–1.15 layout: one flat
/// table where names, pc-value tables and record offsets all count from the start, and
/// pcfile values index one global file table (from 1) instead of per-CU ones.
fn as_go12(t: &GoTable) -> Vec<u8> {
    let (h, o) = (&t.header, &t.tab);
    let ft = t.functab();
    let n = h.nfunc;
    let mut out = vec![0u8; 16 + 16 * (n + 1) + 8 + 4];
    out[..8].copy_from_slice(&[0xfb, 0xff, 0xff, 0xff, 0, 0, h.quantum, 8]);
    out[8..16].copy_from_slice(&(n as u64).to_le_bytes());
    let name_base = out.len();
    out.extend_from_slice(&o[h.funcnames..h.cutab]);
    let pc_base = out.len();
    out.extend_from_slice(&o[h.pctab..h.functab]);
    let rebase = |off: u32, base: usize| if off == 0 { 0 } else { off + base as u32 };

    let mut files: Vec<Vec<u8>> = Vec::new();
    let mut records = Vec::new(); // (entry, record bytes)
    for i in 0..n {
        let f = ft.func(i).unwrap();
        // pcfile, renumbered into the global file table.
        let spans = pcvalue::Spans::new(
            o.get(h.pctab + f.pcfile as usize..).unwrap(),
            f.entry,
            h.quantum,
        );
        let runs: Vec<(i32, u32)> = spans
            .map(|s| {
                let name = ft.file(f.cu_offset, s.value).unwrap().to_vec();
                let idx = files.iter().position(|x| *x == name).unwrap_or_else(|| {
                    files.push(name);
                    files.len() - 1
                });
                (
                    idx as i32 + 1,
                    ((s.end - s.start) / u64::from(h.quantum)) as u32,
                )
            })
            .collect();
        let pcfile = out.len();
        out.extend_from_slice(&pcvalue::encode(&runs));
        let mut r = Vec::new();
        r.extend_from_slice(&f.entry.to_le_bytes());
        // nameoff, args, frame, pcsp, pcfile, pcln, npcdata
        for v in [
            f.name_off + name_base as u32,
            0,
            0,
            rebase(f.pcsp, pc_base),
            pcfile as u32,
            rebase(f.pcln, pc_base),
            f.npcdata,
        ] {
            r.extend_from_slice(&v.to_le_bytes());
        }
        r.extend_from_slice(&[0, 0, 0, 0]); // funcID, pad, nfuncdata 0
        for slot in 0..f.npcdata {
            r.extend_from_slice(&rebase(ft.pcdata_table(&f, slot).unwrap(), pc_base).to_le_bytes());
        }
        records.push((f.entry, r));
    }
    let filetab = out.len();
    out.extend_from_slice(&(files.len() as u32 + 1).to_le_bytes());
    let strings = filetab + 4 * (files.len() + 1);
    let mut at = strings;
    for name in &files {
        out.extend_from_slice(&(at as u32).to_le_bytes());
        at += name.len() + 1;
    }
    for name in &files {
        out.extend_from_slice(name);
        out.push(0);
    }
    for (i, (entry, r)) in records.into_iter().enumerate() {
        out.resize(out.len().next_multiple_of(8), 0);
        let pair = 16 + 16 * i;
        let off = out.len() as u64;
        out[pair..pair + 8].copy_from_slice(&entry.to_le_bytes());
        out[pair + 8..pair + 16].copy_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&r);
    }
    let end = 16 + 16 * n;
    out[end..end + 8].copy_from_slice(&t.text_range().1.to_le_bytes());
    out[end + 8..end + 12].copy_from_slice(&(filetab as u32).to_le_bytes());
    out
}

/// No Go 1.2–1.15 toolchain either: rewrite a newer table in the old flat layout and expect
/// the same functions, SP deltas, and physical frames (old tables' inline trees are not read).
#[test]
fn go12_layout_rewritten_from_a_newer_table() {
    for b in builds() {
        let t = table(&b.normal);
        let img = elf::Image::parse(&b.normal).unwrap();
        let tab = as_go12(&t);
        let cand = elf::Candidate {
            addr: t.tab_addr,
            len: Some(tab.len()),
            named: true,
        };
        let old = load::build(&img, tab, &cand).expect("the rewritten table loads");
        assert_eq!(old.header.version, header::Version::Go12);
        let fns: Vec<_> = t.functions().collect();
        assert_eq!(fns, old.functions().collect::<Vec<_>>());
        let (start, end) = t.text_range();
        for pc in (start..end).step_by(3) {
            let (new, old_frames) = (t.frames(pc), old.frames(pc));
            let (Some(first), Some(last)) = (new.first(), new.last()) else {
                assert!(old_frames.is_empty());
                continue;
            };
            let physical = GoFrame {
                name: last.name.clone(),
                file: first.file.clone(),
                line: first.line,
                inlined: false,
            };
            assert_eq!(old_frames, [physical], "{} at {pc:#x}", b.version);
            assert_eq!(
                t.unwind_at(pc).map(|u| u.sp_delta),
                old.unwind_at(pc).map(|u| u.sp_delta)
            );
        }
        for (name, outermost) in [
            ("runtime.goexit", true),
            ("runtime.systemstack", true),
            ("main.outer", false),
        ] {
            assert_eq!(
                old.unwind_at(function(&fns, name).entry).unwrap().outermost,
                outermost,
                "{name}"
            );
        }
    }
}
