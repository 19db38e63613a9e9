//! Maps read from files, and through [`PerfMaps`] for real processes (children of the test:
//! each test has its own pid, so its `/tmp/perf-PID.map` is its own).
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::*;

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("perf_map_{}_{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, text: &[u8]) {
    std::fs::write(path, text).unwrap();
}

fn append(path: &Path, text: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text).unwrap();
}

fn name_at(map: &PerfMap, addr: u64) -> Option<&str> {
    map.lookup(addr).map(|s| s.name)
}

/// A sleeping child process, killed (and its map removed) on drop.
struct Target {
    child: std::process::Child,
    map: PathBuf,
}

impl Target {
    fn spawn(uid: Option<u32>) -> Target {
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        if let Some(uid) = uid {
            cmd.uid(uid);
        }
        let child = cmd.spawn().expect("spawn sleep");
        let map = PathBuf::from(format!("/tmp/perf-{}.map", child.id()));
        Target { child, map }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.map);
        let _ = std::fs::remove_dir(&self.map);
    }
}

#[test]
fn well_formed_map() {
    let dir = scratch("well_formed");
    let path = dir.join("map");
    write(
        &path,
        b"1000 10 plain\n\
          0x2000 0x20 long Spin.fib(int)\n\
          3000\t8\tJS:*fib /app/fib.js:1:15\n\
          0X00000000000040a0 0x0000000000000001 one byte\n",
    );
    let map = PerfMap::load_path(&path, None).unwrap();
    assert_eq!((map.len(), map.malformed_lines()), (4, 0));
    assert_eq!(name_at(&map, 0xfff), None);
    assert_eq!(name_at(&map, 0x1000), Some("plain"));
    assert_eq!(name_at(&map, 0x100f), Some("plain"));
    assert_eq!(name_at(&map, 0x1010), None);
    assert_eq!(
        map.lookup(0x201f),
        Some(JitSymbol {
            name: "long Spin.fib(int)",
            start: 0x2000,
            size: 0x20
        })
    );
    assert_eq!(name_at(&map, 0x2020), None);
    assert_eq!(name_at(&map, 0x3007), Some("JS:*fib /app/fib.js:1:15"));
    assert_eq!(name_at(&map, 0x40a0), Some("one byte"));
    assert_eq!(name_at(&map, 0x409f), None);
    assert_eq!(name_at(&map, 0x40a1), None);
    assert_eq!(
        map.iter().map(|s| s.start).collect::<Vec<_>>(),
        [0x1000, 0x2000, 0x3000, 0x40a0]
    );
    // The same text parsed from memory.
    let parsed = PerfMap::parse(&std::fs::read(&path).unwrap());
    assert_eq!(
        parsed.iter().collect::<Vec<_>>(),
        map.iter().collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_lines_are_counted_and_skipped() {
    let dir = scratch("malformed");
    let path = dir.join("map");
    let mut text = b"1000 10 first\n".to_vec();
    for bad in [
        &b"2000"[..],                         // missing SIZE and NAME
        b"2000 10",                           // missing NAME
        b"20g0 10 bad hex",                   // START not hex
        b"2000 1x bad size",                  // SIZE not hex
        b"2000 0 empty",                      // zero size
        b"ffffffffffffff00 100 past the end", // START + SIZE overflows
        b"2000 10 caf\xc3",                   // not UTF-8
        b"",                                  // empty line
    ] {
        text.extend_from_slice(bad);
        text.push(b'\n');
    }
    text.extend_from_slice(b"3000 10 middle\n\n4000 10 last\n5000 10 trunc");
    write(&path, &text);
    let map = PerfMap::load_path(&path, None).unwrap();
    // 8 bad lines, one more empty line, and the unfinished last line.
    assert_eq!((map.len(), map.malformed_lines()), (3, 10));
    assert_eq!(name_at(&map, 0x1000), Some("first"));
    assert_eq!(name_at(&map, 0x2000), None);
    assert_eq!(name_at(&map, 0x3000), Some("middle"));
    assert_eq!(name_at(&map, 0x400f), Some("last"));
    assert_eq!(name_at(&map, 0x5000), None, "unfinished last line");
    // Parsed from memory, the last line counts as complete.
    let parsed = PerfMap::parse(&text);
    assert_eq!((parsed.len(), parsed.malformed_lines()), (4, 9));
    assert_eq!(PerfMap::parse(b"").malformed_lines(), 0);
    assert_eq!(PerfMap::parse(b"\n").malformed_lines(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn later_entries_override_earlier_ones() {
    let map = PerfMap::parse(
        b"1000 100 old\n\
          1040 20 newer inside\n\
          10f0 20 newer across the end\n\
          1000 100 overwritten whole\n\
          1050 8 newest\n",
    );
    assert_eq!(name_at(&map, 0x1000), Some("overwritten whole"));
    assert_eq!(name_at(&map, 0x1040), Some("overwritten whole"));
    assert_eq!(
        map.lookup(0x1050),
        Some(JitSymbol {
            name: "newest",
            start: 0x1050,
            size: 8
        })
    );
    assert_eq!(name_at(&map, 0x1058), Some("overwritten whole"));
    assert_eq!(name_at(&map, 0x10ff), Some("overwritten whole"));
    assert_eq!(
        map.lookup(0x1100),
        Some(JitSymbol {
            name: "newer across the end",
            start: 0x10f0,
            size: 0x20
        })
    );
    assert_eq!(name_at(&map, 0x1110), None);
}

#[test]
fn refresh_reads_appends_and_rewrites() {
    let target = Target::spawn(None);
    let pid = target.pid();
    let mut maps = PerfMaps::with_reread_interval(Duration::from_secs(3600));
    maps.refresh(pid);
    assert!(!maps.has_map(pid), "no file yet");
    write(&target.map, b"1000 10 a\n2000 10 b\n");
    maps.refresh(pid);
    assert!(maps.has_map(pid));
    assert_eq!(maps.lookup(pid, 0x1000).map(|s| s.name), Some("a"));
    let c = maps.counters().clone();
    assert_eq!(
        (c.files_read, c.entries, c.rereads, c.reloads),
        (1, 2, 0, 0)
    );

    // Appended, with the last line unfinished: only the new part is read.
    append(&target.map, b"3000 10 c\n4000 10 d");
    maps.refresh(pid);
    let c = maps.counters().clone();
    assert_eq!(
        (
            c.files_read,
            c.entries,
            c.rereads,
            c.reloads,
            c.malformed_lines
        ),
        (1, 3, 1, 0, 1)
    );
    assert_eq!(maps.lookup(pid, 0x3000).map(|s| s.name), Some("c"));
    // Finished; a newer line over an old one.
    append(&target.map, b"\n1000 8 a2\n");
    maps.refresh(pid);
    let c = maps.counters().clone();
    assert_eq!(
        (
            c.files_read,
            c.entries,
            c.rereads,
            c.reloads,
            c.malformed_lines
        ),
        (1, 5, 2, 0, 1)
    );
    assert_eq!(maps.lookup(pid, 0x4000).map(|s| s.name), Some("d"));
    assert_eq!(maps.lookup(pid, 0x1000).map(|s| s.name), Some("a2"));
    assert_eq!(maps.lookup(pid, 0x1008).map(|s| s.name), Some("a"));
    // Nothing new: no re-read counted.
    maps.refresh(pid);
    assert_eq!(maps.counters().rereads, 2);

    // Rewritten in place with other content, longer than before: read whole.
    write(
        &target.map,
        b"1000 10 x\n5000 10 y\n6000 10 z\n7000 10 w\n8000 10 v\n",
    );
    maps.refresh(pid);
    let c = maps.counters().clone();
    assert_eq!(
        (c.files_read, c.entries, c.rereads, c.reloads),
        (2, 10, 3, 1)
    );
    assert_eq!(maps.lookup(pid, 0x1000).map(|s| s.name), Some("x"));
    assert_eq!(maps.map(pid).unwrap().len(), 5);
    // Replaced by a new file (another inode), shorter.
    let tmp = target.map.with_extension("new");
    write(&tmp, b"9000 10 only\n");
    std::fs::rename(&tmp, &target.map).unwrap();
    maps.refresh(pid);
    assert_eq!(maps.counters().reloads, 2);
    assert_eq!(maps.map(pid).unwrap().len(), 1);
    // The long interval: a miss does not re-read.
    assert_eq!(maps.lookup(pid, 0x1000), None);
    assert_eq!(maps.counters().lookup_misses, 1);
    assert_eq!(maps.counters().reloads, 2);

    // Once the process has exited, what was read stays.
    drop(target);
    maps.refresh(pid);
    assert!(maps.has_map(pid));
    assert_eq!(maps.lookup(pid, 0x9000).map(|s| s.name), Some("only"));
    maps.forget(pid);
    assert!(!maps.has_map(pid));
}

#[test]
fn lookup_misses_re_read_at_most_once_per_interval() {
    let target = Target::spawn(None);
    let pid = target.pid();
    // A lookup for a process never refreshed reads its map.
    write(&target.map, b"1000 10 a\n");
    let mut maps = PerfMaps::with_reread_interval(Duration::from_millis(300));
    assert_eq!(maps.lookup(pid, 0x1000).map(|s| s.name), Some("a"));
    append(&target.map, b"2000 10 b\n");
    // The read just now was too recent.
    assert_eq!(maps.lookup(pid, 0x2000), None);
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(maps.lookup(pid, 0x2000).map(|s| s.name), Some("b"));
    // A miss after a re-read is still a miss.
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(maps.lookup(pid, 0x3000), None);
    let c = maps.counters();
    assert_eq!((c.files_read, c.rereads, c.lookup_misses), (1, 1, 2));
}

#[test]
fn owner_must_be_root_or_the_process() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "\n!!!!!!!! SKIPPED owner_must_be_root_or_the_process: needs root (chown) !!!!!!!!\n"
        );
        return;
    }
    let dir = scratch("owner");
    let path = dir.join("map");
    write(&path, b"1000 10 a\n");
    std::os::unix::fs::chown(&path, Some(12345), None).unwrap();
    assert!(matches!(
        PerfMap::load_path(&path, Some(1000)),
        Err(PerfMapError::WrongOwner {
            owner: 12345,
            expected: 1000,
            ..
        })
    ));
    assert_eq!(PerfMap::load_path(&path, Some(12345)).unwrap().len(), 1);
    assert_eq!(PerfMap::load_path(&path, None).unwrap().len(), 1);
    std::os::unix::fs::chown(&path, Some(0), None).unwrap();
    assert_eq!(PerfMap::load_path(&path, Some(1000)).unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();

    // Through PerfMaps: a process running as uid 12345.
    let target = Target::spawn(Some(12345));
    let pid = target.pid();
    let mut maps = PerfMaps::new();
    write(&target.map, b"1000 10 mine\n");
    std::os::unix::fs::chown(&target.map, Some(23456), None).unwrap();
    maps.refresh(pid);
    maps.refresh(pid);
    assert!(!maps.has_map(pid));
    assert_eq!(maps.counters().wrong_owner, 1, "counted once per process");
    std::os::unix::fs::chown(&target.map, Some(12345), None).unwrap();
    maps.refresh(pid);
    assert!(maps.has_map(pid));
    std::os::unix::fs::chown(&target.map, Some(0), None).unwrap();
    maps.refresh(pid);
    assert!(maps.has_map(pid));
    assert_eq!(maps.lookup(pid, 0x1000).map(|s| s.name), Some("mine"));
    // Handed to someone else: dropped.
    std::os::unix::fs::chown(&target.map, Some(23456), None).unwrap();
    maps.refresh(pid);
    assert!(!maps.has_map(pid));
    assert_eq!(maps.counters().wrong_owner, 2);
}

#[test]
fn paths_that_are_not_regular_files_are_ignored() {
    let target = Target::spawn(None);
    let pid = target.pid();
    let mut maps = PerfMaps::new();
    std::fs::create_dir(&target.map).unwrap();
    maps.refresh(pid);
    maps.refresh(pid);
    std::fs::remove_dir(&target.map).unwrap();
    let real = std::env::temp_dir().join(format!("perf_map_{}_link_target", std::process::id()));
    write(&real, b"1000 10 a\n");
    std::os::unix::fs::symlink(&real, &target.map).unwrap();
    maps.refresh(pid);
    assert!(!maps.has_map(pid));
    assert_eq!(maps.counters().not_regular, 1, "counted once per process");
    std::fs::remove_file(&target.map).unwrap();
    std::fs::remove_file(&real).unwrap();
}

/// Node with `--perf-basic-prof` appends a line per compiled function while it runs.
#[test]
fn node_perf_basic_prof() {
    let node = Path::new("/usr/bin/node");
    if !node.exists() {
        eprintln!("\n!!!!!!!! SKIPPED node_perf_basic_prof: /usr/bin/node is missing !!!!!!!!\n");
        return;
    }
    let script = "function rprofPerfMapProbe(n) { return n < 2 ? n : rprofPerfMapProbe(n - 1) + rprofPerfMapProbe(n - 2); }\n\
                  const end = Date.now() + 1500; let s = 0;\n\
                  while (Date.now() < end) s += rprofPerfMapProbe(18);";
    // V8 also writes a log into its working directory with --perf-basic-prof.
    let child = Command::new(node)
        .args(["--perf-basic-prof", "-e", script])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn node");
    let mut target = Target {
        map: PathBuf::from(format!("/tmp/perf-{}.map", child.id())),
        child,
    };
    let pid = target.pid();
    let mut maps = PerfMaps::new();
    let started = Instant::now();
    let mut probe = None;
    while probe.is_none() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        if target.child.try_wait().unwrap().is_some() {
            break;
        }
        maps.refresh(pid);
        probe = maps.map(pid).and_then(|map| {
            map.iter()
                .find(|s| s.name.contains("rprofPerfMapProbe"))
                .map(|s| (s.name.to_owned(), s.start))
        });
    }
    let (name, start) = probe.expect("node's map names rprofPerfMapProbe");
    let map = maps.map(pid).unwrap();
    eprintln!(
        "node: {} entries after {:?}, {} malformed; e.g. {name:?}",
        map.len(),
        started.elapsed(),
        map.malformed_lines()
    );
    assert!(map.len() > 1000, "only {} entries", map.len());
    assert_eq!(map.malformed_lines(), 0);
    assert!(maps.lookup(pid, start).is_some());
    let c = maps.counters();
    assert_eq!(c.files_read, 1, "{c:?}");
    let _ = target.child.kill();
}

/// A 100 MB map of V8-like lines, every 16th reusing an older address.
#[test]
fn a_100_mb_map() {
    let dir = scratch("big");
    let path = dir.join("map");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
    let (mut written, mut lines) = (0usize, 0u64);
    while written < 100 << 20 {
        let start = if lines % 16 == 15 {
            0x7f00_0000_0000 + (lines / 2) * 0x100
        } else {
            0x7f00_0000_0000 + lines * 0x100
        };
        let line = format!(
            "{start:x} {:x} JS:*handler{lines} /srv/app/node_modules/package{}/lib/index.js:{}:{}\n",
            0x80 + lines % 0x80,
            lines % 997,
            lines % 5000,
            lines % 80
        );
        out.write_all(line.as_bytes()).unwrap();
        written += line.len();
        lines += 1;
    }
    out.flush().unwrap();
    drop(out);
    let rss_before = rss_kib();
    let started = Instant::now();
    let map = PerfMap::load_path(&path, None).unwrap();
    let took = started.elapsed();
    let rss_after = rss_kib();
    eprintln!(
        "100 MB map: {} lines, {} entries loaded in {took:?}; heap {:.1} MiB ({:.1} bytes/entry), \
         RSS +{:.1} MiB",
        lines,
        map.len(),
        map.heap_bytes() as f64 / (1 << 20) as f64,
        map.heap_bytes() as f64 / map.len() as f64,
        (rss_after.saturating_sub(rss_before)) as f64 / 1024.0
    );
    assert_eq!((map.len() as u64, map.malformed_lines()), (lines, 0));
    // Line 15 took line 7's address; the last line kept its own unless it is a 16th.
    let at = |line: u64| map.lookup(0x7f00_0000_0000 + line * 0x100).unwrap().name;
    assert!(at(7).starts_with("JS:*handler15 "), "{}", at(7));
    let last = if lines % 16 == 0 {
        lines - 2
    } else {
        lines - 1
    };
    assert!(
        at(last).starts_with(&format!("JS:*handler{last} ")),
        "{}",
        at(last)
    );
    // Generous: debug builds parse several times slower than release.
    assert!(took < Duration::from_secs(30), "{took:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}
