// creators_rs makes N threads with std::thread::spawn from via_thread_spawn and N processes
// with std::process::Command from via_command (Usage: creators_rs N), after 300 ms, then
// prints "done". Built as a release would be: -O, no frame pointers.
use std::process::Command;
use std::time::Duration;

#[inline(never)]
fn via_thread_spawn(n: usize) {
    for _ in 0..n {
        std::thread::spawn(|| {}).join().unwrap();
    }
}

#[inline(never)]
fn via_command(n: usize) {
    for _ in 0..n {
        Command::new("/bin/true").status().unwrap();
    }
}

fn main() {
    let n = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    std::thread::sleep(Duration::from_millis(300));
    via_thread_spawn(n);
    via_command(n);
    println!("done");
}
