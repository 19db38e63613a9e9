//! Running a task iterator program (`iter/task`, `iter.s/task`) once over every task, as
//! the collectors do to open the waits already in progress at the start of a recording and
//! close those still in progress at its end.
use std::io;
use std::sync::mpsc;
use std::time::Duration;

use libbpf_rs::{Iter, Link, ProgramMut};

use super::{attach_error, CollectError};

const ITERATOR: &str = "the iter/task program";

fn iterator_error(e: io::Error) -> CollectError {
    CollectError::Attach {
        what: ITERATOR,
        source: e.into(),
    }
}

fn start_task_iterator(prog: &ProgramMut) -> Result<(Link, Iter), CollectError> {
    let link = prog.attach().map_err(attach_error(ITERATOR))?;
    let iter = Iter::new(&link).map_err(attach_error(ITERATOR))?;
    Ok((link, iter))
}

/// How long the start or the stop may wait for an iterator pass. It reads other processes'
/// stacks, and a page that cannot be read at once (swapped out, userfaultfd, FUSE) makes it
/// wait.
const ITERATOR_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs a sleepable task iterator on its own thread, so a stack read that blocks cannot hold
/// up the recording or its end: past the timeout, `late` is printed as a warning and the
/// threads not reached yet are left out.
pub fn run(prog: &ProgramMut, late: &str) -> Result<(), CollectError> {
    let (link, mut iter) = start_task_iterator(prog)?;
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let result = io::copy(&mut iter, &mut io::sink());
        drop(link);
        let _ = done.send(result);
    });
    match finished.recv_timeout(ITERATOR_TIMEOUT) {
        Ok(result) => result.map(drop).map_err(iterator_error),
        Err(_) => {
            eprintln!("rprof-bpf: warning: a pass over the blocked threads took over {ITERATOR_TIMEOUT:?}; {late}");
            Ok(())
        }
    }
}
